"""campaign control and reminders: state, reminder settings, who started it; progress index

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import engage.db
from engage.migrations import online

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        # Campaigns started before this revision wrote every invitation at once: running, and
        # the clock finishes them once nothing of theirs is left to send.
        batch_op.add_column(
            sa.Column("state", sa.String(length=20), nullable=False, server_default="running")
        )
        batch_op.add_column(sa.Column("contacts", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("remind_after_hours", sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column("reminders", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.add_column(
            sa.Column("remind", sa.String(length=20), nullable=False, server_default="not_started")
        )
        batch_op.add_column(sa.Column("created_by", sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column("fanned_out_at", engage.db.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(
            sa.Column("ended_at", engage.db.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_campaigns_created_by_users"), "users", ["created_by"], ["id"]
        )
    campaigns = sa.table(
        "campaigns",
        sa.column("invited", sa.Integer),
        sa.column("contacts", sa.Integer),
        sa.column("created_at", engage.db.UTCDateTime(timezone=True)),
        sa.column("fanned_out_at", engage.db.UTCDateTime(timezone=True)),
    )
    op.execute(
        campaigns.update().values(
            contacts=campaigns.c.invited, fanned_out_at=campaigns.c.created_at
        )
    )
    online.create_index(
        "ix_messages_campaign_progress", "messages", ["campaign_id", "kind", "status"]
    )
    online.drop_index("ix_messages_campaign_id", "messages")


def downgrade() -> None:
    online.create_index("ix_messages_campaign_id", "messages", ["campaign_id"])
    online.drop_index("ix_messages_campaign_progress", "messages")
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_campaigns_created_by_users"), type_="foreignkey")
        batch_op.drop_column("ended_at")
        batch_op.drop_column("fanned_out_at")
        batch_op.drop_column("created_by")
        batch_op.drop_column("remind")
        batch_op.drop_column("reminders")
        batch_op.drop_column("remind_after_hours")
        batch_op.drop_column("contacts")
        batch_op.drop_column("state")
