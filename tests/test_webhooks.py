"""POST /twilio/messages and /twilio/status: signatures, sizes, repeats, order, the outbox."""

from __future__ import annotations

import threading
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import func, select
from twilio.request_validator import RequestValidator
from twilio_helpers import OUR_NUMBER, PUBLIC_URL, inbound_form, new_sid, post_signed
from werkzeug.datastructures import ImmutableMultiDict

from engage import db
from engage.models import Contact, Message
from engage.web.decorators import is_signed_by_twilio
from tests import readback as rb

WORKER = "+15551230001"


def outbound(app):
    with app.app_context():
        return (
            db.session()
            .scalars(select(Message).where(Message.direction == "out").order_by(Message.id))
            .all()
        )


def count(app, model, *where):
    with app.app_context():
        return db.session().scalar(select(func.count()).select_from(model).where(*where))


@pytest.fixture
def app(twilio_app):
    return twilio_app()


def test_a_signed_message_is_answered_with_empty_twiml_and_the_reply_sent(app, fake_twilio):
    client = app.test_client()
    response = post_signed(
        client, fake_twilio.auth_token, "/twilio/messages", inbound_form(WORKER, "TRABAJO")
    )
    assert response.status_code == 200
    assert response.mimetype == "text/xml"
    assert response.data.endswith(b"<Response/>")
    [sent] = fake_twilio.requests
    assert sent.get("To") == WORKER
    assert sent.get("From") == OUR_NUMBER
    assert sent.get("Body").startswith("Centro Campesino le pregunta sobre su trabajo.")
    [row] = outbound(app)
    callback = urlsplit(sent.get("StatusCallback"))
    assert f"{callback.scheme}://{callback.netloc}" == PUBLIC_URL
    assert parse_qs(callback.query) == {"m": [str(row.id)]}
    assert row.status == "queued" and row.sid == fake_twilio.messages[0]["sid"]
    assert not fake_twilio.violations


@pytest.mark.parametrize(
    ("headers", "expected"),
    [({}, 403), ({"X-Twilio-Signature": "bm90IGEgc2lnbmF0dXJl"}, 403)],
)
def test_unsigned_or_badly_signed_posts_are_refused(app, headers, expected):
    response = app.test_client().post(
        "/twilio/messages", data=inbound_form(WORKER, "hola"), headers=headers
    )
    assert response.status_code == expected
    assert count(app, Message) == 0


def test_signature_is_checked_against_the_public_url_behind_a_proxy(app, fake_twilio):
    client = app.test_client()
    form = inbound_form(WORKER, "hola")
    # Signed for the URL the app sees (http://localhost), not the one Twilio called: refused.
    wrong = post_signed(
        client, fake_twilio.auth_token, "/twilio/messages", form, url_base="http://localhost"
    )
    assert wrong.status_code == 403
    right = post_signed(client, fake_twilio.auth_token, "/twilio/messages", form)
    assert right.status_code == 200


@pytest.mark.parametrize(
    ("signed_url", "checked_url", "accepted"),
    [
        (f"{PUBLIC_URL}/twilio/messages", f"{PUBLIC_URL}/twilio/messages", True),
        # Twilio signs with or without the default port: both are accepted, either way round.
        ("https://engage.example.org:443/twilio/messages", f"{PUBLIC_URL}/twilio/messages", True),
        (f"{PUBLIC_URL}/twilio/messages", "https://engage.example.org:443/twilio/messages", True),
        ("http://localhost/twilio/messages", f"{PUBLIC_URL}/twilio/messages", False),
        (f"{PUBLIC_URL}/twilio/messages?a=1", f"{PUBLIC_URL}/twilio/messages?a=2", False),
    ],
)
def test_the_signature_check_agrees_with_twilios_validator(signed_url, checked_url, accepted):
    token = "f" * 32
    fields = [*inbound_form(WORKER, "sí, ¿dónde?").items(), ("MediaUrl0", "b"), ("MediaUrl0", "a")]
    form = ImmutableMultiDict(fields)
    validator = RequestValidator(token)
    good = validator.compute_signature(signed_url, form)
    assert is_signed_by_twilio(token, checked_url, form, good) is accepted
    assert validator.validate(checked_url, form, good) is accepted
    # Any other signature, also one that is not ASCII, is refused (and the library agrees).
    for wrong in (good[:-2] + "==", "", "ñ" + good[1:]):
        assert is_signed_by_twilio(token, checked_url, form, wrong) is False
        assert validator.validate(checked_url, form, wrong) is False
    # Every value of a repeated field is signed.
    assert not is_signed_by_twilio(token, checked_url, ImmutableMultiDict(fields[:-1]), good)


