"""Database helpers for bulk work: COPY writes exactly what an INSERT writes; id_in."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import Text, cast, insert, select

from engage import db
from engage.db import id_in, insert_returning_ids
from engage.models import Contact, Conversation, Message

WHEN = datetime(2031, 3, 4, 16, 0, 0, 123456, tzinfo=UTC)
ELSEWHERE = datetime(2031, 3, 4, 22, 30, tzinfo=timezone(timedelta(hours=-5)))


def conversation_rows(contact_id: int) -> list[dict]:
    base = {
        "contact_id": contact_id,
        "survey_id": "working-conditions",
        "version": "v1",
        "language": "es",
        "channel": "sms",
        "status": "active",
        "pending": "_consent",
        "misses": {"texts": []},
        "consent_tries": 0,
        "is_invited": True,
        "last_profile": {"state": "FL"},
        "is_simulated": False,
        "record_key": 7,
        "started_at": WHEN,
        "last_activity_at": WHEN,
    }
    return [
        base,
        {
            **base,
            "pending": None,
            "misses": {"texts": ["sí, ñ\t\\N", 'say "1"'], "n": 2},
            "consent_tries": 3,
            "is_invited": False,
            "last_profile": {},
            "is_simulated": True,
            "last_activity_at": ELSEWHERE,
        },
    ]


def message_rows(contact_id: int, conversation_id: int) -> list[dict]:
    base = {
        "direction": "out",
        "contact_id": contact_id,
        "conversation_id": conversation_id,
        "channel": "sms",
        "our_address": "+15005550006",
        "their_address_encrypted": "gAAAA-encrypted",
        "body": "Hola.\n\nResponda 1 para empezar.",
        "kind": "invitation",
        "is_free_text": False,
        "is_urgent": False,
        "status": "pending",
        "sequence": 0,
        "is_simulated": False,
        "queue": "bulk",
        "campaign_id": None,
        "content_sid": None,
        "content_variables": None,  # JSON null, as an INSERT writes it, not SQL NULL
        "send_after": None,
        "created_at": WHEN,
    }
    return [
        base,
        {
            **base,
            "body": "tab\there, backslash \\ and \\N, «comillas», ✓",
            "is_free_text": True,
            "sequence": 1,
            "content_sid": "HX" + "1" * 32,
            "content_variables": {"1": "María"},
            "send_after": ELSEWHERE,
        },
    ]


def stored(session, table, ids: list[int]) -> list[tuple[dict, dict]]:
    """Each row's values as the app reads them, and as text (JSON null is not SQL NULL)."""
    columns = [c for c in table.c if c.name != "id"]
    rows = session.execute(
        select(table.c.id, *columns, *(cast(c, Text).label(f"text_{c.name}") for c in columns))
        .where(table.c.id.in_(ids))
        .order_by(table.c.id)
    ).all()
    assert [row.id for row in rows] == sorted(ids)
    return [
        (
            {c.name: row._mapping[c.name] for c in columns},
            {c.name: row._mapping[f"text_{c.name}"] for c in columns},
        )
        for row in rows
    ]


def insert_both_ways(session, model, rows: list[dict]) -> tuple[list[int], list[int]]:
    """The rows written by insert_returning_ids, then again by an ORM INSERT: both sets of ids."""
    bulk_ids = insert_returning_ids(session, model.__table__, rows)
    statement = insert(model).returning(model.id, sort_by_parameter_order=True)
    return bulk_ids, list(session.scalars(statement, rows))


def test_bulk_rows_are_exactly_what_an_insert_writes(app):
    with app.app_context(), db.transaction() as session:
        contact = Contact(phone_hash="h1", phone_encrypted="e1", profile={"state": "FL"})
        session.add(contact)
        session.flush()
        conversations = insert_both_ways(session, Conversation, conversation_rows(contact.id))
        messages = insert_both_ways(session, Message, message_rows(contact.id, conversations[0][0]))
    with app.app_context(), db.transaction() as session:
        for model, (bulk_ids, inserted_ids) in ((Conversation, conversations), (Message, messages)):
            assert len(bulk_ids) == 2 and bulk_ids == sorted(bulk_ids)
            # Ids drawn from the sequence: the INSERT after the bulk rows got fresh ones.
            assert min(inserted_ids) > max(bulk_ids)
            assert stored(session, model.__table__, bulk_ids) == stored(
                session, model.__table__, inserted_ids
            )
        [(values, as_text), _] = stored(session, Message.__table__, messages[0])
        assert values["content_variables"] is None and as_text["content_variables"] == "null"
        [_, (values, _)] = stored(session, Conversation.__table__, conversations[0])
        assert values["last_activity_at"] == ELSEWHERE and values["last_activity_at"].tzinfo == UTC


def test_no_rows_insert_nothing_and_a_missing_default_is_refused(app):
    with app.app_context(), db.transaction() as session:
        assert insert_returning_ids(session, Conversation.__table__, []) == []
        row = conversation_rows(1)[0]
        del row["started_at"]
        with pytest.raises(ValueError, match="started_at"):
            insert_returning_ids(session, Conversation.__table__, [row])


@pytest.mark.parametrize("wanted", [[], [2], [1, 3, 4], list(range(1, 3001))])
def test_id_in_selects_the_rows_asked_for(app, wanted):
    with app.app_context(), db.transaction() as session:
        session.add_all(Contact(phone_hash=f"h{n}", phone_encrypted="e") for n in range(5))
        session.flush()
        found = session.scalars(
            select(Contact.id).where(id_in(session, Contact.id, wanted)).order_by(Contact.id)
        ).all()
    assert found == [n for n in range(1, 6) if n in wanted]
