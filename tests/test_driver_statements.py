"""engage.sql.StepStatement: statements built per dialect, reading and writing as Core does."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import Text, bindparam, cast, insert, literal, select, update
from sqlalchemy.exc import IntegrityError

from engage import db
from engage.db import insert_ignoring_conflicts
from engage.models import Contact
from engage.sql import StepStatement

contacts = Contact.__table__
WHEN = datetime(2031, 3, 4, 16, 0, 0, 123456, tzinfo=UTC)
ELSEWHERE = datetime(2031, 3, 4, 22, 30, tzinfo=timezone(timedelta(hours=-5)))
COLUMNS = (
    "phone_hash",
    "phone_encrypted",
    "language",
    "has_consented",
    "is_opted_out",
    "is_menu_open",
    "is_simulated",
    "profile",
    "last_nudged_at",
    "record_key",
    "profile_updated_at",
    "created_at",
    "updated_at",
)


def contact(phone_hash: str, **values) -> dict:
    return {
        "phone_hash": phone_hash,
        "phone_encrypted": "token",
        "language": None,
        "has_consented": True,
        "is_opted_out": False,
        "is_menu_open": False,
        "is_simulated": False,
        "profile": {"state": "FL", "crop": 'tomates, ñ "1"', "n": [1, None]},
        "last_nudged_at": ELSEWHERE,
        "record_key": 200,
        "profile_updated_at": {"state": WHEN.isoformat()},
        "created_at": WHEN,
        "updated_at": WHEN,
        **values,
    }


def as_text(connection, phone_hash: str) -> tuple:
    """A row as the database holds it, every column cast to text."""
    query = select(*(cast(contacts.c[name], Text) for name in COLUMNS)).where(
        contacts.c.phone_hash == phone_hash
    )
    return tuple(connection.execute(query).one())


def test_insert_writes_what_core_writes(app) -> None:
    statement = StepStatement(insert(contacts))
    with app.app_context(), db.engine().begin() as connection:
        connection.execute(insert(contacts), contact("by-core"))
        assert statement.rows(connection, contact("by-driver")) == []
        core, driver = as_text(connection, "by-core"), as_text(connection, "by-driver")
        assert driver[1:] == core[1:]


def test_select_reads_what_core_reads(app) -> None:
    query = select(
        contacts.c.id,
        contacts.c.profile,
        contacts.c.has_consented,
        contacts.c.last_nudged_at,
        contacts.c.language,
        literal(False).label("flag"),
    ).where(contacts.c.phone_hash == bindparam("phone_hash"))
    with app.app_context(), db.engine().begin() as connection:
        connection.execute(insert(contacts), contact("x"))
        core = connection.execute(query, {"phone_hash": "x"}).one()
        row = StepStatement(query).first(connection, {"phone_hash": "x"})
    assert tuple(row) == tuple(core)
    assert row.last_nudged_at == ELSEWHERE and row.last_nudged_at.tzinfo is not None
    assert row.has_consented is True and row.flag is False
    assert row.profile == contact("x")["profile"]


def test_update_sets_only_the_given_columns(app) -> None:
    statement = StepStatement(update(contacts).where(contacts.c.id == bindparam("b_row_id")))
    with app.app_context(), db.engine().begin() as connection:
        row_id = connection.execute(
            insert(contacts).returning(contacts.c.id), contact("u")
        ).scalar_one()
        later = WHEN + timedelta(days=1)
        statement.rows(
            connection,
            {"language": "ht", "profile": {"state": "GA"}, "updated_at": later, "b_row_id": row_id},
        )
        found = connection.execute(select(contacts).where(contacts.c.id == row_id)).one()
    assert (found.language, found.profile, found.updated_at) == ("ht", {"state": "GA"}, later)
    assert found.has_consented is True  # untouched


def test_conflicting_insert_returns_nothing(app) -> None:
    statement = StepStatement(
        lambda dialect: insert_ignoring_conflicts(dialect, contacts, "phone_hash").returning(
            contacts.c.id
        ),
    )
    with app.app_context(), db.engine().begin() as connection:
        first = statement.rows(connection, contact("same"))
        again = statement.rows(connection, contact("same"))
    assert len(first) == 1 and again == []


def test_a_column_default_left_out_is_applied_as_core_applies_it(app) -> None:
    statement = StepStatement(insert(contacts))
    with app.app_context(), db.engine().begin() as connection:
        statement.rows(connection, {"phone_hash": "p", "phone_encrypted": "t"})
        created, key = connection.execute(
            select(contacts.c.created_at, contacts.c.record_key).where(contacts.c.phone_hash == "p")
        ).one()
    assert created is not None and 0 <= key < 256


def test_driver_errors_are_raised_as_core_raises_them(app) -> None:
    """A broken constraint is SQLAlchemy's IntegrityError, as from Core: callers catch one
    family of errors whichever way a statement ran."""
    statement = StepStatement(insert(contacts))
    with app.app_context(), db.engine().connect() as connection:
        with connection.begin():
            statement.rows(connection, contact("twice"))
        with pytest.raises(IntegrityError), connection.begin():
            statement.rows(connection, contact("twice"))
        with pytest.raises(IntegrityError), connection.begin():
            connection.execute(insert(contacts), contact("twice"))
