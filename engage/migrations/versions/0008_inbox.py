"""the staff inbox: threads (assignment, handling), who sent a reply, which messages are handled

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import engage.db
from engage.migrations import online

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def _waiting() -> sa.ColumnElement[bool]:
    """The index's WHERE, as models/messages.py `is_waiting_for_staff` writes it (a copy: a
    migration never changes with the code)."""
    handled_at = sa.column("handled_at", sa.DateTime())
    direction = sa.column("direction", sa.String())
    status = sa.column("status", sa.String())
    is_urgent = sa.column("is_urgent", sa.Boolean())
    is_free_text = sa.column("is_free_text", sa.Boolean())
    media_url = sa.column("media_url", sa.Text())
    return sa.and_(
        handled_at.is_(None),
        sa.or_(
            sa.and_(
                direction == sa.literal("in", sa.String(), literal_execute=True),
                sa.or_(is_urgent, is_free_text, media_url.is_not(None)),
            ),
            status == sa.literal("unconfirmed", sa.String(), literal_execute=True),
        ),
    )


def upgrade() -> None:
    op.create_table(
        "threads",
        sa.Column("contact_id", sa.Integer(), nullable=False),
        sa.Column("assigned_to_id", sa.Integer(), nullable=True),
        sa.Column("assigned_at", engage.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("handled_by_id", sa.Integer(), nullable=True),
        sa.Column("handled_at", engage.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("handled_through_at", engage.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["contact_id"], ["contacts.id"]),
        sa.ForeignKeyConstraint(["assigned_to_id"], ["users.id"]),
        sa.ForeignKeyConstraint(["handled_by_id"], ["users.id"]),
        sa.PrimaryKeyConstraint("contact_id"),
    )
    op.create_index("ix_threads_assigned_to_id", "threads", ["assigned_to_id"], unique=False)
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sent_by_id", sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column("handled_at", engage.db.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.create_foreign_key("fk_messages_sent_by_id_users", "users", ["sent_by_id"], ["id"])
    waiting = _waiting()
    online.create_index(
        "ix_messages_waiting",
        "messages",
        ["contact_id"],
        postgresql_where=waiting,
        sqlite_where=waiting,
    )


def downgrade() -> None:
    online.drop_index("ix_messages_waiting", "messages")
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_constraint("fk_messages_sent_by_id_users", type_="foreignkey")
        batch_op.drop_column("handled_at")
        batch_op.drop_column("sent_by_id")
    op.drop_index("ix_threads_assigned_to_id", table_name="threads")
    op.drop_table("threads")
