"""The database is unreachable: inbound messages are spooled, answered 200, replayed in order."""

from __future__ import annotations

import json
import logging

import psycopg
import pytest
from click.testing import CliRunner
from flask.cli import ScriptInfo
from sqlalchemy import func, select
from twilio_helpers import inbound_form, post_signed

import engage.spool as spool_module
from engage import db
from engage.cli import main
from engage.intake import spool
from engage.models import Answer, Message
from tests import readback as rb

WORKER = "+15551230001"


def down_url(database: str, tmp_path) -> str:
    if database == "sqlite":
        return f"sqlite:///{tmp_path / 'no-such-dir' / 'engage.db'}"
    return "postgresql+psycopg://postgres@127.0.0.1:1/engage"  # nothing listens on port 1


def test_outage_spools_then_replay_processes_in_order_once(
    twilio_app, fake_twilio, database, tmp_path
):
    down = twilio_app(prepare=False, DATABASE_URL=down_url(database, tmp_path))
    client = down.test_client()
    forms = [inbound_form(WORKER, text) for text in ("WORK", "1", "2")]
    for form in forms:
        response = post_signed(client, fake_twilio.auth_token, "/twilio/messages", form)
        assert response.status_code == 200
        assert response.data.endswith(b"<Response/>")
    health = client.get("/healthz")
    assert health.status_code == 200
    assert health.json["database"] == "unavailable"
    assert health.json["spool"] == "ok, messages waiting for replay"
    spooled = (tmp_path / "instance" / "spool").glob("*.spool")
    raw = b"".join(p.read_bytes() for p in spooled)
    assert raw and WORKER.encode() not in raw and b"WORK" not in raw

    up = twilio_app()  # same instance folder: the same PII key and spool
    result = CliRunner().invoke(main, ["spool", "replay"], obj=ScriptInfo(create_app=lambda: up))
    assert result.exit_code == 0, result.output
    assert "3 replayed, 0 waiting" in result.output
    bodies = [r.get("Body") for r in fake_twilio.requests]
    assert bodies[0].startswith("Centro Campesino asks about your work.")
    assert "Which state do you work in now?" in bodies[1]
    assert bodies[2].startswith("Which crop")
    with up.app_context():
        state = db.session().scalar(select(Answer).where(Answer.question_id == "state"))
        assert state.value == {"v": "CA"}
    # Replaying again, or Twilio retrying the same MessageSid, changes nothing.
    again = CliRunner().invoke(main, ["spool", "replay"], obj=ScriptInfo(create_app=lambda: up))
    assert "0 replayed" in again.output
    post_signed(up.test_client(), fake_twilio.auth_token, "/twilio/messages", forms[2])
    with up.app_context():
        inbound = db.session().scalar(
            select(func.count()).select_from(Message).where(Message.direction == "in")
        )
    assert inbound == 3
    assert len(fake_twilio.requests) == 3


def test_an_entry_spooled_with_control_characters_is_replayed_without_them(twilio_app, fake_twilio):
    up = twilio_app()
    with up.app_context():
        # Spooled by an older version, which kept the body as it came.
        spool().append(inbound_form(WORKER, "\x00WORK\x85"))
    result = CliRunner().invoke(main, ["spool", "replay"], obj=ScriptInfo(create_app=lambda: up))
    assert "1 replayed, 0 waiting" in result.output
    with up.app_context():
        assert rb.inbound_bodies(up) == ["WORK"]
    assert fake_twilio.requests[0].get("Body").startswith("Centro Campesino asks about your work.")


OTHER_WORKER = "+15551230002"
LONG_ADDRESS = "+1" + "5" * 120  # longer than the column that keeps our number


def append_poisoned(monkeypatch, poison: str) -> None:
    """Spool an entry the database will refuse, as an older version could have left it."""
    if poison == "surrogate":
        # A lone surrogate, escaped in the JSON: no driver can encode it for the database.
        monkeypatch.setattr(spool_module, "_dump", lambda entry, **_: json.dumps(entry).encode())
        spool().append(inbound_form(OTHER_WORKER, "promo \ud800"))
        monkeypatch.undo()
    else:
        spool().append(inbound_form(OTHER_WORKER, "promo", to=LONG_ADDRESS))


