"""Sending through RQ workers on Redis: queues, retries, outages, lost answers, rate limits."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
from rq.job import Job
from sqlalchemy import select
from twilio_helpers import OUR_NUMBER, inbound_form, post_signed, twilio_overrides

from engage import db
from engage.clock import run_periodic
from engage.config import ConfigError
from engage.config import load as load_config
from engage.db import utcnow
from engage.jobs import (
    BULK,
    REPLIES,
    SEND_JOB_OPTIONS,
    SEND_REPLIES,
    dispatch_sends,
    queue,
    redis_connection,
)
from engage.jobs.send import CHUNK_ROUNDS, reconcile, send_batch, send_replies
from engage.jobs.worker import run_worker
from engage.messaging import SendResult
from engage.models import Contact, Message
from engage.services import outbox
from tests import readback as rb

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


def start_worker(
    app, fake_twilio, tmp_path, redis_url, stderr: int = subprocess.DEVNULL, **extra: str
) -> subprocess.Popen:
    """`python worker.py` in burst mode, with the settings the test app was built with."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ENGAGE_", "TWILIO_"))}
    overrides = twilio_overrides(fake_twilio, tmp_path, REDIS_URL=redis_url)
    env.update({k: v for k, v in overrides.items() if isinstance(v, str)})
    env.update(
        {
            "ENGAGE_ENV": "development",
            "DATABASE_URL": app.config["DATABASE_URL"],
            "ENGAGE_INSTANCE_PATH": str(tmp_path / "instance"),
            "ENGAGE_WORKER_BURST": "1",
            **extra,
        }
    )
    return subprocess.Popen(
        [sys.executable, str(ROOT / "worker.py")],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=stderr,
    )


def test_replies_are_queued_on_redis_and_sent_by_a_burst_worker(twilio_app, redis_url, fake_twilio):
    app = twilio_app(REDIS_URL=redis_url)
    client = app.test_client()
    post_signed(client, fake_twilio.auth_token, "/twilio/messages", inbound_form(WORKER, "WORK"))
    assert fake_twilio.requests == []  # not sent inside the request
    [row] = rows(app)
    assert row.status == "pending"
    with app.app_context():
        [job_id] = queue(REPLIES).job_ids
        job = queue(REPLIES).fetch_job(job_id)
        assert (job.func_name, tuple(job.args)) == (SEND_REPLIES, ())
    work(app)
    assert [r.get("Body")[:16] for r in fake_twilio.requests] == ["Centro Campesino"]
    assert rows(app)[0].status == "queued"
    work(app)  # nothing left: nothing sent twice
    assert len(fake_twilio.requests) == 1


def test_a_burst_of_replies_wakes_one_job_written_as_rq_writes_it(twilio_app, redis_url):
    """Replies wake the reply sender once while its job waits; the job is field for field the
    one RQ writes for the same call."""
    app = twilio_app(REDIS_URL=redis_url)
    with app.app_context():
        connection = redis_connection()
        replies = queue(REPLIES)
        rq_job = replies.enqueue(SEND_REPLIES, **SEND_JOB_OPTIONS)
        written_by_rq = connection.hgetall(Job.key_for(rq_job.id))
        replies.empty()
        assert dispatch_sends([42, 43]) == 2
        assert dispatch_sends([44]) == 1  # the job already waits: no second one
        [job_id] = replies.job_ids
        written = connection.hgetall(Job.key_for(job_id))
        job = Job.fetch(job_id, connection=connection, serializer=replies.serializer)
        assert (job.func_name, tuple(job.args), job.origin) == (SEND_REPLIES, (), REPLIES)
        varying = (b"created_at", b"enqueued_at", b"id")
        assert written.keys() == written_by_rq.keys()
        for field, value in written_by_rq.items():
            if field not in varying:
                assert written[field] == value, field
        # Once the job has started, new replies wake another.
        from engage.jobs import reply_sender_woken

        reply_sender_woken()
        dispatch_sends([45])
        assert len(replies.job_ids) == 2


