"""web surveys (a registry of survey ids, drafts), set-password links and TOTP for accounts

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import engage.db

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    surveys = op.create_table(
        "surveys",
        sa.Column("id", sa.String(length=100), nullable=False),
        sa.Column("source", sa.String(length=10), nullable=False),
        sa.Column("copied_from", sa.String(length=100), nullable=True),
        sa.Column("created_at", engage.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("retired_at", engage.db.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    # Every survey published so far came from a file.
    versions = sa.table(
        "survey_versions",
        sa.column("survey_id", sa.String),
        sa.column("published_at", engage.db.UTCDateTime(timezone=True)),
    )
    op.execute(
        surveys.insert().from_select(
            ["id", "source", "created_at"],
            sa.select(
                versions.c.survey_id, sa.literal("file"), sa.func.min(versions.c.published_at)
            ).group_by(versions.c.survey_id),
        )
    )
    op.create_table(
        "survey_drafts",
        sa.Column("survey_id", sa.String(length=100), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("updated_by", sa.Integer(), nullable=True),
        sa.Column("updated_at", engage.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["survey_id"], ["surveys.id"]),
        sa.ForeignKeyConstraint(["updated_by"], ["users.id"]),
        sa.PrimaryKeyConstraint("survey_id"),
    )
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("totp_secret_encrypted", sa.String(300), nullable=True))
        batch_op.add_column(sa.Column("password_token_hash", sa.String(64), nullable=True))
        batch_op.add_column(
            sa.Column(
                "password_token_expires_at", engage.db.UTCDateTime(timezone=True), nullable=True
            )
        )
        batch_op.create_unique_constraint("uq_users_password_token_hash", ["password_token_hash"])


def downgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_constraint("uq_users_password_token_hash", type_="unique")
        batch_op.drop_column("password_token_expires_at")
        batch_op.drop_column("password_token_hash")
        batch_op.drop_column("totp_secret_encrypted")
    op.drop_table("survey_drafts")
    op.drop_table("surveys")
