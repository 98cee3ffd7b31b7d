"""Erasure (docs/architecture.md §4.3): by BORRAR, by the CLI and by retention, on SQLite and
PostgreSQL; what is left is read back from the database files themselves."""

from __future__ import annotations

import json
import re
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography.fernet import InvalidToken
from flask.cli import ScriptInfo
from sqlalchemy import func, select, text, update
from twilio_helpers import inbound_form, new_sid, post_signed

from engage import db
from engage.cli import main
from engage.clock import run_erasure_clock
from engage.db import utcnow
from engage.intake import spool
from engage.models import (
    Answer,
    AuditEntry,
    Contact,
    Conversation,
    DoNotContact,
    Message,
    ThreadNote,
    TwilioDeletion,
)
from engage.survey.texts import SystemTexts
from tests import readback as rb
from tests.conftest import SHIPPED_SURVEYS, TEST_SURVEYS, publish

LOCALES = Path(__file__).resolve().parent.parent / "locales"
MORE_SURVEYS = Path(__file__).resolve().parent / "surveys_more"
PHONE = "+15551230001"
OTHER = "+15551230002"
SECRET_WORDS = "Me quitaron el pasaporte y no me dejan salir"

START = {"es": "CUENTE", "en": "TELL", "ht": "RAKONTE"}
ERASE = {"es": "BORRAR", "en": "DELETE", "ht": "EFASE"}


def texts(language: str) -> SystemTexts:
    return SystemTexts(LOCALES, language, "Centro Campesino").sms


@pytest.fixture
def app(app):
    publish(app, [SHIPPED_SURVEYS, TEST_SURVEYS, MORE_SURVEYS])
    return app


def cli(app, *args: str):
    result = CliRunner().invoke(main, list(args), obj=ScriptInfo(create_app=lambda: app))
    return result


def rows(app, model, *where):
    with app.app_context():
        key = model.id if hasattr(model, "id") else model.sid
        return db.session().scalars(select(model).where(*where).order_by(key)).all()


def to_the_story(worker, language: str, phone: str = PHONE):
    """A worker who consented and answered the choice and the number: the text is pending."""
    w = worker(phone)
    w.script(START[language], "1", "2", "5")
    return w


@pytest.mark.parametrize("language", ["es", "en", "ht"])
def test_borrar_then_1_erases_the_contact_and_a_later_message_is_a_new_contact(
    worker, app, language
):
    w = to_the_story(worker, language)
    w.send("no se")  # a free text: the answer to the text question
    t = texts(language)
    assert w.send(ERASE[language]) == t.erase_confirm()
    assert w.send("1") == t.erased()

    [contact] = rows(app, Contact)
    assert contact.erased_at is not None and contact.key_encrypted is None
    assert contact.phone_encrypted == "" and contact.phone_hash.startswith("erased-")
    assert contact.profile == {} and contact.language is None
    for message in rows(app, Message, Message.contact_id == contact.id):
        assert message.body == "" and message.their_address_encrypted is None
        assert message.media_url is None
    answers = {a.question_id: a for a in rows(app, Answer)}
    # Choice and number answers stay, with their record key; the free text and raw texts go.
    assert answers["crop"].value == {"v": "tomatoes"} and answers["days"].value == {"v": 5}
    assert answers["story"].value == {"v": None}
    assert {a.raw_text for a in answers.values()} == {None}
    assert {a.record_key for a in answers.values()} == {contact.record_key}
    assert [c.misses for c in rows(app, Conversation)] == [{"texts": []}]
    with app.app_context():
        vault = app.extensions["engage.vault"]
        assert db.session().get(DoNotContact, vault.phone_hash(PHONE)) is not None
        # The confirmation went to the address the request came from, linked to nobody.
        [confirmation] = db.session().scalars(select(Message).where(Message.kind == "erased"))
        assert confirmation.contact_id is None and rb.address(app, confirmation) == PHONE

    # A later message from the number makes a new contact: the language menu again.
    assert "1 Español" in w.send("hola")
    assert len(rows(app, Contact)) == 2