def test_replies_are_drained_before_bulk(twilio_app, redis_url, fake_twilio):
    # One send at a time: rows in flight together may reach Twilio in either order.
    app = twilio_app(REDIS_URL=redis_url, ENGAGE_SEND_CONCURRENCY="1")
    client = app.test_client()
    post_signed(client, fake_twilio.auth_token, "/twilio/messages", inbound_form(WORKER, "WORK"))
    bulk_id = rows(app)[0].id
    with app.app_context(), db.transaction() as session:
        # Move the first reply to bulk, as if it were an invitation, then add a real reply.
        session.get(Message, bulk_id).queue = BULK
    with app.app_context():
        queue(REPLIES).empty()
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
        assert send_batch([row.id]) == 1
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
        assert send_batch([row.id]) == 0  # a failed row is never tried again
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
        assert send_batch([row.id]) == 0  # never claimed again: only looked up
        assert reconcile(row.id) == "reconciled"
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
        assert reconcile(row_id) == "unconfirmed"
    assert fake_twilio.requests == []
    assert rows(app)[0].status == "unconfirmed"


def test_a_burst_worker_exits_cleanly_with_its_logs_written(
    twilio_app, redis_url, fake_twilio, tmp_path
):
    # worker.py leaves with os._exit: its logs must be flushed and its code kept first.
    app = twilio_app(REDIS_URL=redis_url)
    ids = bulk_rows(app, phones(3))
    with app.app_context():
        dispatch_sends(ids, queue_name=BULK)
    worker = start_worker(app, fake_twilio, tmp_path, redis_url, stderr=subprocess.PIPE)
    _, logs = worker.communicate(timeout=60)

    assert worker.returncode == 0, logs.decode()
    assert [f"message {i}: sent sid=" in logs.decode() for i in ids] == [True] * 3
    assert statuses(app, ids) == [("queued", None)] * 3


def test_a_worker_killed_in_the_middle_of_a_send(twilio_app, redis_url, fake_twilio, tmp_path):
    app = twilio_app(REDIS_URL=redis_url, TWILIO_TIMEOUT=30.0)
    fake_twilio.hang_next(1, seconds=20)
    post_signed(
        app.test_client(), fake_twilio.auth_token, "/twilio/messages", inbound_form(WORKER, "WORK")
    )
    worker = start_worker(app, fake_twilio, tmp_path, redis_url)
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
        assert run_periodic()["looked_up"] == 1  # by the clock itself, never sent again
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
        assert send_batch([late_id]) == 0
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


# -- bulk batches: a chunk at a time, several sends in flight -------------------------------------


def bulk_rows(app, phones, *, steps: int = 1, channel: str = "sms", **fields) -> list[int]:
    """Pending bulk rows, as a campaign writes them: one step of `steps` rows per phone."""
    vault = app.extensions["engage.vault"]
    ids = []
    with app.app_context(), db.transaction() as session:
        for phone in phones:
            contact = session.scalar(
                select(Contact).where(Contact.phone_hash == vault.phone_hash(phone))
            )
            if contact is None:
                contact, _ = rb.new_contact(app, phone)
                session.add(contact)
                session.flush()
            cipher = vault.contact_cipher(contact.key_encrypted)
            address = f"whatsapp:{phone}" if channel == "whatsapp" else phone
            written_at = utcnow()
            for sequence in range(steps):
                row = Message(
                    direction="out",
                    contact_id=contact.id,
                    channel=channel,
                    our_address=f"whatsapp:{OUR_NUMBER}" if channel == "whatsapp" else OUR_NUMBER,
                    their_address_encrypted=cipher.encrypt(address),
                    body=f"invitation {phone} part {sequence + 1}",
                    kind="invitation",
                    status="pending",
                    queue=BULK,
                    sequence=sequence,
                    created_at=written_at,
                    **fields,
                )
                session.add(row)
                session.flush()
                ids.append(row.id)
    return ids


def statuses(app, ids) -> list[tuple[str, int | None]]:
    return [(r.status, r.error_code) for r in rows(app, Message.id.in_(ids))]


