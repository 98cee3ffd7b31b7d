"""safety flags on messages, their alerts, and the contact's last safety help

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import engage.db

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("is_urgent", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.add_column(sa.Column("urgent_topic", sa.String(length=30), nullable=True))
        batch_op.add_column(
            sa.Column("alert_sent_at", engage.db.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.create_index(
            "ix_messages_urgent_alert", ["is_urgent", "alert_sent_at"], unique=False
        )
    with op.batch_alter_table("contacts", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("last_safety_help_at", engage.db.UTCDateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("contacts", schema=None) as batch_op:
        batch_op.drop_column("last_safety_help_at")
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_index("ix_messages_urgent_alert")
        batch_op.drop_column("alert_sent_at")
        batch_op.drop_column("urgent_topic")
        batch_op.drop_column("is_urgent")