def test_any_other_reply_cancels_the_erasure_and_is_handled_as_usual(worker, app):
    w = to_the_story(worker, "es")
    w.send("BORRAR")
    assert "Gracias." in w.send("2")  # "2" is no erasure: the text question takes it
    [contact] = rows(app, Contact)
    assert contact.erased_at is None and contact.erase_requested_at is None
    assert {a.question_id for a in rows(app, Answer)} == {"crop", "days", "story"}
    assert w.send("1") != texts("es").erased()  # the request is gone


def test_the_erasure_confirmation_lapses_after_ten_minutes(worker, app):
    w = to_the_story(worker, "en")
    w.send("DELETE")
    with app.app_context(), db.transaction() as session:
        contact = session.scalars(select(Contact)).one()
        contact.erase_requested_at -= timedelta(minutes=11)
    assert w.send("1") != texts("en").erased()
    assert rows(app, Contact)[0].erased_at is None


def test_the_erasure_confirmation_lapses_when_anything_else_is_sent(worker, app):
    w = to_the_story(worker, "en")
    w.send("DELETE")
    [contact] = rows(app, Contact)
    with app.app_context(), db.transaction() as session:
        later = contact.erase_requested_at + timedelta(seconds=5)
        template = session.scalars(
            select(Message).where(Message.direction == "out").order_by(Message.id.desc())
        ).first()
        session.add(
            Message(
                direction="out",
                contact_id=contact.id,
                their_address_encrypted=template.their_address_encrypted,
                body="A staff reply",
                status="sent",
                kind="text",
                created_at=later,
            )
        )
    assert w.send("1") != texts("en").erased()
    assert rows(app, Contact)[0].erased_at is None


def test_borrar_while_opted_out_erases_at_once_sends_nothing_and_the_opt_out_survives(worker, app):
    w = to_the_story(worker, "es")
    w.send("ALTO")
    assert w.send("BORRAR") == ""
    [contact] = rows(app, Contact)
    assert contact.erased_at is not None
    assert not rows(app, Message, Message.kind == "erased")
    # The number writes again: a new contact, opted out, so nothing is sent…
    assert w.send("hola") == ""
    new = rows(app, Contact)[-1]
    assert new.id != contact.id and new.is_opted_out
    # …but help still answers (they wrote to us).
    assert w.send("AYUDA").startswith(texts("es").help())


def test_an_urgent_thread_erased_by_its_sender_leaves_staff_a_note_without_content(worker, app):
    w = to_the_story(worker, "es")
    w.send(SECRET_WORDS)  # a safety phrase in the text answer: urgent
    [urgent] = rows(app, Message, Message.is_urgent.is_(True))
    w.script("BORRAR", "1")
    [note] = rows(app, ThreadNote)
    assert (note.kind, note.topic, note.body) == ("erased_urgent", urgent.urgent_topic, None)
    assert note.contact_id == urgent.contact_id
    # The message keeps its flag and topic for the inbox, and nothing of what it said.
    [kept] = rows(app, Message, Message.id == urgent.id)
    assert kept.is_urgent and kept.body == ""


def test_the_database_files_hold_nothing_readable_after_erasure(worker, app, database, tmp_path):
    # PostgreSQL's WAL is the whole server's: words of this run's own, which no other database
    # on it can hold.
    words = f"{SECRET_WORDS} {uuid.uuid4().hex}"
    phone = f"+1555{uuid.uuid4().int % 10**7:07d}"
    w = to_the_story(worker, "es", phone=phone)
    w.send(words)
    with app.app_context():
        [contact] = db.session().scalars(select(Contact)).all()
        tokens = [contact.phone_encrypted] + [
            m.body for m in db.session().scalars(select(Message).where(Message.direction == "in"))
        ]
        old_key = contact.key_encrypted
    w.script("BORRAR", "1")
    secrets = [words.encode(), words.split()[-1].encode(), phone.encode(), phone[2:].encode()]
    for raw in database_bytes(app, database, tmp_path):
        for secret in secrets:
            assert secret not in raw
    vault = app.extensions["engage.vault"]
    with app.app_context():
        live_keys = db.session().scalars(select(Contact.key_encrypted)).all()
    assert old_key not in live_keys
    for key in live_keys:
        if key is None:
            continue
        for token in tokens:
            with pytest.raises(InvalidToken):
                vault.contact_cipher(key).decrypt(token)