def phones(n: int, first: int = 0) -> list[str]:
    return [f"+1555300{i:04d}" for i in range(first, first + n)]


def test_a_batch_sends_every_row_once_and_a_steps_rows_in_order(twilio_app, fake_twilio):
    app = twilio_app(ENGAGE_SEND_CONCURRENCY="3")  # chunks of 12: steps cross chunk boundaries
    ids = bulk_rows(app, phones(10), steps=3)
    with app.app_context():
        assert send_batch(ids) == 30
        assert send_batch(ids) == 0  # a second run finds nothing to do
    sent = [(r.get("To"), r.get("Body")) for r in fake_twilio.requests]
    assert len(sent) == 30 and len(set(sent)) == 30
    for phone in phones(10):
        assert [body for to, body in sent if to == phone] == [
            f"invitation {phone} part {n}" for n in (1, 2, 3)
        ]
    done = rows(app, Message.id.in_(ids))
    assert {r.status for r in done} == {"queued"}
    assert {r.sid for r in done} == {m["sid"] for m in fake_twilio.messages}
    assert all(r.sent_at is not None for r in done)
    assert all(
        r.get("StatusCallback").endswith(f"?m={i}")
        for r, i in zip(
            sorted(fake_twilio.requests, key=lambda r: int(r.get("StatusCallback").split("=")[1])),
            ids,
            strict=True,
        )
    )


def test_a_batch_keeps_a_steps_order_when_its_rows_come_in_another_job(twilio_app, fake_twilio):
    app = twilio_app()
    first, second, third = bulk_rows(app, phones(1), steps=3)
    with app.app_context():
        assert send_batch([second, third]) == 0  # the first row is unsent: they wait for it
        assert send_batch([first]) == 3  # then follow it, in order
    assert [r.get("Body")[-6:] for r in fake_twilio.requests] == ["part 1", "part 2", "part 3"]


def test_a_batch_sends_several_at_once(twilio_app, fake_twilio):
    app = twilio_app(ENGAGE_SEND_CONCURRENCY="4")
    ids = bulk_rows(app, phones(8))
    fake_twilio.delay(0.3)
    started = time.monotonic()
    with app.app_context():
        assert send_batch(ids) == 8
    # One at a time would take 8 x 0.3 s; four in flight, about 2 x 0.3 s.
    assert time.monotonic() - started < 1.6


def test_a_batch_cancels_skips_and_fails_what_prepare_send_would(twilio_app, fake_twilio):
    app = twilio_app()
    template = "HX" + "a" * 32
    [due] = bulk_rows(app, phones(1, 0))
    [opted_out] = bulk_rows(app, phones(1, 1))
    [later] = bulk_rows(app, phones(1, 2), send_after=utcnow() + timedelta(hours=1))
    [closed_window] = bulk_rows(app, phones(1, 3), channel="whatsapp")
    [with_template] = bulk_rows(app, phones(1, 4), channel="whatsapp", content_sid=template)
    [dispatching] = bulk_rows(app, phones(1, 5), attempted_at=utcnow())
    with app.app_context(), db.transaction() as session:
        session.get(Contact, session.get(Message, opted_out).contact_id).is_opted_out = True
        session.get(Message, dispatching).status = "dispatching"
    ids = [due, opted_out, later, closed_window, with_template, dispatching]
    with app.app_context():
        assert send_batch(ids) == 2
    assert statuses(app, ids) == [
        ("queued", None),
        ("cancelled", None),
        ("pending", None),  # not due: the scheduler or the sweep brings it back
        ("failed", 63016),
        ("queued", None),
        ("dispatching", None),  # left to the clock's reconcile, never sent again here
    ]
    sent = {(r.get("To"), r.get("ContentSid"), r.get("Body")) for r in fake_twilio.requests}
    assert sent == {
        (phones(1, 0)[0], None, f"invitation {phones(1, 0)[0]} part 1"),
        (f"whatsapp:{phones(1, 4)[0]}", template, None),
    }


