"""Safety flags: help at once, urgent messages for staff, alerts to a webhook
(docs/conversation.md §8), through `engage simulate`, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from sqlalchemy import select

from engage import db
from engage.models import Answer, Contact, Message
from engage.survey.texts import SystemTexts
from tests import readback as rb

LOCALES = Path(__file__).resolve().parent.parent / "locales"
PHONE = "+15551230001"


def sms_texts(language: str) -> SystemTexts:
    return SystemTexts(LOCALES, language, "Centro Campesino").sms


def inbound(app) -> list[tuple[str, str, bool, str | None]]:
    """Every inbound message: (body, kind, is_urgent, urgent_topic), in order."""
    with app.app_context():
        rows = db.session().scalars(
            select(Message).where(Message.direction == "in").order_by(Message.id)
        )
        return [(rb.body(app, m), m.kind, m.is_urgent, m.urgent_topic) for m in rows]


def answers(app) -> dict[str, tuple[str, object]]:
    with app.app_context():
        rows = db.session().scalars(select(Answer).order_by(Answer.id))
        return {a.question_id: (a.status, rb.value(app, a)) for a in rows}


def misses(app) -> list[str]:
    from engage.models import Conversation

    with app.app_context():
        conversation = db.session().scalars(select(Conversation)).one()
        return rb.misses(app, conversation)


def age_safety_help(app, hours: float) -> None:
    with app.app_context(), db.transaction() as session:
        for row in session.scalars(select(Contact)):
            row.last_safety_help_at -= timedelta(hours=hours)


# To the last question (`comments`, free text), in each language: consent, then the shortest
# path (worked 6 days, 10 hours a day; a contract before the visa; no fee; their own passport).
TO_END = ("1", "1", "1", "1", "6", "10", "1", "5", "1", "5", "7", "1", "1", "1", "1", "5")
TO_COMMENTS = {
    "es": ("TRABAJO", *TO_END[:3], "no", *TO_END[4:]),
    "en": ("WORK", *TO_END[:3], "no", *TO_END[4:]),
    "ht": ("TRAVAY", *TO_END[:3], "non", *TO_END[4:]),
}
COMMENTS_PROMPT = {
    "es": "¿Quiere contarnos algo mas?",  # on SMS, in plain GSM-7 spelling
    "en": "Anything else you want to tell us?",
    "ht": "Ou vle di nou yon lòt bagay?",
}
STATE_PROMPT = {"es": "¿En qué estado trabaja ahora?", "en": "Which state do you work in now?"}


@pytest.mark.parametrize(
    ("language", "start", "distress"),
    [("es", "TRABAJO", "AUXILIO"), ("en", "WORK", "help me!"), ("ht", "TRAVAY", "Anmwe")],
)
def test_a_distress_word_mid_survey_gets_help_at_once_and_the_survey_goes_on(
    worker, app, language, start, distress
):
    w = worker()
    w.script(start, "1")
    reply = w.send(distress)
    assert reply.startswith(sms_texts(language).help())
    assert inbound(app)[-1][1:] == ("help", True, "distress")
    assert "state" not in answers(app) and misses(app) == []
    w.send("1")  # the state question is still the one waiting
    assert answers(app)["state"][0] == "answered"


@pytest.mark.parametrize(
    ("language", "text", "topic"),
    [
        ("es", "Me quitaron el pasaporte y no me dejan salir", "documents"),
        ("en", "The boss has my passport", "documents"),
        ("ht", "Yo pa peye m depi de semèn", "not_paid"),
    ],
)
def test_a_safety_phrase_in_a_text_answer_is_urgent_and_gets_help_once_a_day(
    worker, app, language, text, topic
):
    w = worker()
    assert COMMENTS_PROMPT[language] in w.script(*TO_COMMENTS[language])[-1]
    reply = w.send(text)
    help_text = sms_texts(language).help()
    assert reply.startswith(help_text)
    assert sms_texts(language).may_delete() in reply  # the answer is taken: the survey ends
    assert answers(app)["comments"] == ("answered", text)
    assert inbound(app)[-1] == (text, "answer", True, topic)
    # Within 24 hours a second safety phrase is flagged but gets no second help text.
    second = w.send(text)
    assert help_text not in second
    assert inbound(app)[-1][1:] == ("safety", True, topic)
    # A day later, it would.
    age_safety_help(app, 24)
    assert w.send(text).startswith(help_text)


@pytest.mark.parametrize(
    ("language", "start", "text"),
    [
        ("es", "TRABAJO", "el patron me amenaza, tiene mi pasaporte"),
        ("en", "WORK", "they threaten us every day"),
    ],
)
def test_a_safety_phrase_that_is_no_answer_is_no_miss_and_gets_no_hint(
    worker, app, language, start, text
):
    w = worker()
    w.script(start, "1")
    reply = w.send(text)
    t = sms_texts(language)
    assert reply.startswith(t.help())
    assert t.hint_choice(16) not in reply
    assert STATE_PROMPT[language] in reply  # the question again, after the help
    assert misses(app) == []
    assert inbound(app)[-1][1:3] == ("safety", True)
    # Again within the day: the question again, still no hint and no miss.
    again = w.send(text)
    assert t.help() not in again and t.hint_choice(16) not in again
    assert STATE_PROMPT[language] in again
    assert misses(app) == []
    # An ordinary miss still counts.
    assert t.hint_choice(16) in w.send("no se")
    assert misses(app) == ["no se"]


@pytest.mark.parametrize(
    ("language", "text"),
    [("es", "no me pagan"), ("en", "I have a big debt"), ("ht", "yo menase m")],
)
def test_outside_a_conversation_help_replaces_the_no_conversation_reply(
    worker, app, language, text
):
    w = worker()
    w.send("hola")  # the language menu
    w.send({"es": "1", "en": "2", "ht": "3"}[language])
    assert w.send(text) == sms_texts(language).help()
    assert inbound(app)[-1][1:3] == ("safety", True)
    assert w.send(text) == ""  # flagged again; no help twice in a day, no nudge instead


def test_a_first_message_with_safety_words_gets_help_in_its_language(worker, app):
    w = worker()
    assert w.send("yo pran paspò m") == sms_texts("ht").help()
    assert inbound(app) == [("yo pran paspò m", "safety", True, "documents")]


def test_a_valid_answer_is_never_flagged(worker, app):
    w = worker()
    w.script(*TO_COMMENTS["en"][:5])  # to the days worked
    w.send("no money")  # a miss, nothing urgent
    w.send("6")
    assert not any(urgent for _b, _k, urgent, _t in inbound(app))


def test_an_opted_out_contact_is_flagged_for_staff_but_sent_nothing(worker, app):
    w = worker()
    w.script("TRABAJO", "ALTO")
    assert w.send("me pegan") == ""
    assert inbound(app)[-1][1:] == ("ignored", True, "beaten")
    assert w.send("SOCORRO") == sms_texts("es").help()
    assert inbound(app)[-1][1:] == ("help", True, "distress")


def test_replies_are_never_flagged(worker, app):
    worker().script("TRABAJO", "1", "auxilio")
    with app.app_context():
        flagged = db.session().scalars(select(Message).where(Message.is_urgent.is_(True))).all()
        assert [m.direction for m in flagged] == ["in"]


# -- alerts ------------------------------------------------------------------------------------


class AlertHook:
    """A webhook on 127.0.0.1 that records what it gets; answers 500 while `is_failing`."""

    def __init__(self) -> None:
        self.received: list[dict] = []
        self.raw: list[bytes] = []
        self.is_failing = False
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                hook.raw.append(body)
                if hook.is_failing:
                    self.send_response(500)
                else:
                    hook.received.append(json.loads(body))
                    self.send_response(204)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> AlertHook:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def alert_hook():
    with AlertHook() as hook:
        yield hook


@pytest.fixture
def alert_app(app, alert_hook):
    app.config["ENGAGE_ALERT_WEBHOOK"] = alert_hook.url
    app.config["ENGAGE_PUBLIC_URL"] = "https://engage.example.org"
    return app


def test_an_urgent_message_is_posted_to_the_webhook_without_text_or_number(
    worker, alert_app, alert_hook
):
    w = worker()
    w.script("TRABAJO", "1")
    w.send("me quitaron el pasaporte")
    with alert_app.app_context():
        message = db.session().scalars(select(Message).where(Message.is_urgent.is_(True))).one()
        assert message.alert_sent_at is not None
        contact_id, at = message.contact_id, message.created_at
    assert alert_hook.received == [
        {
            "contact": f"contact-{contact_id}",
            "topic": "documents",
            "at": at.isoformat(),
            "url": f"https://engage.example.org/staff/inbox/{contact_id}",
            "is_simulated": True,
        }
    ]
    raw = alert_hook.raw[0].decode()
    for secret in ("pasaporte", "quitaron", PHONE, PHONE[1:], PHONE[-7:]):
        assert secret not in raw
    w.send("hola")  # not urgent: no alert
    assert len(alert_hook.received) == 1


def test_a_failed_alert_is_retried_by_the_clock_until_it_succeeds(worker, alert_app, alert_hook):
    from engage.clock import run_periodic

    alert_hook.is_failing = True
    worker().script("WORK", "1", "they won't let me leave")
    assert len(alert_hook.raw) == 1 and alert_hook.received == []
    with alert_app.app_context(), db.transaction() as session:
        message = session.scalars(select(Message).where(Message.is_urgent.is_(True))).one()
        assert message.alert_sent_at is None
        message.created_at -= timedelta(minutes=2)  # past the job's own chance
    with alert_app.app_context():
        assert run_periodic()["alerts"] == 1  # still failing: tried again, still due
    assert len(alert_hook.raw) == 2
    alert_hook.is_failing = False
    with alert_app.app_context():
        run_periodic()
        assert run_periodic()["alerts"] == 0  # delivered: nothing more to do
    assert [a["topic"] for a in alert_hook.received] == ["not_free_to_leave"]
    with alert_app.app_context():
        assert db.session().scalars(select(Message.alert_sent_at).where(Message.is_urgent)).one()


def test_without_a_webhook_nothing_is_posted_and_the_flag_stays(worker, app, alert_hook):
    worker().script("TRABAJO", "1", "me pegan")
    assert alert_hook.raw == []
    assert inbound(app)[-1][2] is True


def test_with_redis_the_alert_is_a_job_on_replies(
    request, tmp_path, database, alert_hook, redis_url
):
    from redis import Redis

    from engage.jobs.worker import run_worker
    from tests.conftest import SHIPPED_SURVEYS, TEST_SURVEYS, Worker, make_app, publish

    pg = request.getfixturevalue("pg_url") if database == "postgresql" else None
    alert_app = make_app(
        tmp_path,
        database,
        pg,
        REDIS_URL=redis_url,
        ENGAGE_ALERT_WEBHOOK=alert_hook.url,
        ENGAGE_PUBLIC_URL="https://engage.example.org",
    )
    publish(alert_app, [SHIPPED_SURVEYS, TEST_SURVEYS])
    Worker(alert_app, "+15551230001").script("TRABAJO", "1", "nos tienen encerrados")
    assert alert_hook.raw == []  # not in the step: queued
    assert Redis.from_url(redis_url).lrange("rq:queue:replies", 0, -1) == [
        b"alert-5"
    ]  # the inbound row
    with alert_app.app_context():
        run_worker(burst=True)
    assert [a["topic"] for a in alert_hook.received] == ["locked_in"]


def test_an_urgent_message_through_the_twilio_webhook_is_alerted(
    twilio_app, fake_twilio, alert_hook
):
    from twilio_helpers import PUBLIC_URL, inbound_form, post_signed

    app = twilio_app(ENGAGE_ALERT_WEBHOOK=alert_hook.url)
    client = app.test_client()
    for body in ("TRABAJO", "1", "el mayordomo me amenaza, me amenazan todos"):
        response = post_signed(
            client, fake_twilio.auth_token, "/twilio/messages", inbound_form(PHONE, body)
        )
        assert response.status_code == 200
    [alert] = alert_hook.received
    assert alert["topic"] == "threats" and alert["is_simulated"] is False
    assert alert["url"] == f"{PUBLIC_URL}/staff/inbox/1"
    assert "amenaza" not in alert_hook.raw[0].decode()