def database_bytes(app, database: str, tmp_path: Path) -> list[bytes]:
    """The database's own files: SQLite's file and WAL, or PostgreSQL's table files and WAL."""
    if database == "sqlite":
        with app.app_context():
            db.engine().dispose()
        return [p.read_bytes() for p in tmp_path.glob("engage.db*")]
    found = []
    with app.app_context(), db.engine().connect() as connection:
        connection.execute(text("CHECKPOINT"))
        for table in ("contacts", "messages", "answers", "conversations", "thread_notes"):
            path = connection.scalar(text("SELECT pg_relation_filepath(:t)"), {"t": table})
            found.append(connection.scalar(text("SELECT pg_read_binary_file(:p)"), {"p": path}))
        recent = connection.scalars(
            text(
                "SELECT name FROM pg_ls_waldir() WHERE modification > now() - interval '10 minutes'"
            )
        ).all()
        for name in recent:
            found.append(
                connection.scalar(text("SELECT pg_read_binary_file(:p)"), {"p": f"pg_wal/{name}"})
            )
    return found


@pytest.fixture
def wired(twilio_app):
    app = twilio_app()
    publish(app, [SHIPPED_SURVEYS, TEST_SURVEYS, MORE_SURVEYS])
    return app


def post(app, fake_twilio, phone: str, body: str) -> str:
    sid = new_sid()
    fake_twilio.know(sid)  # an inbound message, as Twilio holds it
    form = inbound_form(phone, body, sid=sid)
    response = post_signed(app.test_client(), fake_twilio.auth_token, "/twilio/messages", form)
    assert response.status_code == 200
    return sid


def test_erasure_cancels_pending_sends_and_the_clock_deletes_every_message_at_twilio(
    wired, fake_twilio
):
    app = wired
    inbound = [post(app, fake_twilio, PHONE, word) for word in ("CUENTE", "1", "BORRAR")]
    sent = fake_twilio_sids(fake_twilio)
    [contact] = rows(app, Contact)
    with app.app_context(), db.transaction() as session:
        later = Message(
            direction="out",
            contact_id=contact.id,
            their_address_encrypted=rows(app, Message, Message.direction == "out")[
                0
            ].their_address_encrypted,
            body="a reminder for tomorrow",
            status="pending",
            kind="invitation",
            send_after=utcnow() + timedelta(days=1),
        )
        session.add(later)
        session.flush()
        later_id = later.id
    inbound.append(post(app, fake_twilio, PHONE, "1"))
    assert fake_twilio.requests[-1].get("To") == PHONE
    assert fake_twilio.requests[-1].get("Body") == texts("es").erased()
    confirmation_sid = fake_twilio_sids(fake_twilio)[-1]
    assert rows(app, Message, Message.id == later_id)[0].status == "cancelled"

    fake_twilio.refuse_deletes(1)  # Twilio not done with one of them yet: tried again later
    with app.app_context():
        counts = run_erasure_clock()
    assert counts["confirmations"] == 1
    [confirmation] = rows(app, Message, Message.kind == "erased")
    assert confirmation.their_address_encrypted is None and confirmation.body == ""
    expected = {*inbound, *sent, confirmation_sid}
    assert len(fake_twilio.deleted) == len(expected) - 1
    [waiting] = rows(app, TwilioDeletion)
    assert waiting.attempts == 1 and waiting.next_attempt_at > utcnow()
    with app.app_context():
        run_erasure_clock(now=utcnow() + timedelta(hours=1))
    assert set(fake_twilio.deleted) == expected
    assert not rows(app, TwilioDeletion)
    # Every SID is still claimed: a Twilio retry of an erased message changes nothing.
    post_signed(
        app.test_client(),
        fake_twilio.auth_token,
        "/twilio/messages",
        inbound_form(PHONE, "CUENTE", sid=inbound[0]),
    )
    assert len(rows(app, Contact)) == 1


def fake_twilio_sids(fake_twilio) -> list[str]:
    return [m["sid"] for m in fake_twilio.messages]