def test_a_batch_sorts_twilios_answers_row_by_row(twilio_app, fake_twilio):
    app = twilio_app(ENGAGE_SEND_CONCURRENCY="1")  # one at a time: the fake answers in order
    busy, bad, stop, fine = phones(4)
    ids = bulk_rows(app, [busy, bad, stop, fine])
    [stop_later] = bulk_rows(app, [stop])  # the same contact's next invitation
    fake_twilio.fail_next(1, status=429)  # the first create (`busy`) is refused for now
    fake_twilio.reject(bad, code=21211)
    fake_twilio.reject(stop, code=21610)
    with app.app_context():
        assert send_batch(ids) == 1  # no RetryLaterError: the sweep comes back for `busy`
        assert send_batch([stop_later]) == 0
    assert statuses(app, [*ids, stop_later]) == [
        ("pending", None),  # transient: pending again, for the sweep
        ("failed", 21211),
        ("failed", 21610),
        ("queued", None),
        ("cancelled", None),  # 21610 opted the contact out
    ]
    vault = app.extensions["engage.vault"]
    with app.app_context():
        contact = db.session().scalar(
            select(Contact).where(Contact.phone_hash == vault.phone_hash(stop))
        )
        assert contact.is_opted_out
    assert len(fake_twilio.requests) == 4


def test_a_batch_leaves_a_lost_answer_dispatching_and_the_clock_looks_it_up(
    twilio_app, redis_url, fake_twilio
):
    app = twilio_app(REDIS_URL=redis_url, ENGAGE_SEND_CONCURRENCY="2")
    ids = bulk_rows(app, phones(5))
    fake_twilio.hang_next(1, seconds=3)  # Twilio creates the first, its answer never comes
    with app.app_context():
        assert send_batch(ids) == 4
    assert sorted(status for status, _ in statuses(app, ids)) == ["dispatching"] + ["queued"] * 4
    age(app, "attempted_at", 600)
    with app.app_context():
        assert run_periodic()["looked_up"] == 1
    done = rows(app, Message.id.in_(ids))
    assert {r.status for r in done} == {"queued"}
    assert sorted(r.sid for r in done) == sorted(m["sid"] for m in fake_twilio.messages)
    assert len(fake_twilio.requests) == 5  # looked up, never posted again


def test_a_status_callback_before_the_batch_records_the_send_is_kept(twilio_app, fake_twilio):
    app = twilio_app()
    ids = bulk_rows(app, phones(2))
    with app.app_context(), db.transaction() as session:
        for message_id in ids:
            session.get(Message, message_id).status = "dispatching"
        # Twilio's callback for the first row came in before the worker heard back.
        first = session.get(Message, ids[0])
        first.status, first.sid = "delivered", "SM" + "1" * 32
    with app.app_context(), db.transaction() as session:
        outbox.record_chunk(
            session,
            sent=[
                (ids[0], SendResult("SM" + "1" * 32, "queued")),
                (ids[1], SendResult("SM" + "2" * 32, "queued")),
            ],
        )
    first, second = rows(app, Message.id.in_(ids))
    assert (first.status, first.sid) == ("delivered", "SM" + "1" * 32)  # not moved back
    assert (second.status, second.sid) == ("queued", "SM" + "2" * 32)
    assert first.sent_at is not None and second.sent_at is not None


def test_bulk_rate_limit_holds_with_several_sends_in_flight(twilio_app, redis_url, fake_twilio):
    app = twilio_app(REDIS_URL=redis_url, ENGAGE_SEND_RATE="3", ENGAGE_SEND_CONCURRENCY="4")
    ids = bulk_rows(app, phones(8))
    with app.app_context():
        dispatch_sends(ids, queue_name=BULK)
    work(app)
    times = sorted(r.time for r in fake_twilio.requests)
    assert len(times) == 8
    for i in range(len(times) - 3):
        assert times[i + 3] - times[i] > 0.95  # no one-second window holds 4


