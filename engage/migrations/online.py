"""Index changes on `messages`, the table that grows with every message, without stopping writes.

A plain CREATE INDEX locks a table against writes for as long as the build takes, and on a large
`messages` table every inbound message would wait. On PostgreSQL these build and drop the index
CONCURRENTLY, outside the migration's transaction (Alembic's `autocommit_block`); a build that
was interrupted leaves an invalid index, which the next run drops and builds again. SQLite builds
it as usual.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op


def _is_postgresql() -> bool:
    return bool(op.get_bind().dialect.name == "postgresql")


def create_index(name: str, table: str, columns: Sequence[str], **kw: Any) -> None:
    if not _is_postgresql():
        op.create_index(name, table, list(columns), **kw)
        return
    with op.get_context().autocommit_block():
        invalid = op.get_bind().scalar(
            sa.text(
                "SELECT 1 FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
                "WHERE c.relname = :name AND NOT i.indisvalid"
            ),
            {"name": name},
        )
        if invalid:
            op.drop_index(name, table_name=table, postgresql_concurrently=True)
        op.create_index(
            name, table, list(columns), postgresql_concurrently=True, if_not_exists=True, **kw
        )


def drop_index(name: str, table: str) -> None:
    if not _is_postgresql():
        op.drop_index(name, table_name=table)
        return
    with op.get_context().autocommit_block():
        op.drop_index(name, table_name=table, postgresql_concurrently=True, if_exists=True)
