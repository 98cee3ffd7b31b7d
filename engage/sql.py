"""Core statements compiled once per dialect and run on the database driver's own cursor.

Only for the measured hot path: the conversation step, which runs on every inbound message.
There SQLAlchemy's work around each execution (execution context, parameter and result
objects) cost three to four times the query itself (bench/README.md). The statements are
still written in Core and compiled by SQLAlchemy, and every value goes through its column's
own type processors both ways, so what is written and read is exactly what Core would write
and read, on PostgreSQL and SQLite alike; the driver's errors are raised as Core raises them.
"""

from __future__ import annotations

import copy
from collections import namedtuple
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.expression import Executable


@dataclass(frozen=True)
class _Compiled:
    sql: str
    # Parameter names in the order the driver takes them (qmark, $n), or None for named.
    positions: tuple[str, ...] | None
    # psycopg's RawCursor: the SQL has PostgreSQL's own $n placeholders and goes as it is.
    is_raw: bool
    defaults: dict[str, Any]
    binds: dict[str, Callable[[Any], Any] | None]
    results: tuple[Callable[[Any], Any] | None, ...]
    row: type


class DriverStatement:
    """A statement (or a function of the dialect's name that builds one) run without Core.

    No Python-side column defaults are applied: an INSERT or UPDATE must be given every
    column that has one (`column_keys` names the columns an INSERT or UPDATE sets).
    """

    def __init__(
        self,
        statement: Executable | Callable[[str], Executable],
        *,
        column_keys: Sequence[str] | None = None,
    ) -> None:
        self._statement = statement
        self._column_keys = list(column_keys) if column_keys is not None else None
        self._compiled: dict[str, _Compiled] = {}

    def statement(self, dialect_name: str) -> Executable:
        """The Core statement run (built for the dialect, when given as a function)."""
        statement = self._statement
        return statement if isinstance(statement, Executable) else statement(dialect_name)

    def rows(self, connection: Connection, params: Mapping[str, Any]) -> list[Any]:
        """Run the statement: every row, as named tuples (attribute access, like Core's rows)."""
        compiled = self._compiled.get(connection.dialect.name) or self._compile(connection.dialect)
        values = {}
        for name, process in compiled.binds.items():
            value = params[name] if name in params else compiled.defaults[name]
            values[name] = process(value) if process is not None else value
        arguments: Any = (
            values
            if compiled.positions is None
            else tuple(values[name] for name in compiled.positions)
        )
        driver_connection = connection.connection.driver_connection
        assert driver_connection is not None
        cursor = _raw_cursor(driver_connection) if compiled.is_raw else driver_connection.cursor()
        try:
            with driver_errors(connection):
                cursor.execute(compiled.sql, arguments)
                fetched = cursor.fetchall() if compiled.results else []
        finally:
            cursor.close()
        make, processors = compiled.row, compiled.results
        return [
            make(*(p(v) if p is not None else v for p, v in zip(processors, row, strict=True)))
            for row in fetched
        ]

    def first(self, connection: Connection, params: Mapping[str, Any]) -> Any | None:
        found = self.rows(connection, params)
        return found[0] if found else None

    def _compile(self, dialect: Dialect) -> _Compiled:
        statement = self.statement(dialect.name)
        is_raw = dialect.name == "postgresql" and dialect.driver == "psycopg"
        compiled = statement.compile(
            dialect=_numbered(dialect) if is_raw else dialect,
            column_keys=self._column_keys,
            compile_kwargs={"render_postcompile": True},
        )
        prefetch = [*compiled.insert_prefetch, *compiled.update_prefetch]
        if prefetch:
            names = ", ".join(column.name for column in prefetch)
            raise ValueError(f"give a value for every column with a Python default: {names}")
        # Keyed by the names the SQL uses (anonymous binds, such as a literal, get one here).
        binds = {
            name: bind.type.dialect_impl(dialect).bind_processor(dialect)
            for bind, name in compiled.bind_names.items()
        }
        if getattr(compiled, "escaped_bind_names", None):
            raise ValueError("bind names that need escaping are not supported")
        columns = list(getattr(statement, "exported_columns", []))
        result = _Compiled(
            sql=compiled.string,
            positions=tuple(compiled.positiontup) if compiled.positiontup else None,
            is_raw=is_raw,
            defaults=dict(compiled.params),
            binds=binds,
            results=tuple(
                column.type.dialect_impl(dialect).result_processor(dialect, None)
                for column in columns
            ),
            row=namedtuple("Row", [column.key for column in columns]),  # type: ignore[misc]
        )
        self._compiled[dialect.name] = result
        return result


def _numbered(dialect: Dialect) -> Dialect:
    """The dialect, writing PostgreSQL's own $1, $2, … placeholders instead of %(name)s.

    psycopg rewrites %(name)s into $n for every execution, and caches the rewrite only for
    statements under 4 KB and 50 parameters: the step's writes are longer. With $n the SQL
    goes to the server as it is (psycopg's RawCursor).
    """
    numbered = copy.copy(dialect)
    numbered.paramstyle = "numeric_dollar"
    numbered.positional = True
    return numbered


def _raw_cursor(driver_connection: Any) -> Any:
    from psycopg import RawCursor

    return RawCursor(driver_connection)


@contextmanager
def driver_errors(connection: Connection) -> Iterator[None]:
    """The driver's errors as Core raises them: SQLAlchemy's DBAPIError subclasses (so that
    `except sqlalchemy.exc.OperationalError` sees a lost server), with the connection
    invalidated when it is gone, so that the pool does not hand it out again."""
    dialect = connection.dialect
    try:
        yield
    except dialect.loaded_dbapi.Error as exc:
        is_disconnect = dialect.is_disconnect(exc, connection.connection.dbapi_connection, None)
        if is_disconnect and not connection.invalidated:
            connection.invalidate(exc)
        raise DBAPIError.instance(
            None,
            None,
            exc,
            dialect.loaded_dbapi.Error,
            connection_invalidated=is_disconnect,
            dialect=dialect,
        ) from exc
