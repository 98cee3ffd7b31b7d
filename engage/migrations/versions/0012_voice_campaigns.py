"""voice campaigns: a campaign call's invitation conversation (and its calls by it); a
campaign's calls by state

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.add_column(sa.Column("conversation_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_calls_conversation_id_conversations"),
            "conversations",
            ["conversation_id"],
            ["id"],
        )
    op.create_index("ix_calls_campaign_status", "calls", ["campaign_id", "status"])
    op.create_index("ix_calls_conversation_id", "calls", ["conversation_id"])


def downgrade() -> None:
    op.drop_index("ix_calls_conversation_id", "calls")
    op.drop_index("ix_calls_campaign_status", "calls")
    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_calls_conversation_id_conversations"), type_="foreignkey"
        )
        batch_op.drop_column("conversation_id")