@pytest.mark.parametrize(
    ("database", "poison"),
    [("sqlite", "surrogate"), ("postgresql", "surrogate"), ("postgresql", "long address")],
)
def test_a_refused_entry_becomes_a_dead_letter_and_the_ones_behind_it_land(
    twilio_app, fake_twilio, database, poison, tmp_path, monkeypatch, caplog
):
    up = twilio_app()
    with up.app_context():
        append_poisoned(monkeypatch, poison)
        for text in ("WORK", "1", "2"):
            spool().append(inbound_form(WORKER, text))
    caplog.set_level(logging.INFO)

    result = CliRunner().invoke(main, ["spool", "replay"], obj=ScriptInfo(create_app=lambda: up))

    assert result.exit_code == 0, result.output
    assert "3 replayed, 0 waiting, 1 set aside as dead letters (1 just now)" in result.output
    assert "dead letters: " in result.output and "dead-letters" in result.output
    with up.app_context():
        assert db.session().scalars(select(Answer.question_id)).all() == ["state"]
        assert db.session().scalar(select(func.count()).select_from(Message)) == 6
    assert [r.get("To") for r in fake_twilio.requests] == [WORKER] * 3
    health = up.test_client().get("/healthz")
    assert health.status_code == 503
    assert health.json == {"database": "ok", "queue": "in-process", "spool": "dead letters"}
    dead_letters = tmp_path / "instance" / "spool" / "dead-letters"
    raw = dead_letters.read_bytes()
    assert raw.count(b"\n") == 1 and b"5551230002" not in raw and b"promo" not in raw
    for text in (result.output, caplog.text):
        assert "5551230002" not in text and "promo" not in text
    assert "set aside as a dead letter" in caplog.text
    # It stays set aside, and stops nothing: the next message is answered at once.
    again = CliRunner().invoke(main, ["spool", "replay"], obj=ScriptInfo(create_app=lambda: up))
    assert "0 replayed, 0 waiting, 1 set aside as dead letters\n" in again.output
    form = inbound_form(WORKER, "1")
    post_signed(up.test_client(), fake_twilio.auth_token, "/twilio/messages", form)
    assert len(fake_twilio.requests) == 4
    assert up.test_client().get("/healthz").status_code == 503


@pytest.mark.parametrize("database", ["postgresql"])
@pytest.mark.parametrize(
    ("sender", "to"),
    [(WORKER, LONG_ADDRESS), ("ALERTS" + "X" * 200, "+15005550006")],
    ids=["our address too long", "sender too long"],
)
def test_a_webhook_message_the_database_refuses_is_kept_as_a_dead_letter(
    twilio_app, fake_twilio, database, sender, to, tmp_path, caplog
):
    app = twilio_app()
    client = app.test_client()
    form = inbound_form(sender, "mi patrón no paga", to=to)

    response = post_signed(client, fake_twilio.auth_token, "/twilio/messages", form)

    assert response.status_code == 200 and response.data.endswith(b"<Response/>")
    with app.app_context():
        assert spool().dead_letter_count() == 1 and not spool().has_entries()
    assert "patrón" not in caplog.text and sender not in caplog.text
    assert client.get("/healthz").json["spool"] == "dead letters"
    ok = post_signed(
        client, fake_twilio.auth_token, "/twilio/messages", inbound_form(WORKER, "WORK")
    )
    assert ok.status_code == 200 and len(fake_twilio.requests) == 1


def test_a_new_message_after_the_outage_waits_behind_the_spooled_ones(
    twilio_app, fake_twilio, database, tmp_path
):
    down = twilio_app(prepare=False, DATABASE_URL=down_url(database, tmp_path))
    for text in ("WORK", "1"):
        post_signed(
            down.test_client(),
            fake_twilio.auth_token,
            "/twilio/messages",
            inbound_form(WORKER, text),
        )
    up = twilio_app()
    post_signed(
        up.test_client(), fake_twilio.auth_token, "/twilio/messages", inbound_form(WORKER, "2")
    )
    with up.app_context():
        answers = db.session().scalars(select(Answer.question_id)).all()
    assert answers == ["state"]  # consent first, then "2" answered the state question
    assert up.test_client().get("/healthz").json["spool"] == "ok"


def test_healthz_is_503_when_neither_database_nor_spool_can_take_a_message(
    twilio_app, database, tmp_path
):
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the spool directory should be")
    down = twilio_app(
        prepare=False,
        DATABASE_URL=down_url(database, tmp_path),
        ENGAGE_SPOOL_DIR=str(blocked / "spool"),
    )
    response = down.test_client().get("/healthz")
    assert response.status_code == 503
    assert response.json["spool"] == "unwritable"


def terminate_other_backends(pg_url: str) -> int:
    """What a server restart does to the app's pooled connections."""
    with psycopg.connect(pg_url, autocommit=True) as connection:
        [count] = connection.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchone()
    return count


@pytest.mark.parametrize("database", ["postgresql"])
def test_a_connection_the_server_dropped_costs_no_message(
    twilio_app, fake_twilio, database, pg_url, monkeypatch
):
    app = twilio_app()
    client = app.test_client()

    def post(text: str) -> None:
        form = inbound_form(WORKER, text)
        response = post_signed(client, fake_twilio.auth_token, "/twilio/messages", form)
        assert response.status_code == 200

    post("WORK")
    # Reused at once, the pooled connection is not pinged: the step fails on it, the message is
    # spooled (Twilio still gets its 200), and the dead connection is not handed out again.
    assert terminate_other_backends(pg_url) >= 1
    post("1")
    with app.app_context():
        assert spool().has_entries()
        assert db.session().scalar(select(func.count()).select_from(Answer)) == 0
    post("2")  # replays "1" first, then takes "2"
    with app.app_context():
        assert not spool().has_entries()
        questions = db.session().scalars(select(Answer.question_id).order_by(Answer.id)).all()
    assert questions == ["state"]
    # A connection idle in the pool is pinged first, and replaced: nothing is spooled.
    monkeypatch.setattr(db, "PING_AFTER_IDLE_SECONDS", 0.0)
    assert terminate_other_backends(pg_url) >= 1
    post("1")
    with app.app_context():
        assert not spool().has_entries()
        questions = db.session().scalars(select(Answer.question_id).order_by(Answer.id)).all()
    assert questions == ["state", "main_crop"]
    assert len(fake_twilio.requests) == 4