def test_a_long_batch_hands_its_rest_to_a_new_job_before_rqs_timeout(
    twilio_app, redis_url, fake_twilio, monkeypatch, caplog
):
    # 12 rows at 4 a second take 2-3 s; a job may run 0.5 s here (120 s against RQ's 180 in use).
    monkeypatch.setattr("engage.jobs.send.BATCH_SECONDS", 0.5)
    caplog.set_level("INFO", logger="engage.jobs.send")
    app = twilio_app(REDIS_URL=redis_url, ENGAGE_SEND_RATE="4")
    ids = bulk_rows(app, phones(12))
    with app.app_context():
        dispatch_sends(ids, queue_name=BULK)
    work(app)

    handed = [r for r in caplog.records if "handed to a new job" in r.getMessage()]
    assert handed  # and the new job sent the rest:
    assert sorted(r.get("To") for r in fake_twilio.requests) == phones(12)  # each once
    assert statuses(app, ids) == [("queued", None)] * len(ids)


@pytest.mark.parametrize("value", ["0", "65", "four"])
def test_send_concurrency_must_be_a_small_whole_number(tmp_path, value):
    with pytest.raises(ConfigError, match="ENGAGE_SEND_CONCURRENCY"):
        load_config({"ENGAGE_ENV": "development", "ENGAGE_SEND_CONCURRENCY": value}, tmp_path)


def test_a_worker_killed_mid_batch_leaves_at_most_two_chunks_to_look_up(
    twilio_app, redis_url, fake_twilio, tmp_path
):
    app = twilio_app(REDIS_URL=redis_url, ENGAGE_SEND_CONCURRENCY="2")
    ids = bulk_rows(app, phones(60))
    with app.app_context():
        dispatch_sends(ids, queue_name=BULK)
    fake_twilio.delay(0.1)
    worker = start_worker(app, fake_twilio, tmp_path, redis_url, ENGAGE_SEND_CONCURRENCY="2")
    try:
        deadline = time.monotonic() + 30
        while len(fake_twilio.messages) < 20:
            assert time.monotonic() < deadline, "the worker never got going"
            time.sleep(0.02)
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=10)
    finally:
        if worker.poll() is None:
            worker.kill()
    fake_twilio.delay(0)
    chunk = 2 * CHUNK_ROUNDS
    dispatching = [r.id for r in rows(app, Message.status == "dispatching")]
    assert 0 < len(dispatching) <= 2 * chunk
    age(app, "attempted_at", 600)
    with app.app_context():
        queue(BULK).empty()
        assert run_periodic()["looked_up"] == len(dispatching)
    created = {m["sid"] for m in fake_twilio.messages}
    # (A create cut short by the kill arrives without its fields: it created nothing.)
    posted = [cb for r in fake_twilio.requests if (cb := r.get("StatusCallback"))]
    assert len(posted) == len(set(posted))  # no row posted twice
    left = rows(app, Message.id.in_(dispatching))
    # Each looked-up row was either found (it reached Twilio) or flagged for staff, never resent.
    assert {r.status for r in left} <= {"queued", "unconfirmed"}
    assert all(r.sid in created for r in left if r.status == "queued")


def test_a_bulk_job_sends_due_replies_first_under_the_rate_limit(
    twilio_app, redis_url, fake_twilio
):
    app = twilio_app(REDIS_URL=redis_url, ENGAGE_SEND_RATE="50")
    ids = bulk_rows(app, phones(6))
    post_signed(
        app.test_client(), fake_twilio.auth_token, "/twilio/messages", inbound_form(WORKER, "WORK")
    )
    with app.app_context():
        assert send_batch(ids) == 7  # the reply too: a campaign never holds a reply back
    assert [r.get("To") for r in fake_twilio.requests][0] == WORKER
    assert len(fake_twilio.requests) == 7