def test_query_string_is_part_of_the_signed_url(app, fake_twilio):
    client = app.test_client()
    form = inbound_form(WORKER, "hola")
    ok = post_signed(client, fake_twilio.auth_token, "/twilio/messages?site=2", form)
    assert ok.status_code == 200


def test_malformed_and_oversized_posts(app, fake_twilio):
    client = app.test_client()
    form = inbound_form(WORKER, "hola")
    del form["MessageSid"], form["SmsSid"]
    assert post_signed(client, fake_twilio.auth_token, "/twilio/messages", form).status_code == 400
    huge = inbound_form(WORKER, "x" * 200_000)
    assert post_signed(client, fake_twilio.auth_token, "/twilio/messages", huge).status_code == 413
    assert count(app, Message) == 0


def test_a_repeated_message_sid_is_processed_once_even_at_the_same_instant(app, fake_twilio):
    form = inbound_form(WORKER, "TRABAJO")
    statuses = []
    barrier = threading.Barrier(6)

    def post() -> None:
        client = app.test_client()
        barrier.wait()
        statuses.append(
            post_signed(client, fake_twilio.auth_token, "/twilio/messages", form).status_code
        )

    threads = [threading.Thread(target=post) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert statuses == [200] * 6
    assert count(app, Message, Message.direction == "in") == 1
    assert count(app, Contact) == 1
    assert len(fake_twilio.requests) == 1


def test_messages_from_one_contact_at_the_same_instant_run_one_step_at_a_time(app, fake_twilio):
    client = app.test_client()
    post_signed(client, fake_twilio.auth_token, "/twilio/messages", inbound_form(WORKER, "WORK"))
    barrier = threading.Barrier(4)

    def post(text: str) -> None:
        barrier.wait()
        post_signed(
            app.test_client(),
            fake_twilio.auth_token,
            "/twilio/messages",
            inbound_form(WORKER, text),
        )

    threads = [threading.Thread(target=post, args=("1",)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # Consent, then three answers: had two steps overlapped, one would have answered the same
    # question again or been lost.
    with app.app_context():
        from engage.models import Answer

        answered = db.session().scalars(select(Answer.question_id).order_by(Answer.id)).all()
    assert answered == ["state", "main_crop", "first_season"]
    assert len(fake_twilio.requests) == 5


def test_whatsapp_sender_gets_replies_on_whatsapp(app, fake_twilio):
    client = app.test_client()
    form = inbound_form(f"whatsapp:{WORKER}", "WORK")
    assert post_signed(client, fake_twilio.auth_token, "/twilio/messages", form).status_code == 200
    [sent] = fake_twilio.requests
    assert sent.get("To") == f"whatsapp:{WORKER}"
    assert sent.get("From") == f"whatsapp:{OUR_NUMBER}"


def test_a_non_phone_sender_is_stored_without_contact_or_reply(app, fake_twilio):
    client = app.test_client()
    form = inbound_form("TWILIO", "promo")
    assert post_signed(client, fake_twilio.auth_token, "/twilio/messages", form).status_code == 200
    assert count(app, Message) == 1 and count(app, Contact) == 0
    assert fake_twilio.requests == []


def test_media_without_text_is_kept_and_answered_in_the_workers_language(app, fake_twilio):
    client = app.test_client()
    post_signed(client, fake_twilio.auth_token, "/twilio/messages", inbound_form(WORKER, "TRABAJO"))
    media = inbound_form(
        WORKER,
        "",
        NumMedia="1",
        MediaUrl0="https://api.twilio.com/media/ME1",
        MediaContentType0="image/jpeg",
    )
    post_signed(client, fake_twilio.auth_token, "/twilio/messages", media)
    # Together they fit the segment budget: one message, the hint first.
    [answered] = [r.get("Body") for r in fake_twilio.requests[1:]]
    assert answered.startswith("Por favor, responda con texto.\n\nCentro Campesino le pregunta")
    # Help and the consent together pass it: two messages, in order.
    fake_twilio.reset()
    post_signed(client, fake_twilio.auth_token, "/twilio/messages", inbound_form(WORKER, "AYUDA"))
    assert [r.get("Body")[:30] for r in fake_twilio.requests] == [
        "Centro Campesino pregunta a tr",
        "Centro Campesino le pregunta s",
    ]
    with app.app_context():
        kept = db.session().scalar(select(Message).where(Message.media_url.is_not(None)))
        assert rb.media_url(app, kept) == "https://api.twilio.com/media/ME1"


def test_only_allow_listed_fields_are_stored(app, fake_twilio):
    client = app.test_client()
    form = inbound_form(
        WORKER,
        "hola",
        ProfileName="Juana Pérez",
        WaId="15551230001",
        FromCity="FRESNO",
        FromState="CA",
        FromZip="93650",
    )
    post_signed(client, fake_twilio.auth_token, "/twilio/messages", form)
    with app.app_context(), db.engine().connect() as conn:
        from sqlalchemy import text

        dump = " ".join(str(r) for r in conn.execute(text("SELECT * FROM messages")))
        dump += " ".join(str(r) for r in conn.execute(text("SELECT * FROM contacts")))
    for secret in ("Juana", "FRESNO", "93650", "5551230001"):
        assert secret not in dump


# C0 and C1 control characters but tab and newline: PostgreSQL refuses a NUL in text outright.
HOSTILE_BODY = "\x00TRA\x01BA\x1bJO\x7f\x85\x9f\r\n"
CLEAN_BODY = "TRABAJO\n"


def test_control_characters_are_removed_from_worker_text_at_intake(app, fake_twilio):
    client = app.test_client()
    form = inbound_form(WORKER, HOSTILE_BODY, To=f"{OUR_NUMBER}\x00")
    response = post_signed(client, fake_twilio.auth_token, "/twilio/messages", form)
    assert response.status_code == 200
    media = inbound_form(
        WORKER,
        "sin\x00\tpago\x08\nhoy\u2028",
        NumMedia="1",
        MediaUrl0="https://api.twilio.com/media/ME1\x00\x9b",
    )
    assert post_signed(client, fake_twilio.auth_token, "/twilio/messages", media).status_code == 200
    with app.app_context():
        first, second = db.session().scalars(
            select(Message).where(Message.direction == "in").order_by(Message.id)
        )
        assert rb.body(app, first) == CLEAN_BODY and first.our_address == OUR_NUMBER
        assert (
            rb.body(app, second) == "sin\tpago\nhoy\u2028"
            and rb.media_url(app, second) == "https://api.twilio.com/media/ME1"
        )
    # Read without its control characters, the body is the survey's keyword: the survey starts.
    assert (
        fake_twilio.requests[0]
        .get("Body")
        .startswith("Centro Campesino le pregunta sobre su trabajo.")
    )


def test_control_characters_are_removed_from_simulated_text(app, worker):
    assert worker().send(HOSTILE_BODY).startswith("Centro Campesino le pregunta sobre su trabajo.")
    assert rb.inbound_bodies(app) == [CLEAN_BODY]


def status_form(sid: str, status: str, **extra) -> dict:
    return {
        "MessageSid": sid,
        "SmsSid": sid,
        "MessageStatus": status,
        "SmsStatus": status,
        "AccountSid": "AC" + "a" * 32,
        **extra,
    }


def test_status_only_moves_forward_whatever_the_order(app, fake_twilio):
    client = app.test_client()
    post_signed(client, fake_twilio.auth_token, "/twilio/messages", inbound_form(WORKER, "WORK"))
    [row] = outbound(app)
    path = f"/twilio/status?m={row.id}"
    for status in ("delivered", "sent", "queued", "sending"):
        response = post_signed(client, fake_twilio.auth_token, path, status_form(row.sid, status))
        assert response.status_code == 204
    assert outbound(app)[0].status == "delivered"
    post_signed(client, fake_twilio.auth_token, path, status_form(row.sid, "read"))
    assert outbound(app)[0].status == "read"


def test_a_callback_before_the_sid_is_known_is_applied(app, fake_twilio):
    client = app.test_client()
    fake_twilio.hang_next(1, seconds=3)  # the send's answer is lost: the row has no SID yet
    post_signed(client, fake_twilio.auth_token, "/twilio/messages", inbound_form(WORKER, "WORK"))
    [row] = outbound(app)
    assert row.sid is None and row.status == "dispatching"
    sid = fake_twilio.messages[0]["sid"]
    post_signed(
        client, fake_twilio.auth_token, f"/twilio/status?m={row.id}", status_form(sid, "delivered")
    )
    row = outbound(app)[0]
    assert (row.sid, row.status) == (sid, "delivered")


def test_error_21610_in_a_callback_opts_the_contact_out(app, fake_twilio):
    client = app.test_client()
    post_signed(client, fake_twilio.auth_token, "/twilio/messages", inbound_form(WORKER, "WORK"))
    [row] = outbound(app)
    post_signed(
        client,
        fake_twilio.auth_token,
        f"/twilio/status?m={row.id}",
        status_form(row.sid, "failed", ErrorCode="21610"),
    )
    row = outbound(app)[0]
    assert (row.status, row.error_code) == ("failed", 21610)
    with app.app_context():
        assert db.session().scalar(select(Contact.is_opted_out))


def test_status_callbacks_unknown_unsigned_or_malformed(app, fake_twilio):
    client = app.test_client()
    unknown = post_signed(
        client, fake_twilio.auth_token, "/twilio/status", status_form(new_sid(), "delivered")
    )
    assert unknown.status_code == 204
    odd = post_signed(
        client, fake_twilio.auth_token, "/twilio/status", status_form(new_sid(), "teleported")
    )
    assert odd.status_code == 204
    assert client.post("/twilio/status", data=status_form(new_sid(), "sent")).status_code == 403
    bad = post_signed(client, fake_twilio.auth_token, "/twilio/status", {"MessageStatus": "sent"})
    assert bad.status_code == 400


def test_healthz_reports_database_queue_and_spool(app):
    response = app.test_client().get("/healthz")
    assert response.status_code == 200
    assert response.json == {"database": "ok", "queue": "in-process", "spool": "ok"}


def test_a_copy_that_waited_for_the_contact_is_rolled_back_whole(app, fake_twilio, monkeypatch):
    """The second copy of a message waits for the first one's step. On PostgreSQL its lock was
    asked for before the first committed, so it only learns of the repeat when it stores the
    message: everything its own step wrote (the next answer) must go with it."""
    from engage.models import Answer
    from engage.survey.engine import Engine

    client = app.test_client()
    for text in ("WORK", "1"):  # a conversation, consented: the next "1" answers a question
        post_signed(client, fake_twilio.auth_token, "/twilio/messages", inbound_form(WORKER, text))
    answers_before, sent_before = count(app, Answer), len(fake_twilio.requests)

    step = Engine.step
    first_in_step = threading.Event()

    def slow_step(self, *args, **kwargs):
        if not first_in_step.is_set():
            first_in_step.set()
            threading.Event().wait(0.5)  # the second copy reaches the contact meanwhile
        return step(self, *args, **kwargs)

    monkeypatch.setattr(Engine, "step", slow_step)
    form = inbound_form(WORKER, "1")
    statuses = []

    def post() -> None:
        statuses.append(
            post_signed(
                app.test_client(), fake_twilio.auth_token, "/twilio/messages", form
            ).status_code
        )

    first = threading.Thread(target=post)
    first.start()
    assert first_in_step.wait(5)
    second = threading.Thread(target=post)
    second.start()
    first.join()
    second.join()
    assert statuses == [200, 200]
    assert count(app, Message, Message.sid == form["MessageSid"]) == 1
    assert count(app, Answer) == answers_before + 1
    assert len(fake_twilio.requests) == sent_before + 1