def test_cli_erasure_is_audited_and_reimport_and_campaigns_skip_the_number(
    wired, fake_twilio, tmp_path
):
    app = wired
    csv = tmp_path / "contacts.csv"
    csv.write_text(f"phone,language,consent_source\n{PHONE},es,card\n{OTHER},es,card\n")
    assert cli(app, "contacts", "import", str(csv)).exit_code == 0
    post(app, fake_twilio, PHONE, "CUENTE")
    result = cli(app, "contacts", "erase", PHONE, "--yes")
    assert result.exit_code == 0, result.output
    assert "erased" in result.output and PHONE not in result.output
    [entry] = rows(app, AuditEntry, AuditEntry.action == "erase")
    assert entry.parameters["by"] == "cli" and PHONE not in str(entry.parameters)
    entry_id = int(entry.parameters["contact"].removeprefix("contact-"))
    assert len(requests_to(fake_twilio, PHONE)) == 1  # only the consent; erasure sends nothing

    again = cli(app, "contacts", "import", str(csv))
    assert again.exit_code == 0 and "1 erased number(s) skipped" in again.output
    with app.app_context():
        live = db.session().scalar(select(func.count()).where(Contact.erased_at.is_(None)))
    assert live == 1  # OTHER only
    started = cli(app, "campaigns", "start", "tell-us")
    assert started.exit_code == 0, started.output
    [other] = rows(app, Contact, Contact.erased_at.is_(None))
    invited = {m.contact_id for m in rows(app, Message, Message.kind == "invitation")}
    assert invited == {other.id}  # never the erased number
    assert len(requests_to(fake_twilio, PHONE)) == 1  # nothing more to the erased number
    assert cli(app, "contacts", "erase", PHONE, "--yes").exit_code != 0  # nobody left to erase
    # Asking about a number is a look-up of it: audited, although it found nobody.
    entries = rows(app, AuditEntry, AuditEntry.action == "erase")
    assert [e.parameters["contact"] for e in entries] == [f"contact-{entry_id}", "none found"]


def requests_to(fake_twilio, phone: str):
    return [r for r in fake_twilio.requests if r.get("To") == phone]


def test_retention_erases_inactive_contacts_only_and_sends_nothing(twilio_app, fake_twilio):
    app = twilio_app(ENGAGE_RETENTION_DAYS="30")
    publish(app, [SHIPPED_SURVEYS, TEST_SURVEYS, MORE_SURVEYS])
    post(app, fake_twilio, PHONE, "CUENTE")
    post(app, fake_twilio, OTHER, "CUENTE")
    requests = len(fake_twilio.requests)
    old = utcnow() - timedelta(days=31)
    with app.app_context(), db.transaction() as session:
        first = session.scalar(select(Contact).order_by(Contact.id))
        session.execute(
            update(Contact).where(Contact.id == first.id).values(created_at=old, updated_at=old)
        )
        session.execute(
            update(Message).where(Message.contact_id == first.id).values(created_at=old)
        )
    with app.app_context():
        assert run_erasure_clock()["retention"] == 1
    erased = [c.id for c in rows(app, Contact) if c.erased_at is not None]
    assert erased == [first.id]
    assert len(fake_twilio.requests) == requests


def test_erasure_removes_the_numbers_dead_letters_and_keeps_the_others(wired, fake_twilio):
    app = wired
    post(app, fake_twilio, PHONE, "CUENTE")
    with app.app_context():
        spool().set_aside(inbound_form(PHONE, SECRET_WORDS), "refused")
        spool().set_aside(inbound_form(OTHER, "otra cosa"), "refused")
        assert spool().dead_letter_count() == 2
    assert cli(app, "contacts", "erase", PHONE, "--yes").exit_code == 0
    with app.app_context():
        assert spool().dead_letter_count() == 1
        raw = spool().dead_letters_path.read_bytes()
    assert SECRET_WORDS.encode() not in raw