def test_a_reply_written_while_a_campaign_sends_under_the_rate_limit_goes_next(
    twilio_app, redis_url, fake_twilio
):
    """Under a slow limit a bulk job claims no more rows than one window allows (at first one),
    so a reply written while its rows are out waits for one of them, not a chunk of four."""
    app = twilio_app(REDIS_URL=redis_url, ENGAGE_SEND_RATE="2", ENGAGE_SEND_CONCURRENCY="4")
    ids = bulk_rows(app, phones(5))
    fake_twilio.delay(0.5)  # the first row is still out when the reply is written
    sent: list[int] = []
    job = threading.Thread(target=lambda: sent.append(_send_batch_in(app, ids)))
    job.start()
    deadline = time.monotonic() + 10
    while not rows(app, Message.status == "dispatching") and time.monotonic() < deadline:
        time.sleep(0.01)
    assert rows(app, Message.status == "dispatching"), "the bulk job never claimed a row"
    post_signed(
        app.test_client(), fake_twilio.auth_token, "/twilio/messages", inbound_form(WORKER, "WORK")
    )
    job.join(timeout=30)
    assert sent == [6]
    order = [r.get("To") for r in fake_twilio.requests]
    assert order.index(WORKER) == 1, order  # behind the one row already out, no other


def _send_batch_in(app, ids: list[int]) -> int:
    with app.app_context():
        return send_batch(ids)


def test_a_contacts_replies_go_one_at_a_time_in_the_order_written(
    twilio_app, redis_url, fake_twilio
):
    app = twilio_app(REDIS_URL=redis_url, ENGAGE_SEND_CONCURRENCY="4")
    client = app.test_client()
    for text in ("WORK", "1", "1", "1"):
        post_signed(client, fake_twilio.auth_token, "/twilio/messages", inbound_form(WORKER, text))
    written = [r.body for r in rows(app, Message.direction == "out")]
    assert len(written) == 4
    with app.app_context():
        assert len(queue(REPLIES).job_ids) == 1  # one wake-up for the burst
    fake_twilio.delay(0.05)  # sends in flight together would overtake one another
    work(app)
    assert [r.get("Body") for r in fake_twilio.requests] == written
    # Each went out only once the one before was answered: never two in flight for a contact.
    answered = [r.time for r in fake_twilio.requests]
    assert answered == sorted(answered)


@pytest.mark.parametrize("database", ["postgresql"])
def test_a_reply_written_while_the_one_before_is_recorded_is_not_left_for_the_sweep(
    twilio_app, redis_url, fake_twilio, monkeypatch, database
):
    """Two reply senders at once: the first is recording the contact's reply when the worker's
    next message writes the reply after it. The second sender, woken for that reply, finds the
    one before still `dispatching` and leaves it; the first, once its record is committed, must
    look again and send it, not leave it to the clock's sweep a minute later."""
    app = twilio_app(REDIS_URL=redis_url, ENGAGE_SEND_CONCURRENCY="1")
    post_signed(
        app.test_client(), fake_twilio.auth_token, "/twilio/messages", inbound_form(WORKER, "WORK")
    )
    recorded: list[int] = []
    left_by_the_second: list[int] = []
    meanwhile: list[threading.Thread] = []
    record_chunk, original = outbox.record_chunk, outbox.due_replies

    def the_next_message_arrives_meanwhile() -> None:
        post_signed(
            app.test_client(), fake_twilio.auth_token, "/twilio/messages", inbound_form(WORKER, "1")
        )
        with app.app_context():
            left_by_the_second.append(send_replies())

    def record(session, **answers):
        record_chunk(session, **answers)
        recorded.append(len(answers["sent"]))

    def due_replies(session, **kwargs):
        found = original(session, **kwargs)
        if recorded == [1] and not meanwhile:
            # The look in the transaction that records the first reply, before it commits.
            other = threading.Thread(target=the_next_message_arrives_meanwhile)
            meanwhile.append(other)
            other.start()
            other.join(timeout=30)
            assert not other.is_alive()
        return found

    monkeypatch.setattr(outbox, "record_chunk", record)
    monkeypatch.setattr(outbox, "due_replies", due_replies)
    with app.app_context():
        sent = send_replies()
    assert left_by_the_second == [0]
    assert sent == 2
    assert [r.status for r in rows(app)] == ["queued", "queued"]
    assert len(fake_twilio.requests) == 2
