"""record keys on contacts, conversations and answers; result snapshots

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy import Text
from sqlalchemy.dialects import postgresql

import engage.db

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table in ("contacts", "conversations", "answers"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(
                sa.Column("record_key", sa.Integer(), nullable=False, server_default="0")
            )
    # Contacts from before get their random key now; their rows copy it.
    if op.get_bind().dialect.name == "postgresql":
        op.execute("UPDATE contacts SET record_key = floor(random() * 256)::int")
    else:
        op.execute("UPDATE contacts SET record_key = abs(random()) % 256")
    for table in ("conversations", "answers"):
        op.execute(
            f"UPDATE {table} SET record_key = "  # noqa: S608 - fixed table names
            f"(SELECT record_key FROM contacts WHERE contacts.id = {table}.contact_id)"
        )
    for table in ("contacts", "conversations", "answers"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.alter_column("record_key", server_default=None)

    op.create_table(
        "result_snapshots",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("survey_id", sa.String(length=100), nullable=False),
        sa.Column("taken_at", engage.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("max_answer_id", sa.Integer(), nullable=False),
        sa.Column("respondents", sa.Integer(), nullable=False),
        sa.Column("requested_by", sa.Integer(), nullable=True),
        sa.Column(
            "cells",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["requested_by"], ["users.id"], name=op.f("fk_result_snapshots_requested_by_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_result_snapshots")),
    )
    with op.batch_alter_table("result_snapshots", schema=None) as batch_op:
        batch_op.create_index(
            "ix_result_snapshots_survey_taken", ["survey_id", "taken_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("result_snapshots", schema=None) as batch_op:
        batch_op.drop_index("ix_result_snapshots_survey_taken")
    op.drop_table("result_snapshots")
    for table in ("answers", "conversations", "contacts"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("record_key")
