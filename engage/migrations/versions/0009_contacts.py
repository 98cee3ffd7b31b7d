"""the contacts pages: uploaded contact files until imported, and a contact's messages by time

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import engage.db
from engage.migrations import online

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "contact_imports",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("actor", sa.String(length=254), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("file_encrypted", sa.LargeBinary(), nullable=True),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("numbers", sa.Integer(), nullable=False),
        sa.Column("new_numbers", sa.Integer(), nullable=False),
        sa.Column("known_numbers", sa.Integer(), nullable=False),
        sa.Column("opted_out_numbers", sa.Integer(), nullable=False),
        sa.Column("erased_numbers", sa.Integer(), nullable=False),
        sa.Column("created", sa.Integer(), nullable=True),
        sa.Column("updated", sa.Integer(), nullable=True),
        sa.Column("merged_in_file", sa.Integer(), nullable=True),
        sa.Column("opted_out_kept", sa.Integer(), nullable=True),
        sa.Column("skipped_erased", sa.Integer(), nullable=True),
        sa.Column("created_at", engage.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("started_at", engage.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("finished_at", engage.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_contact_imports_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_contact_imports")),
    )
    # The contact's index grows the time and channel: the same number of indexes to keep on
    # each message written, and the contacts list's filters need no scan of messages.
    online.create_index(
        "ix_messages_contact_time", "messages", ["contact_id", "created_at", "channel"]
    )
    online.drop_index("ix_messages_contact_id", "messages")


def downgrade() -> None:
    online.create_index("ix_messages_contact_id", "messages", ["contact_id"])
    online.drop_index("ix_messages_contact_time", "messages")
    op.drop_table("contact_imports")