def test_choice_and_number_answers_and_record_keys_do_not_move(worker, app):
    for n in range(3):
        to_the_story(worker, "es", phone=f"+1555123100{n}").send("algo")
    before = sorted(
        (a.contact_id, a.question_id, str(a.value), a.record_key)
        for a in rows(app, Answer)
        if a.question_id != "story"
    )
    worker("+15551231001").script("BORRAR", "1")
    after = sorted(
        (a.contact_id, a.question_id, str(a.value), a.record_key)
        for a in rows(app, Answer)
        if a.question_id != "story"
    )
    assert after == before
    assert re.fullmatch(r"erased-[0-9a-f]{48}", rows(app, Contact)[1].phone_hash)


def test_migration_0006_moves_stored_numbers_and_texts_under_each_contacts_key(tmp_path):
    from engage import create_app
    from engage.migrations import upgrade

    app = create_app(
        {
            "ENGAGE_ENV": "development",
            "INSTANCE_PATH": str(tmp_path / "instance"),
            "DATABASE_URL": f"sqlite:///{tmp_path / 'old.db'}",
        }
    )
    vault = app.extensions["engage.vault"]
    now = "2026-01-01 00:00:00"
    with app.app_context():
        upgrade(db.engine(), "0005")
        with db.engine().begin() as c:
            c.execute(
                text(
                    "INSERT INTO survey_versions (id, survey_id, version, definition, is_current, "
                    "published_at) VALUES (1, 's', 'v1', :d, 1, :n)"
                ),
                {"d": '{"questions": [{"id": "story", "type": "text"}]}', "n": now},
            )
            c.execute(
                text(
                    "INSERT INTO contacts (id, phone_hash, phone_encrypted, has_consented, "
                    "is_opted_out, is_menu_open, is_simulated, profile, profile_updated_at, "
                    "record_key, created_at, updated_at) VALUES (1, :h, :p, 1, 0, 0, 0, '{}', "
                    "'{}', 7, :n, :n)"
                ),
                {"h": vault.phone_hash(PHONE), "p": vault.encrypt(PHONE), "n": now},
            )
            c.execute(
                text(
                    "INSERT INTO conversations (id, contact_id, survey_id, version, language, "
                    "channel, status, misses, consent_tries, is_invited, is_simulated, "
                    "record_key, started_at, last_activity_at, last_profile) VALUES (1, 1, 's', "
                    "'v1', 'es', 'sms', 'active', :m, 0, 0, 0, 7, :n, :n, '{}')"
                ),
                {"m": '{"texts": ["que?"]}', "n": now},
            )
            c.execute(
                text(
                    "INSERT INTO messages (id, direction, contact_id, channel, sid, "
                    "their_address_encrypted, body, media_url, is_free_text, is_urgent, status, "
                    "queue, sequence, is_simulated, created_at) VALUES (1, 'in', 1, 'sms', 'SM1', "
                    ":a, :b, 'https://x/ME1', 0, 0, 'received', 'replies', 0, 0, :n)"
                ),
                {"a": vault.encrypt(PHONE), "b": SECRET_WORDS, "n": now},
            )
            c.execute(
                text(
                    "INSERT INTO answers (id, conversation_id, contact_id, survey_id, version, "
                    "question_id, status, value, raw_text, language, profile, is_simulated, "
                    "record_key, is_latest, answered_at) VALUES (1, 1, 1, 's', 'v1', 'story', "
                    "'answered', :v, :r, 'es', '{}', 0, 7, 1, :n)"
                ),
                {"v": json.dumps({"v": SECRET_WORDS}), "r": SECRET_WORDS, "n": now},
            )
        with pytest.raises(RuntimeError, match="engage db upgrade"):
            upgrade(db.engine())  # without the PII key it cannot re-encrypt: nothing changes
        upgrade(db.engine(), vault=vault)
        session = db.session()
        contact = session.get(Contact, 1)
        assert rb.phone(app, contact) == PHONE
        message = session.get(Message, 1)
        assert rb.body(app, message) == SECRET_WORDS
        assert rb.media_url(app, message) == "https://x/ME1"
        assert rb.address(app, message) == PHONE
        answer = session.get(Answer, 1)
        assert rb.value(app, answer) == SECRET_WORDS and rb.raw_text(app, answer) == SECRET_WORDS
        assert rb.misses(app, session.get(Conversation, 1)) == ["que?"]
        db.engine().dispose()
    assert SECRET_WORDS.encode() not in (tmp_path / "old.db").read_bytes()
