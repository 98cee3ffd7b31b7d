"""The conversation step's statements: built once per dialect, run through SQLAlchemy Core.

The step runs on every inbound message. Its statements are Core statements (some depend on the
dialect, such as `INSERT … ON CONFLICT`), built once per dialect and kept, so SQLAlchemy's
compiled cache serves every later execution; they run with `Connection.execute`, so values,
results and errors are exactly Core's.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import Connection, Row
from sqlalchemy.sql.expression import Executable


class StepStatement:
    """A statement, or a function of the dialect's name that builds one, kept per dialect."""

    def __init__(self, statement: Executable | Callable[[str], Executable]) -> None:
        self._statement = statement
        self._built: dict[str, Executable] = {}

    def statement(self, dialect_name: str) -> Executable:
        """The Core statement run (built for the dialect, when given as a function)."""
        built = self._built.get(dialect_name)
        if built is None:
            statement = self._statement
            built = statement if isinstance(statement, Executable) else statement(dialect_name)
            self._built[dialect_name] = built
        return built

    def rows(self, connection: Connection, params: Mapping[str, Any]) -> list[Row[Any]]:
        """Run the statement with these parameters: every row it returns."""
        result = connection.execute(self.statement(connection.dialect.name), dict(params))
        return list(result.all()) if result.returns_rows else []

    def first(self, connection: Connection, params: Mapping[str, Any]) -> Row[Any] | None:
        found = self.rows(connection, params)
        return found[0] if found else None
