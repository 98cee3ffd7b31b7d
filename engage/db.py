"""The declarative base, the engine per app, and where transactions begin and end."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flask import Flask, current_app, g
from sqlalchemy import (
    JSON,
    ColumnElement,
    Connection,
    CursorResult,
    DateTime,
    Engine,
    Insert,
    Integer,
    MetaData,
    Result,
    SQLColumnExpression,
    Table,
    any_,
    bindparam,
    create_engine,
    event,
    insert,
    make_url,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

JSONType = JSON().with_variant(JSONB(), "postgresql")


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every database (SQLite keeps no zone of its own)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given where UTC is required")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime, dict[str, Any]: JSONType}


def table_of(model: type[Base]) -> Table:
    """A model's table for Core statements (`Model.__table__` is typed as any `FromClause`)."""
    return Base.metadata.tables[model.__tablename__]


def utcnow() -> datetime:
    return datetime.now(UTC)


def now() -> datetime:
    """This app's clock: UTC now, or the time a test has set (sessions expire by it)."""
    return current_app.extensions.get("engage.clock", utcnow)()


# A pooled connection idle longer than this is pinged before it is handed out (the server may
# have restarted or dropped it meanwhile).
PING_AFTER_IDLE_SECONDS = 2.0


def make_engine(url: str, *, hide_parameters: bool = False) -> Engine:
    """An engine; on SQLite, WAL and a write lock taken at BEGIN so steps run one at a time.

    `hide_parameters` (production) keeps statement parameters, which can be phone numbers,
    e-mail addresses or a worker's words, out of every error message and log line.
    """
    if url.startswith("sqlite"):
        engine = create_engine(
            url,
            connect_args={"timeout": 30, "check_same_thread": False},
            hide_parameters=hide_parameters,
        )

        @event.listens_for(engine, "connect")
        def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
            # Let SQLAlchemy's BEGIN below be the only transaction control (pysqlite's own is off).
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Any) -> None:
            # IMMEDIATE takes the write lock at once: two steps for one contact cannot interleave.
            # The request's reading session begins deferred, so a page never blocks a webhook.
            deferred = conn.get_execution_options().get("engage_deferred", False)
            conn.exec_driver_sql("BEGIN" if deferred else "BEGIN IMMEDIATE")

        return engine
    engine = create_engine(url, pool_size=5, max_overflow=10, hide_parameters=hide_parameters)
    _ping_idle_connections(engine)
    return engine


