"""Sending through RQ workers on Redis: queues, retries, outages, lost answers, rate limits."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from twilio_helpers import inbound_form, post_signed, twilio_overrides

from engage import db
from engage.db import utcnow
from engage.jobs import BULK, REPLIES, dispatch_sends, queue, redis_connection
from engage.jobs.periodic import run_periodic
from engage.jobs.send import send_message
from engage.jobs.worker import run_worker
from engage.models import Contact, Message

ROOT = Path(__file__).resolve().parent.parent
WORKER = "+15551230001"


def rows(app, *where):
    with app.app_context():
        return (
            db.session()
            .scalars(select(Message).where(Message.direction == "out", *where).order_by(Message.id))
            .all()
        )


def age(app, column: str, seconds: float) -> None:
    with app.app_context(), db.transaction() as session:
        for row in session.scalars(select(Message).where(Message.direction == "out")):
            value = getattr(row, column)
            if value is not None:
                setattr(row, column, value - timedelta(seconds=seconds))


def work(app) -> None:
    """A real RQ worker in burst mode: runs every queued job, then returns."""
    with app.app_context():
        run_worker(burst=True)


def test_replies_are_queued_on_redis_and_sent_by_a_burst_worker(twilio_app, redis_url, fake_twilio):
    app = twilio_app(REDIS_URL=redis_url)
    client = app.test_client()
    post_signed(client, fake_twilio.auth_token, "/twilio/messages", inbound_form(WORKER, "WORK"))
    assert fake_twilio.requests == []  # not sent inside the request
    [row] = rows(app)
    assert row.status == "pending"
    with app.app_context():
        assert queue(REPLIES, redis_connection()).job_ids == [f"send-{row.id}"]
    work(app)
    assert [r.get("Body")[:9] for r in fake_twilio.requests] == ["Hi, this "]
    assert rows(app)[0].status == "queued"
    work(app)  # nothing left: nothing sent twice
    assert len(fake_twilio.requests) == 1


def test_replies_are_drained_before_bulk(twilio_app, redis_url, fake_twilio):
    app = twilio_app(REDIS_URL=redis_url)
    client = app.test_client()
    post_signed(client, fake_twilio.auth_token, "/twilio/messages", inbound_form(WORKER, "WORK"))
    bulk_id = rows(app)[0].id
    with app.app_context(), db.transaction() as session:
        # Move the first reply to bulk, as if it were an invitation, then add a real reply.
        session.get(Message, bulk_id).queue = BULK
    with app.app_context():
        connection = redis_connection()
        queue(REPLIES, connection).empty()
        dispatch_sends([bulk_id], queue_name=BULK)
    post_signed(
        client, fake_twilio.auth_token, "/twilio/messages", inbound_form("+15551230002", "TRABAJO")
    )
    work(app)
    assert [r.get("To") for r in fake_twilio.requests] == ["+15551230002", WORKER]


def test_redis_down_at_commit_leaves_rows_for_the_sweep(twilio_app, redis_url, fake_twilio):
    down = twilio_app(REDIS_URL="redis://127.0.0.1:1/0")  # nothing listens there
    response = post_signed(
        down.test_client(), fake_twilio.auth_token, "/twilio/messages", inbound_form(WORKER, "WORK")
    )
    assert response.status_code == 200  # the message is stored; Twilio is answered
    [row] = rows(down)
    assert row.status == "pending"
    up = twilio_app(prepare=False, REDIS_URL=redis_url)
    with up.app_context():
        assert run_periodic()["swept"] == 0  # too fresh: its own job may still be on its way
    age(up, "created_at", 120)
    with up.app_context():
        assert run_periodic()["swept"] == 1
    work(up)
    assert len(fake_twilio.requests) == 1
    assert rows(up)[0].status == "queued"


def test_a_transient_error_puts_the_row_back_and_a_later_try_sends_it(twilio_app, fake_twilio):
    app = twilio_app()
    fake_twilio.fail_next(1, status=429)
    post_signed(
        app.test_client(), fake_twilio.auth_token, "/twilio/messages", inbound_form(WORKER, "WORK")
    )
    [row] = rows(app)
    assert row.status == "pending"
    with app.app_context():
        assert send_message(row.id) == "sent"
    assert rows(app)[0].status == "queued"
    assert [r.status for r in fake_twilio.requests] == [429, 201]


@pytest.mark.parametrize(("code", "opted_out"), [(21610, True), (21211, False)])
def test_a_permanent_error_fails_the_row(twilio_app, fake_twilio, code, opted_out):
    app = twilio_app()
    fake_twilio.reject(WORKER, code=code)
    post_signed(
        app.test_client(), fake_twilio.auth_token, "/twilio/messages", inbound_form(WORKER, "WORK")
    )
    [row] = rows(app)
    assert (row.status, row.error_code) == ("failed", code)
    with app.app_context():
        assert db.session().scalar(select(Contact.is_opted_out)) is opted_out
    with app.app_context():
        assert send_message(row.id) == "done"  # a failed row is never tried again
    assert len(fake_twilio.requests) == 1


def test_a_lost_answer_is_looked_up_not_resent(twilio_app, fake_twilio):
    app = twilio_app()
    fake_twilio.hang_next(1, seconds=3)  # Twilio creates it, but the answer never arrives
    post_signed(
        app.test_client(), fake_twilio.auth_token, "/twilio/messages", inbound_form(WORKER, "WORK")
    )
    [row] = rows(app)
    assert row.status == "dispatching" and row.sid is None
    with app.app_context():
        assert send_message(row.id) == "reconciled"
    [created] = fake_twilio.messages
    row = rows(app)[0]
    assert (row.sid, row.status) == (created["sid"], "queued")
    assert len(fake_twilio.requests) == 1  # looked up, never posted again


def test_a_send_that_never_reached_twilio_is_flagged_not_guessed(twilio_app, fake_twilio):
    app = twilio_app()
    post_signed(
        app.test_client(), fake_twilio.auth_token, "/twilio/messages", inbound_form(WORKER, "WORK")
    )
    fake_twilio.reset()
    with app.app_context(), db.transaction() as session:
        row = session.scalars(select(Message).where(Message.direction == "out")).one()
        row.status, row.sid, row.attempted_at = "dispatching", None, utcnow()
        row_id = row.id
    with app.app_context():
        assert send_message(row_id) == "unconfirmed"
    assert fake_twilio.requests == []
    assert rows(app)[0].status == "unconfirmed"


def test_a_worker_killed_in_the_middle_of_a_send(twilio_app, redis_url, fake_twilio, tmp_path):
    app = twilio_app(REDIS_URL=redis_url, TWILIO_TIMEOUT=30.0)
    fake_twilio.hang_next(1, seconds=20)
    post_signed(
        app.test_client(), fake_twilio.auth_token, "/twilio/messages", inbound_form(WORKER, "WORK")
    )
    # The worker process gets the same settings the test app was built with.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ENGAGE_", "TWILIO_"))}
    overrides = twilio_overrides(fake_twilio, tmp_path, REDIS_URL=redis_url)
    env.update({k: v for k, v in overrides.items() if isinstance(v, str)})
    env.update(
        {
            "ENGAGE_ENV": "development",
            "DATABASE_URL": app.config["DATABASE_URL"],
            "ENGAGE_INSTANCE_PATH": str(tmp_path / "instance"),
            "ENGAGE_WORKER_BURST": "1",
        }
    )
    worker = subprocess.Popen(
        [sys.executable, str(ROOT / "worker.py")],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while not fake_twilio.messages:
            assert time.monotonic() < deadline, "the worker never reached Twilio"
            time.sleep(0.05)
        worker.send_signal(signal.SIGKILL)  # mid-send: Twilio has it, we never hear back
        worker.wait(timeout=10)
    finally:
        if worker.poll() is None:
            worker.kill()
    [row] = rows(app)
    assert row.status == "dispatching"
    age(app, "attempted_at", 600)
    with app.app_context():
        assert run_periodic()["reconciling"] == 1
        assert queue(REPLIES, redis_connection()).count == 1
    work(app)
    row = rows(app)[0]
    assert row.sid == fake_twilio.messages[0]["sid"]
    assert len(fake_twilio.requests) == 1  # exactly one Twilio message for the row


def test_rate_limit_shared_by_workers_holds_per_second(twilio_app, redis_url, fake_twilio):
    app = twilio_app(REDIS_URL=redis_url, ENGAGE_SEND_RATE="3")
    client = app.test_client()
    for n in range(9):
        post_signed(
            client,
            fake_twilio.auth_token,
            "/twilio/messages",
            inbound_form(f"+1555123{n:04d}", "hola"),
        )
    work(app)
    times = sorted(r.time for r in fake_twilio.requests)
    assert len(times) == 9
    for i in range(len(times) - 3):
        assert times[i + 3] - times[i] > 0.95  # no one-second window holds 4


def test_whatsapp_free_form_outside_the_window_fails_clearly(twilio_app, fake_twilio):
    app = twilio_app()
    post_signed(
        app.test_client(),
        fake_twilio.auth_token,
        "/twilio/messages",
        inbound_form(f"whatsapp:{WORKER}", "WORK"),
    )
    assert len(fake_twilio.requests) == 1  # inside the window: free-form
    row = rows(app)[0]
    with app.app_context(), db.transaction() as session:
        contact = session.scalars(select(Contact)).one()
        contact.last_whatsapp_inbound_at = utcnow() - timedelta(hours=25)
        late = Message(
            direction="out",
            contact_id=contact.id,
            channel="whatsapp",
            our_address=row.our_address,
            their_address_encrypted=row.their_address_encrypted,
            body="a late free-form text",
            status="pending",
            kind="text",
        )
        session.add(late)
        session.flush()
        late_id = late.id
    with app.app_context():
        assert send_message(late_id) == "done"
    late = rows(app, Message.id == late_id)[0]
    assert (late.status, late.error_code) == ("failed", 63016)
    assert len(fake_twilio.requests) == 1


def test_whatsapp_63016_from_twilio_is_permanent_for_the_row(twilio_app, fake_twilio):
    app = twilio_app()
    fake_twilio.reject(f"whatsapp:{WORKER}", code=63016)
    post_signed(
        app.test_client(),
        fake_twilio.auth_token,
        "/twilio/messages",
        inbound_form(f"whatsapp:{WORKER}", "WORK"),
    )
    [row] = rows(app)
    assert (row.status, row.error_code) == ("failed", 63016)
    with app.app_context():
        assert not db.session().scalar(select(Contact.is_opted_out))
