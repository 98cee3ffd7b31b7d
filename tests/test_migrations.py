"""The migrations make exactly the tables the models describe, on both databases."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, event, text

from engage import db
from engage.config import database_url
from engage.db import make_engine
from engage.migrations import upgrade
from tests.conftest import PG_DATABASE, PG_SERVER


def test_migrated_schema_matches_the_models(app):
    with app.app_context(), db.engine().connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": False, "render_as_batch": True}
        )
        differences = compare_metadata(context, db.Base.metadata)
    assert differences == []


@pytest.fixture
def own_pg_engine() -> Iterator[Engine]:
    """A PostgreSQL database of this test's own, empty, dropped afterwards."""
    name = f"{PG_DATABASE}_migrations"
    with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {name}")
    engine = make_engine(database_url(f"{PG_SERVER}/{name}"))
    yield engine
    engine.dispose()
    with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def test_indexes_on_messages_are_built_without_locking_out_writes(own_pg_engine):
    """Every index the migrations add to `messages` is built CONCURRENTLY, outside a
    transaction; and an index a killed build left invalid is built again, not kept."""
    engine = own_pg_engine
    upgrade(engine, "0008")
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO messages (direction, channel, body, is_free_text, is_urgent, status, "
                "queue, sequence, is_simulated, created_at) "
                "SELECT 'in', 'sms', '', false, false, 'received', 'replies', 0, false, now() "
                "FROM generate_series(1, 2)"
            )
        )
    # A build killed half-way leaves its index behind, invalid (here: a unique build that failed).
    with psycopg.connect(f"{PG_SERVER}/{engine.url.database}", autocommit=True) as conn:
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute(
                "CREATE UNIQUE INDEX CONCURRENTLY ix_messages_contact_time ON messages (channel)"
            )

    built: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("CREATE") and " INDEX " in statement.upper():
            built.append((statement, conn.connection.driver_connection.autocommit))

    event.listen(engine, "before_cursor_execute", record)
    upgrade(engine)
    on_messages = [(s, autocommit) for s, autocommit in built if " ON messages " in s]
    assert len(on_messages) == 2
    assert all(
        s.startswith("CREATE INDEX CONCURRENTLY") and autocommit for s, autocommit in on_messages
    )
    with engine.connect() as connection:
        indexes = dict(
            connection.execute(
                text(
                    "SELECT c.relname, i.indisvalid FROM pg_index i "
                    "JOIN pg_class c ON c.oid = i.indexrelid "
                    "WHERE i.indrelid = 'messages'::regclass"
                )
            ).all()
        )
        definition = connection.scalar(
            text("SELECT pg_get_indexdef('ix_messages_contact_time'::regclass)")
        )
    assert indexes["ix_messages_contact_time"] is True
    assert "UNIQUE" not in definition and "(contact_id, created_at, channel)" in definition
    assert "ix_messages_contact_id" not in indexes and "ix_messages_campaign_id" not in indexes
    assert indexes["ix_messages_campaign_progress"] is True
