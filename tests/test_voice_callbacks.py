"""Missed call, call back: a call is rejected as busy (the worker pays nothing) and Engage calls
back through the Calls API, with answering-machine detection; never an opted-out number."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from conftest import VOICE_SURVEYS, make_app, publish
from sqlalchemy import select
from twilio_helpers import (
    OUR_NUMBER,
    PUBLIC_URL,
    inbound_form,
    new_sid,
    post_signed,
    twilio_overrides,
)
from voice_caller import Caller

from engage import db
from engage.models import Call, Contact, Message

VOICE_FROM = "+15005550006"
WORKER = "+15551230077"


@pytest.fixture
def callback_app(request, tmp_path: Path, database: str, fake_twilio):
    pg = request.getfixturevalue("pg_url") if database == "postgresql" else None
    app = make_app(
        tmp_path,
        database,
        pg,
        **twilio_overrides(
            fake_twilio, tmp_path, ENGAGE_VOICE_CALLBACK="1", TWILIO_VOICE_FROM=VOICE_FROM
        ),
    )
    publish(app, [VOICE_SURVEYS])
    yield app
    app.extensions["engage.engine"].dispose()


def miss_a_call(app, fake_twilio, phone: str = WORKER):
    form = {
        "CallSid": new_sid("CA"),
        "AccountSid": fake_twilio.account_sid,
        "From": phone,
        "To": OUR_NUMBER,
        "CallStatus": "ringing",
        "Direction": "inbound",
    }
    return post_signed(app.test_client(), fake_twilio.auth_token, "/twilio/voice", form)


def calls(app) -> list[Call]:
    with app.app_context(), db.transaction() as session:
        return list(session.scalars(select(Call).order_by(Call.id)))


class CalledBack(Caller):
    """The worker answering the call Engage placed: Twilio posts to the call's Url, with the
    worker as `To` and AnsweredBy from machine detection."""

    def answer(self, url: str, sid: str, answered_by: str = "human"):
        self.sid = sid
        self.answered_by = answered_by
        return self.post(url, self.form())

    def form(self, **extra: str) -> dict[str, str]:
        form = super().form(**extra)
        form.update(From=VOICE_FROM, To=self.phone, Direction="outbound-api")
        if getattr(self, "answered_by", None):
            form["AnsweredBy"] = self.answered_by
        return form


def test_a_missed_call_is_rejected_as_busy_and_called_back(callback_app, fake_twilio):
    response = miss_a_call(callback_app, fake_twilio)
    assert response.status_code == 200
    assert b'<Reject reason="busy"' in response.data
    placed = fake_twilio.calls
    assert len(placed) == 1
    form = placed[0]["form"]
    assert (form["To"], form["From"], form["MachineDetection"]) == (WORKER, VOICE_FROM, "Enable")
    url = urlsplit(form["Url"])
    assert f"{url.scheme}://{url.netloc}{url.path}" == PUBLIC_URL + "/twilio/voice"
    token = parse_qs(url.query)["c"][0]
    assert form["StatusCallback"] == f"{PUBLIC_URL}/twilio/voice/status?c={token}"
    assert WORKER not in form["Url"] and WORKER not in form["StatusCallback"]
    [call] = calls(callback_app)
    assert (call.purpose, call.status, call.sid) == ("callback", "dialing", placed[0]["sid"])

    # The worker answers: the language menu, then the survey, as on a call they made.
    worker = CalledBack(callback_app.test_client(), fake_twilio.auth_token, WORKER)
    heard = worker.answer(form["Url"], placed[0]["sid"])
    assert "Para español, oprima 1." in heard.says
    heard = worker.press("1")
    assert "Le llama Centro Campesino." in heard.says
    worker.press("1")
    worker.press("2")
    with callback_app.app_context(), db.transaction() as session:
        contact = session.scalars(select(Contact)).one()
        assert contact.has_consented and contact.language == "es"
    assert len(calls(callback_app)) == 1  # the answered call is the callback's own row


def test_a_second_missed_call_meanwhile_calls_back_once(callback_app, fake_twilio):
    miss_a_call(callback_app, fake_twilio)
    response = miss_a_call(callback_app, fake_twilio)
    assert b'<Reject reason="busy"' in response.data
    assert len(fake_twilio.calls) == 1
    miss_a_call(callback_app, fake_twilio, "+15551230078")
    assert len(fake_twilio.calls) == 2


def test_an_answering_machine_hears_nothing(callback_app, fake_twilio):
    miss_a_call(callback_app, fake_twilio)
    [placed] = fake_twilio.calls
    worker = CalledBack(callback_app.test_client(), fake_twilio.auth_token, WORKER)
    heard = worker.answer(placed["form"]["Url"], placed["sid"], answered_by="machine_start")
    assert heard.hangs_up and not heard.says and not heard.plays
    [call] = calls(callback_app)
    assert call.answered_by == "machine_start"
    with callback_app.app_context(), db.transaction() as session:
        assert session.scalars(select(Contact)).all() == []
        assert session.scalars(select(Message)).all() == []


def test_an_opted_out_number_is_never_called_back(callback_app, fake_twilio):
    post_signed(
        callback_app.test_client(),
        fake_twilio.auth_token,
        "/twilio/messages",
        inbound_form(WORKER, "ALTO"),
    )
    response = miss_a_call(callback_app, fake_twilio)
    assert b'<Reject reason="busy"' in response.data
    assert fake_twilio.calls == [] and calls(callback_app) == []


def test_status_callbacks_keep_the_furthest_status_and_forget_the_number(callback_app, fake_twilio):
    miss_a_call(callback_app, fake_twilio)
    [placed] = fake_twilio.calls
    callback = placed["form"]["StatusCallback"]
    client = callback_app.test_client()
    path = urlsplit(callback).path + "?" + urlsplit(callback).query

    def status(value: str, sequence: int, **extra: str):
        form = {
            "CallSid": placed["sid"],
            "CallStatus": value,
            "SequenceNumber": str(sequence),
            **extra,
        }
        response = post_signed(client, fake_twilio.auth_token, path, form)
        assert response.status_code == 204
        return response

    status("completed", 3, CallDuration="42")
    status("ringing", 1)  # late, and out of order
    [call] = calls(callback_app)
    assert (call.status, call.duration, call.their_address_encrypted) == ("completed", 42, None)
    assert call.ended_at is not None
    unknown = {"CallSid": new_sid("CA"), "CallStatus": "completed"}
    assert (
        post_signed(client, fake_twilio.auth_token, "/twilio/voice/status", unknown).status_code
        == 204
    )
    assert (
        post_signed(client, fake_twilio.auth_token, "/twilio/voice/status", {}).status_code == 400
    )


def test_a_refused_call_ends_failed_and_a_new_missed_call_calls_again(callback_app, fake_twilio):
    fake_twilio.fail_next(1, status=400, code=21215)
    miss_a_call(callback_app, fake_twilio)
    [call] = calls(callback_app)
    assert (call.status, call.error_code, call.their_address_encrypted) == ("failed", 21215, None)
    miss_a_call(callback_app, fake_twilio)
    assert [c.status for c in calls(callback_app)] == ["failed", "dialing"]


def test_without_callbacks_the_call_is_answered(voice_app, fake_twilio):
    worker = Caller(voice_app.test_client(), fake_twilio.auth_token, WORKER)
    heard = worker.call()
    assert heard.gather is not None and fake_twilio.calls == []


def test_with_redis_the_call_back_is_a_job_on_replies(
    request, tmp_path, database, fake_twilio, redis_url
):
    """A call back is a reply: its job waits on `replies` (which workers take before `bulk`),
    never on `bulk`, and a worker places it."""
    from engage.jobs import BULK, REPLIES, queue
    from engage.jobs.worker import run_worker

    pg = request.getfixturevalue("pg_url") if database == "postgresql" else None
    app = make_app(
        tmp_path,
        database,
        pg,
        **twilio_overrides(
            fake_twilio,
            tmp_path,
            ENGAGE_VOICE_CALLBACK="1",
            TWILIO_VOICE_FROM=VOICE_FROM,
            REDIS_URL=redis_url,
        ),
    )
    publish(app, [VOICE_SURVEYS])
    miss_a_call(app, fake_twilio)
    with app.app_context():
        assert [job.func_name for job in queue(REPLIES).jobs] == ["engage.jobs.calls.place_call"]
        assert queue(BULK).jobs == []
        assert fake_twilio.calls == []  # not placed in the web request
        run_worker(burst=True)
    assert [call["form"]["To"] for call in fake_twilio.calls] == [WORKER]
    app.extensions["engage.engine"].dispose()