def _ping_idle_connections(engine: Engine) -> None:
    """SQLAlchemy's pessimistic ping, for connections that sat idle in the pool.

    `pool_pre_ping` pings on every checkout: a round trip and a statement more on every
    webhook, though a connection reused a few milliseconds after its last transaction is
    nearly always alive. Idle ones are pinged here (a dead one is replaced by the pool);
    one that died anyway fails its transaction with an OperationalError, which the webhook
    spools, and is discarded (Core invalidates a connection it finds disconnected).
    """

    @event.listens_for(engine, "checkin")
    def _checkin(_dbapi_connection: Any, record: Any) -> None:
        record.info["engage.idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.get("engage.idle_since")
        if idle_since is None or time.monotonic() - idle_since < PING_AFTER_IDLE_SECONDS:
            return  # new, or back in the pool a moment ago
        try:
            engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error as exc:
            raise DisconnectionError("idle connection lost") from exc


def make_private_sqlite_file(url: str) -> None:
    """The SQLite file (and its -wal, -shm) readable by the owner only.

    Made 0600 before SQLite opens it: SQLite gives the -wal and -shm files it creates the
    database file's permissions. An existing file of ours is tightened.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return
    path = Path(parsed.database)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        pass
    except FileNotFoundError:
        return  # no such folder: SQLite says so when it is opened
    for each in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        if each.exists() and each.stat().st_uid == os.getuid() and each.stat().st_mode & 0o077:
            each.chmod(0o600)


def init_app(app: Flask) -> None:
    make_private_sqlite_file(app.config["DATABASE_URL"])
    engine = make_engine(
        app.config["DATABASE_URL"], hide_parameters=bool(app.config["IS_PRODUCTION"])
    )
    app.extensions["engage.engine"] = engine
    app.extensions["engage.sessionmaker"] = sessionmaker(engine, expire_on_commit=False)
    app.extensions["engage.read_sessionmaker"] = sessionmaker(
        engine.execution_options(engage_deferred=True), expire_on_commit=False
    )
    app.teardown_appcontext(_close_session)


def engine() -> Engine:
    return current_app.extensions["engage.engine"]


def session() -> Session:
    """The session of this request or app context (created on first use).

    Mostly for reading; what it writes (an audit line, a sign-in) it commits itself. Work that
    must run one at a time uses its own transaction: a send `transaction()`, the conversation
    step a Core one (`engine().begin()`).
    """
    if "db_session" not in g:
        g.db_session = current_app.extensions["engage.read_sessionmaker"]()
    return g.db_session


def _close_session(_exc: BaseException | None) -> None:
    db_session = g.pop("db_session", None)
    if db_session is not None:
        db_session.close()


@contextmanager
def transaction() -> Iterator[Session]:
    """A fresh session whose work is committed at the end, or rolled back on error."""
    db_session = current_app.extensions["engage.sessionmaker"]()
    try:
        yield db_session
        db_session.commit()
    except BaseException:
        db_session.rollback()
        raise
    finally:
        db_session.close()


def rows_matched(result: Result[Any]) -> int:
    """How many rows an UPDATE or DELETE without RETURNING matched.

    Session.execute() is typed to return any Result; for such a statement it is a CursorResult.
    """
    assert isinstance(result, CursorResult)
    return result.rowcount


def insert_ignoring_conflicts(dialect_name: str, table: Table, *columns: str) -> Insert:
    """INSERT … ON CONFLICT (columns) DO NOTHING, for PostgreSQL or SQLite.

    With RETURNING, a row that conflicted returns nothing: how a unique key is claimed once.
    """
    if dialect_name == "postgresql":
        from sqlalchemy.dialects import postgresql

        return postgresql.insert(table).on_conflict_do_nothing(index_elements=list(columns))
    from sqlalchemy.dialects import sqlite

    return sqlite.insert(table).on_conflict_do_nothing(index_elements=list(columns))


def insert_returning_ids(
    session: Session, table: Table, rows: Sequence[Mapping[str, Any]]
) -> list[int]:
    """Insert rows (dicts with the same keys) into a table with an integer `id`; their new ids.

    The ids come back in the order of `rows`, and ascending. On PostgreSQL the ids are drawn from
    the table's sequence and the rows sent with COPY, in the session's transaction: for thousands
    of rows that is several times faster than INSERT … RETURNING, whose long statements psycopg
    spends most of its time parsing. Elsewhere it is one INSERT … RETURNING. Values go through
    the columns' own types either way, so both write exactly what an ORM insert would.
    """
    if not rows:
        return []
    names = list(rows[0])
    unset = [c.name for c in table.c if c.default is not None and c.name not in names]
    if unset:
        # COPY would leave them NULL where an INSERT applies their Python-side default.
        raise ValueError(f"{table.name}: give every column with a default: {', '.join(unset)}")
    session.flush()
    connection = session.connection()
    if connection.dialect.name != "postgresql":
        statement = insert(table).returning(table.c.id, sort_by_parameter_order=True)
        return list(connection.scalars(statement, rows))
    return _copy_returning_ids(connection, table, names, rows)


def _copy_returning_ids(
    connection: Connection, table: Table, names: list[str], rows: Sequence[Mapping[str, Any]]
) -> list[int]:
    from psycopg import sql

    dialect = connection.dialect
    columns = []  # column by column: far fewer Python calls than value by value
    for name in names:
        values = [row[name] for row in rows]
        process = table.c[name].type.dialect_impl(dialect).bind_processor(dialect)
        columns.append([process(value) for value in values] if process else values)
    # The sequence is looked up once (MATERIALIZED): as nextval's argument it was once per row.
    ids = sorted(
        connection.scalars(
            text(
                "WITH s AS MATERIALIZED (SELECT pg_get_serial_sequence(:table, 'id')::regclass"
                " AS seq) SELECT nextval(seq) FROM s, generate_series(1, :n)"
            ),
            {"table": table.name, "n": len(rows)},
        )
    )
    copy_sql = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(table.name), sql.SQL(", ").join(map(sql.Identifier, ["id", *names]))
    )
    driver_connection = connection.connection.driver_connection
    assert driver_connection is not None
    with driver_connection.cursor() as cursor, cursor.copy(copy_sql) as copy:
        for row in zip(ids, *columns, strict=True):
            copy.write_row(row)
    return ids


def id_in(
    session: Session, column: SQLColumnExpression[int], ids: Sequence[int]
) -> ColumnElement[bool]:
    """`column IN (ids)`; on PostgreSQL `column = ANY(:ids)`, one array parameter.

    Thousands of parameters make a long statement that psycopg takes ~20 ms to parse per 2,000.
    """
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import ARRAY

        return column == any_(bindparam(None, list(ids), type_=ARRAY(Integer)))
    return column.in_(ids)
