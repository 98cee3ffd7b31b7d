"""The statements one conversation step sends to the database: each one a round trip on every
inbound message, so what the step reads and writes is counted here (docs/performance.md §6)."""

from __future__ import annotations

import pytest
from sqlalchemy import event
from twilio_helpers import inbound_form, new_sid, post_signed

from engage import intake

WORKER = "+15551234567"


@pytest.fixture
def counted(twilio_app, fake_twilio, monkeypatch):
    """An app whose steps record the statements they run (only the step's own transaction)."""
    app = twilio_app()
    statements: list[str] = []
    is_counting = [False]

    def record(_conn, _cursor, statement, _parameters, _context, _executemany) -> None:
        if is_counting[0]:
            statements.append(" ".join(statement.split()).upper())

    def counting_step(*args, **kwargs):
        is_counting[0] = True
        try:
            return step(*args, **kwargs)
        finally:
            is_counting[0] = False

    step = intake.handle_inbound
    monkeypatch.setattr(intake, "handle_inbound", counting_step)
    event.listen(app.extensions["engage.engine"], "before_cursor_execute", record)

    def send(text: str, *, sender: str = WORKER, sid: str | None = None) -> list[str]:
        statements.clear()
        form = inbound_form(sender, text, sid=sid)
        response = post_signed(app.test_client(), fake_twilio.auth_token, "/twilio/messages", form)
        assert response.status_code == 200
        return [s for s in statements if not s.startswith(("BEGIN", "SAVEPOINT", "RELEASE"))]

    return app, send


def test_a_new_contacts_first_message_reads_nothing_it_cannot_find(counted, database):
    app, send = counted
    send("WORK", sender="+15551230000")  # another number first: survey definitions read once
    first = send("WORK")
    # Its lock finds no contact; the contact is created (an erased number's opt-out read in
    # that same INSERT); the published surveys are read for the keyword. No conversations are
    # looked for, nor the do-not-contact list on its own.
    assert not [s for s in first if "FROM CONVERSATIONS" in s and s.startswith("SELECT")], first
    assert not [s for s in first if s.startswith("SELECT DO_NOT_CONTACT")], first
    if database == "postgresql":
        # The lock, the new contact, the surveys' keys, the new conversation, the writes.
        assert len(first) == 5, first
        assert first[1].startswith("INSERT INTO CONTACTS") and "DO_NOT_CONTACT" in first[1]
    else:
        # …and the writes one statement each: the contact, the inbound row and its reply.
        assert len(first) == 7, first


def test_an_answer_is_a_lock_a_read_and_one_write_on_postgresql(counted, database):
    app, send = counted
    send("WORK")
    send("1")  # consent
    answer = send("1")
    if database == "postgresql":
        # The lock, the conversations with their answers, then every write in one statement.
        assert len(answer) == 3, answer
        assert answer[0].startswith("SELECT CONTACTS.ID"), answer
        assert answer[-1].startswith("WITH"), answer
    else:
        assert len(answer) <= 8, answer


def test_a_repeated_message_is_known_by_the_lock_alone(counted):
    app, send = counted
    send("WORK")
    sid = new_sid()
    send("1", sid=sid)
    again = send("1", sid=sid)  # Twilio's retry of a webhook it thinks failed
    assert len(again) == 1 and again[0].startswith("SELECT CONTACTS.ID"), again
