"""Voice campaigns: `engage campaigns start SURVEY --channel voice` calls each contact through
the Calls API (answering-machine detection on), at the caller ID's rate, never in the contact's
quiet hours, never an opted-out number; the call opens the invitation; status callbacks feed the
campaign's progress; pause, resume and cancel."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from click.testing import CliRunner
from conftest import SHIPPED_SURVEYS, TEST_SURVEYS, Clock, make_app, publish
from flask.cli import ScriptInfo
from sqlalchemy import select
from twilio_helpers import PUBLIC_URL, inbound_form, post_signed, twilio_overrides
from voice_caller import Caller

from engage import db
from engage.cli import main
from engage.models import Call, Campaign, Contact, Conversation, Message
from tests.conftest import WEB_PASSWORD
from tests.test_web_access import sign_in

VOICE_SURVEYS = Path(__file__).resolve().parent / "voice"
VOICE_FROM = "+15005550006"
SURVEY = "llamada"
MIAMI, SEATTLE, MIAMI_EN, MIAMI_HT = "+13055550101", "+12065550102", "+13055550103", "+13055550104"


@pytest.fixture
def voice_campaign_app(request, tmp_path: Path, database: str, fake_twilio):
    """Build apps wired to the fake Twilio with a caller ID and the phone survey published."""
    built = []

    def build(*, prepare: bool = True, **extra):
        pg = request.getfixturevalue("pg_url") if database == "postgresql" else None
        settings = {"TWILIO_VOICE_FROM": VOICE_FROM, "ENGAGE_CALL_RATE": "50", **extra}
        app = make_app(
            tmp_path,
            database,
            pg,
            prepare=prepare,
            **twilio_overrides(fake_twilio, tmp_path, **settings),
        )
        if prepare:
            publish(app, [SHIPPED_SURVEYS, TEST_SURVEYS, VOICE_SURVEYS])
        built.append(app)
        return app

    yield build
    for app in built:
        app.extensions["engage.engine"].dispose()


def cli(app, *args):
    return CliRunner().invoke(main, list(args), obj=ScriptInfo(create_app=lambda: app))


def import_contacts(app, tmp_path, lines):
    path = tmp_path / "contacts.csv"
    path.write_text("phone,language,consent_source,state\n" + "\n".join(lines) + "\n")
    result = cli(app, "contacts", "import", str(path))
    assert result.exit_code == 0, result.output


def calls(app) -> list[Call]:
    with app.app_context(), db.transaction() as session:
        return list(session.scalars(select(Call).order_by(Call.id)))


def called(fake_twilio) -> list[str]:
    return [call["form"]["To"] for call in fake_twilio.calls]


def call_requests(fake_twilio):
    return [r for r in fake_twilio.requests if r.path.endswith("/Calls.json")]


def work(app):
    from engage.jobs.worker import run_worker

    with app.app_context():
        run_worker(burst=True)


def set_clock(app, when: datetime) -> Clock:
    clock = Clock(when)
    app.extensions["engage.clock"] = clock
    return clock


def run_clock(app, clock: Clock) -> dict[str, int]:
    from engage.jobs.campaigns import run_campaign_clock

    with app.app_context():
        return run_campaign_clock(clock.now)


class CalledWorker(Caller):
    """The worker answering a campaign's call: Twilio posts to the call's Url with the worker
    as `To` and AnsweredBy from machine detection."""

    def answer(self, placed: dict, answered_by: str = "human"):
        self.sid = placed["sid"]
        self.answered_by = answered_by
        return self.post(placed["form"]["Url"], self.form())

    def form(self, **extra: str) -> dict[str, str]:
        form = super().form(**extra)
        form.update(From=VOICE_FROM, To=self.phone, Direction="outbound-api")
        if getattr(self, "answered_by", None):
            form["AnsweredBy"] = self.answered_by
        return form


def call_status(app, fake_twilio, placed: dict, status: str, sequence: int, **extra: str) -> None:
    callback = urlsplit(placed["form"]["StatusCallback"])
    form = {"CallSid": placed["sid"], "CallStatus": status, "SequenceNumber": str(sequence)}
    response = post_signed(
        app.test_client(),
        fake_twilio.auth_token,
        f"{callback.path}?{callback.query}",
        {**form, **extra},
    )
    assert response.status_code == 204


def test_a_voice_campaign_calls_each_eligible_contact_once_with_machine_detection(
    voice_campaign_app, fake_twilio, tmp_path
):
    app = voice_campaign_app(ENGAGE_QUIET_HOURS="0-0")
    opted_out = "+13055550105"
    import_contacts(
        app,
        tmp_path,
        [f"{MIAMI},es,clinic,FL", f"{MIAMI_EN},en,clinic,FL", f"{MIAMI_HT},ht,clinic,FL"]
        + [f"{opted_out},es,clinic,FL"],
    )
    post_signed(
        app.test_client(),
        fake_twilio.auth_token,
        "/twilio/messages",
        inbound_form(opted_out, "ALTO"),
    )
    fake_twilio.reset()

    result = cli(app, "campaigns", "start", SURVEY, "--channel", "voice")
    assert result.exit_code == 0, result.output
    assert "campaign 1: 3 invited, 3 call(s) due now" in result.output
    assert sorted(called(fake_twilio)) == [MIAMI, MIAMI_EN, MIAMI_HT]  # never the opted out
    assert fake_twilio.requests == call_requests(fake_twilio)  # no text was sent
    rows = calls(app)
    for placed, row in zip(fake_twilio.calls, rows, strict=True):
        form = placed["form"]
        assert (form["From"], form["MachineDetection"]) == (VOICE_FROM, "Enable")
        assert form["Url"] == f"{PUBLIC_URL}/twilio/voice?c={row.token}"
        assert form["StatusCallback"] == f"{PUBLIC_URL}/twilio/voice/status?c={row.token}"
        assert (row.purpose, row.campaign_id, row.status, row.sid) == (
            "campaign",
            1,
            "dialing",
            placed["sid"],
        )
        # The number is read from the contact when the call is placed, never kept on the call.
        assert row.their_address_encrypted is None and row.conversation_id is not None
    with app.app_context(), db.transaction() as session:
        contacts = {c.id: c for c in session.scalars(select(Contact))}
        conversations = {c.id: c for c in session.scalars(select(Conversation))}
        assert session.scalars(select(Message).where(Message.campaign_id.is_not(None))).all() == []
    assert [contacts[row.contact_id].phone_hash for row in rows] == [row.phone_hash for row in rows]
    invitations = [conversations[row.conversation_id] for row in rows]
    assert {(c.survey_id, c.channel, c.pending, c.is_invited) for c in invitations} == {
        (SURVEY, "voice", "_consent", True)
    }
    # Kreyòl is not offered by phone: that contact is called in Spanish, the first voice language.
    assert [c.language for c in invitations] == ["es", "en", "es"]

    # Started again: nobody is called twice.
    again = cli(app, "campaigns", "start", SURVEY, "--channel", "voice")
    assert "0 invited" in again.output and len(fake_twilio.calls) == 3


def test_a_survey_not_offered_by_phone_or_reminders_refuse_a_voice_campaign(
    voice_campaign_app, tmp_path
):
    app = voice_campaign_app()
    import_contacts(app, tmp_path, [f"{MIAMI},es,clinic,FL"])
    result = cli(app, "campaigns", "start", "housing-check", "--channel", "voice")
    assert result.exit_code == 1
    assert "survey 'housing-check' is not offered by phone" in result.output
    result = cli(
        app,
        "campaigns",
        "start",
        SURVEY,
        "--channel",
        "voice",
        "--reminders",
        "1",
        "--remind-after",
        "24",
    )
    assert (
        result.exit_code == 1 and "reminders are not offered for voice campaigns" in result.output
    )
    with app.app_context():
        assert db.session().scalars(select(Campaign)).all() == []


def test_calls_keep_to_the_call_rate_across_workers(
    voice_campaign_app, fake_twilio, redis_url, tmp_path
):
    from engage.jobs import BULK, dispatch_campaign_calls, queue
    from engage.jobs.calls import place_campaign_calls
    from engage.jobs.campaigns import run_campaign_clock

    app = voice_campaign_app(REDIS_URL=redis_url, ENGAGE_CALL_RATE="2", ENGAGE_QUIET_HOURS="0-0")
    phones = [f"+1305555{n:04d}" for n in range(8)]
    import_contacts(app, tmp_path, [f"{phone},es,clinic,FL" for phone in phones])
    result = cli(app, "campaigns", "start", SURVEY, "--channel", "voice")
    assert "8 invited" in result.output
    with app.app_context():
        # A burst of dispatches (and the clock's) queues one placer, not many.
        for _ in range(5):
            dispatch_campaign_calls(1)
        assert run_campaign_clock()["campaigns_calling"] == 1
        assert queue(BULK).count == 1
    # Two workers (two processes' apps, one Redis) place the campaign's calls at once.
    other = voice_campaign_app(
        prepare=False, REDIS_URL=redis_url, ENGAGE_CALL_RATE="2", ENGAGE_QUIET_HOURS="0-0"
    )

    def place_in_other():
        with other.app_context():
            place_campaign_calls(1)

    thread = threading.Thread(target=place_in_other)
    thread.start()
    work(app)
    thread.join(30)
    assert sorted(called(fake_twilio)) == phones  # each once
    times = sorted(r.time for r in call_requests(fake_twilio))
    for i in range(len(times) - 2):
        assert times[i + 2] - times[i] > 0.95  # no one-second window holds 3


def test_nobody_is_called_in_their_quiet_hours(voice_campaign_app, fake_twilio, tmp_path):
    app = voice_campaign_app()  # quiet hours 21-8
    import_contacts(app, tmp_path, [f"{MIAMI},es,clinic,FL", f"{SEATTLE},es,clinic,WA"])
    # 22:30 in Miami, 19:30 in Seattle.
    result = cli(
        app, "campaigns", "start", SURVEY, "--channel", "voice", "--at", "2031-03-04T22:30:00-05:00"
    )
    assert "2 invited, 0 call(s) due now, 2 scheduled" in result.output
    by_phone = dict(zip([MIAMI, SEATTLE], calls(app), strict=True))
    assert by_phone[MIAMI].call_after == datetime(2031, 3, 5, 13, tzinfo=UTC)  # 08:00 in Miami
    assert by_phone[SEATTLE].call_after == datetime(2031, 3, 5, 3, 30, tzinfo=UTC)  # the start

    # 21:30 in Seattle: its call is due, but night came while it waited; Miami's is not due.
    clock = set_clock(app, datetime(2031, 3, 5, 5, 30, tzinfo=UTC))
    run_clock(app, clock)
    assert fake_twilio.calls == []
    by_phone = dict(zip([MIAMI, SEATTLE], calls(app), strict=True))
    assert by_phone[SEATTLE].call_after == datetime(2031, 3, 5, 16, tzinfo=UTC)  # 08:00 there
    clock.now = datetime(2031, 3, 5, 12, 59, tzinfo=UTC)
    run_clock(app, clock)
    assert fake_twilio.calls == []
    clock.now = datetime(2031, 3, 5, 13, 0, 30, tzinfo=UTC)  # morning in Miami
    assert run_clock(app, clock)["campaigns_calling"] == 1
    assert called(fake_twilio) == [MIAMI]
    clock.now = datetime(2031, 3, 5, 16, 0, 30, tzinfo=UTC)  # morning in Seattle
    assert run_clock(app, clock)["campaigns_finished"] == 1  # nothing left to place
    assert called(fake_twilio) == [MIAMI, SEATTLE]


def test_a_contact_who_opts_out_before_their_call_is_never_called(
    voice_campaign_app, fake_twilio, tmp_path
):
    app = voice_campaign_app()
    import_contacts(app, tmp_path, [f"{MIAMI},es,clinic,FL", f"{MIAMI_EN},en,clinic,FL"])
    cli(app, "campaigns", "start", SURVEY, "--channel", "voice", "--at", "2031-03-04T11:00-05:00")
    post_signed(
        app.test_client(), fake_twilio.auth_token, "/twilio/messages", inbound_form(MIAMI, "ALTO")
    )
    fake_twilio.reset()
    clock = set_clock(app, datetime(2031, 3, 4, 16, 1, tzinfo=UTC))
    run_clock(app, clock)
    assert called(fake_twilio) == [MIAMI_EN]
    assert [c.status for c in calls(app)] == ["canceled", "dialing"]


def test_the_answered_call_hears_who_calls_the_consent_then_the_first_question(
    voice_campaign_app, fake_twilio, tmp_path
):
    app = voice_campaign_app(ENGAGE_QUIET_HOURS="0-0")
    import_contacts(app, tmp_path, [f"{MIAMI},es,clinic,FL", f"{MIAMI_EN},en,clinic,FL"])
    with app.app_context(), db.transaction() as session:
        session.scalars(select(Contact).where(Contact.id == 2)).one().has_consented = True
    cli(app, "campaigns", "start", SURVEY, "--channel", "voice")
    first, second = fake_twilio.calls

    worker = CalledWorker(app.test_client(), fake_twilio.auth_token, MIAMI)
    heard = worker.answer(first)
    # Not "welcome back": the organisation, then the consent (9 never to be called again).
    assert heard.says[0] == "Le llama Centro Campesino."
    assert "Bienvenido" not in heard.text and "oprima 9" in heard.text
    heard = worker.press("1")
    assert "Son cinco preguntas cortas." in heard.text
    assert "¿En qué estado trabaja?" in heard.text
    assert [c.answered_by for c in calls(app)][0] == "human"

    # Consented before: who calls, the survey's title, and "press 1".
    consented = CalledWorker(app.test_client(), fake_twilio.auth_token, MIAMI_EN)
    heard = consented.answer(second)
    assert heard.says == ["This call is from Centro Campesino.", "Your work", "Press 1."]
    heard = consented.press("1")
    assert "Which state do you work in?" in heard.text


def test_status_callbacks_feed_the_campaign_progress(voice_campaign_app, fake_twilio, tmp_path):
    app = voice_campaign_app(ENGAGE_QUIET_HOURS="0-0")
    app.config["WTF_CSRF_ENABLED"] = True
    from engage.services.accounts import create_user

    with app.app_context(), db.transaction() as session:
        create_user(session, "staff@example.org", WEB_PASSWORD, "staff")
    phones = [MIAMI, MIAMI_EN, SEATTLE, MIAMI_HT]
    import_contacts(app, tmp_path, [f"{phone},es,clinic,FL" for phone in phones])
    cli(app, "campaigns", "start", SURVEY, "--channel", "voice")
    busy, human, machine, unanswered = fake_twilio.calls
    staff = app.test_client()
    sign_in(staff, "staff")

    def progress():
        response = staff.get("/staff/campaigns/1/progress.json")
        assert response.status_code == 200
        return response.get_json()

    counts = progress()
    assert (counts["invited"], counts["placed"], counts["answered"]) == (4, 4, 0)

    call_status(app, fake_twilio, busy, "busy", 2, CallDuration="0")
    worker = CalledWorker(app.test_client(), fake_twilio.auth_token, MIAMI_EN)
    worker.answer(human)
    worker.press("1")  # takes part
    call_status(app, fake_twilio, human, "completed", 3, CallDuration="95")
    assert (
        CalledWorker(app.test_client(), fake_twilio.auth_token, SEATTLE)
        .answer(machine, answered_by="machine_start")
        .hangs_up
    )
    call_status(app, fake_twilio, machine, "completed", 3, CallDuration="4")
    call_status(app, fake_twilio, unanswered, "no-answer", 2)
    call_status(app, fake_twilio, busy, "ringing", 1)  # late, and out of order: ignored
    assert progress() == {
        "contacts": 4,
        "invited": 4,
        "placed": 4,
        "answered": 1,
        "machine": 1,
        "busy": 1,
        "no_answer": 1,
        "failed": 0,
        "started": 1,
        "consented": 1,
        "completed": 0,
        "opted_out": 0,
        "state": "running",
    }
    page = staff.get("/staff/campaigns/1").get_data(as_text=True)
    assert 'id="count-machine" data-count="machine">1<' in page
    assert 'data-key="placed"' in page and "Llamada de voz" in page


def test_pause_stops_placing_and_resume_goes_on(
    voice_campaign_app, fake_twilio, redis_url, tmp_path
):
    app = voice_campaign_app(REDIS_URL=redis_url, ENGAGE_QUIET_HOURS="0-0")
    phones = [f"+1305555{n:04d}" for n in range(3)]
    import_contacts(app, tmp_path, [f"{phone},es,clinic,FL" for phone in phones])
    result = cli(app, "campaigns", "start", SURVEY, "--channel", "voice")
    assert "3 invited, 3 call(s) due now" in result.output  # its placer waits on `bulk`
    assert "paused" in cli(app, "campaigns", "pause", "1").output
    work(app)
    assert fake_twilio.calls == []
    assert {c.status for c in calls(app)} == {"queued"}
    resumed = cli(app, "campaigns", "resume", "1")
    assert "resumed; 3 call(s) due now" in resumed.output
    work(app)
    assert sorted(called(fake_twilio)) == phones


def test_cancel_cancels_the_queued_calls_and_undoes_their_invitations(
    voice_campaign_app, fake_twilio, tmp_path
):
    app = voice_campaign_app()
    import_contacts(app, tmp_path, [f"{MIAMI},es,clinic,FL", f"{SEATTLE},es,clinic,WA"])
    cli(app, "campaigns", "start", SURVEY, "--channel", "voice", "--at", "2031-03-04T22:30-05:00")
    clock = set_clock(app, datetime(2031, 3, 5, 3, 31, tzinfo=UTC))
    run_clock(app, clock)
    assert called(fake_twilio) == [SEATTLE]  # Miami waits for its morning
    result = cli(app, "campaigns", "cancel", "1")
    assert "cancelled; 1 queued call(s) dropped" in result.output
    assert [c.status for c in calls(app)] == ["canceled", "dialing"]
    with app.app_context(), db.transaction() as session:
        # Miami's invitation never reached them: undone. Seattle's call went: it stays.
        kept = session.scalars(select(Conversation.contact_id)).all()
        miami = session.scalars(select(Call).where(Call.status == "canceled")).one()
    assert kept == [2] and miami.conversation_id is None
    clock.now = datetime(2031, 3, 5, 13, 1, tzinfo=UTC)
    run_clock(app, clock)
    assert called(fake_twilio) == [SEATTLE]


def test_a_placer_out_of_time_hands_the_rest_to_a_new_job(
    voice_campaign_app, fake_twilio, redis_url, tmp_path, monkeypatch, caplog
):
    # 6 calls at 4 a second take more than a second; a placer may run 0.5 s here.
    monkeypatch.setattr("engage.jobs.calls.PLACER_SECONDS", 0.5)
    caplog.set_level("INFO", logger="engage.jobs.calls")
    app = voice_campaign_app(REDIS_URL=redis_url, ENGAGE_CALL_RATE="4", ENGAGE_QUIET_HOURS="0-0")
    phones = [f"+1305555{n:04d}" for n in range(6)]
    import_contacts(app, tmp_path, [f"{phone},es,clinic,FL" for phone in phones])
    cli(app, "campaigns", "start", SURVEY, "--channel", "voice")
    work(app)
    assert [r for r in caplog.records if "handed to a new job" in r.getMessage()]
    assert sorted(called(fake_twilio)) == phones  # each once


def test_a_paused_voice_campaigns_invitations_do_not_expire_before_their_call(
    voice_campaign_app, fake_twilio, redis_url, tmp_path
):
    from datetime import timedelta

    from sqlalchemy import update

    from engage.db import utcnow
    from engage.services.maintenance import expire_idle_conversations

    app = voice_campaign_app(REDIS_URL=redis_url, ENGAGE_QUIET_HOURS="0-0")
    import_contacts(app, tmp_path, [f"{MIAMI},es,clinic,FL", f"{SEATTLE},es,clinic,WA"])
    cli(app, "campaigns", "start", SURVEY, "--channel", "voice")
    assert "paused" in cli(app, "campaigns", "pause", "1").output
    with app.app_context(), db.transaction() as session:
        # Four days paused; one of the two was called before the pause.
        session.execute(update(Conversation).values(last_activity_at=utcnow() - timedelta(days=4)))
        session.execute(update(Call).where(Call.id == 2).values(status="completed"))
        assert expire_idle_conversations(session, idle_hours=72) == 1
        statuses = dict(session.execute(select(Conversation.contact_id, Conversation.status)).all())
    assert statuses == {1: "active", 2: "expired"}
