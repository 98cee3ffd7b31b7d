"""erasure: each contact's own key, the do-not-contact list, deletions at Twilio, thread notes

Existing worker texts and numbers are re-encrypted under a new key per contact (the PII key is
needed: `engage db upgrade` passes it).

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

import engage.db
from engage.privacy import ContactCipher, Vault

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("contacts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("key_encrypted", sa.String(length=200), nullable=True))
        batch_op.add_column(
            sa.Column("erase_requested_at", engage.db.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(
            sa.Column("erased_at", engage.db.UTCDateTime(timezone=True), nullable=True)
        )
    op.create_table(
        "do_not_contact",
        sa.Column("phone_hash", sa.String(length=64), nullable=False),
        sa.Column("is_opted_out", sa.Boolean(), nullable=False),
        sa.Column("created_at", engage.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("phone_hash"),
    )
    op.create_table(
        "twilio_deletions",
        sa.Column("sid", sa.String(length=64), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", engage.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_at", engage.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("sid"),
    )
    with op.batch_alter_table("twilio_deletions", schema=None) as batch_op:
        batch_op.create_index(
            "ix_twilio_deletions_next_attempt_at", ["next_attempt_at"], unique=False
        )
    op.create_table(
        "thread_notes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("contact_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("topic", sa.String(length=30), nullable=True),
        sa.Column("body", sa.Text(), nullable=True),
        sa.Column("author_id", sa.Integer(), nullable=True),
        sa.Column("created_at", engage.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["author_id"], ["users.id"]),
        sa.ForeignKeyConstraint(["contact_id"], ["contacts.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("thread_notes", schema=None) as batch_op:
        batch_op.create_index("ix_thread_notes_contact_id", ["contact_id"], unique=False)
    _encrypt_under_contact_keys()


def _encrypt_under_contact_keys() -> None:
    """Give every contact its own key and move its texts and number under it."""
    connection = op.get_bind()
    contacts = list(connection.execute(sa.text("SELECT id, phone_encrypted FROM contacts")))
    if not contacts:
        return
    config = op.get_context().config  # None where no Alembic config runs it
    vault: Vault | None = config.attributes.get("vault") if config is not None else None
    if vault is None:
        raise RuntimeError(
            "migration 0006 re-encrypts stored numbers and texts: run it with `engage db upgrade`"
        )
    text_questions = _text_questions(connection)
    for contact_id, phone_encrypted in contacts:
        key_encrypted, cipher = vault.new_contact_key()
        connection.execute(
            sa.text("UPDATE contacts SET key_encrypted = :k, phone_encrypted = :p WHERE id = :i"),
            {"k": key_encrypted, "p": _move(vault, cipher, phone_encrypted), "i": contact_id},
        )
        _move_messages(connection, vault, cipher, contact_id)
        _move_answers(connection, cipher, contact_id, text_questions)
        _move_misses(connection, cipher, contact_id)


def _move(vault: Vault, cipher: ContactCipher, token: str | None) -> str | None:
    return cipher.encrypt(vault.decrypt(token)) if token else token


def _move_messages(connection: Any, vault: Vault, cipher: ContactCipher, contact_id: int) -> None:
    rows = connection.execute(
        sa.text(
            "SELECT id, direction, body, media_url, their_address_encrypted FROM messages "
            "WHERE contact_id = :c"
        ),
        {"c": contact_id},
    )
    for message_id, direction, body, media_url, address in list(rows):
        inbound = direction == "in"
        connection.execute(
            sa.text(
                "UPDATE messages SET body = :b, media_url = :m, their_address_encrypted = :a "
                "WHERE id = :i"
            ),
            {
                "b": cipher.encrypt(body or "") if inbound else body,
                "m": cipher.encrypt_optional(media_url) if inbound else media_url,
                "a": _move(vault, cipher, address),
                "i": message_id,
            },
        )


def _text_questions(connection: Any) -> set[tuple[str, str]]:
    versions = sa.table(
        "survey_versions", sa.column("survey_id"), sa.column("definition", sa.JSON())
    )
    found = set()
    for survey_id, definition in connection.execute(
        sa.select(versions.c.survey_id, versions.c.definition)
    ):
        for question in (definition or {}).get("questions", []):
            if question.get("type") == "text":
                found.add((survey_id, question.get("id")))
    return found


def _move_answers(
    connection: Any, cipher: ContactCipher, contact_id: int, text_questions: set[tuple[str, str]]
) -> None:
    answers = sa.table(
        "answers",
        sa.column("id"),
        sa.column("contact_id"),
        sa.column("survey_id"),
        sa.column("question_id"),
        sa.column("raw_text"),
        sa.column("value", sa.JSON()),
    )
    rows = connection.execute(
        sa.select(
            answers.c.id,
            answers.c.survey_id,
            answers.c.question_id,
            answers.c.raw_text,
            answers.c.value,
        ).where(answers.c.contact_id == contact_id)
    )
    for answer_id, survey_id, question_id, raw_text, value in list(rows):
        value = value or {}
        if (survey_id, question_id) in text_questions and isinstance(value.get("v"), str):
            value = {"c": cipher.encrypt(value["v"])}
        connection.execute(
            sa.update(answers)
            .where(answers.c.id == answer_id)
            .values(raw_text=cipher.encrypt_optional(raw_text), value=value)
        )


def _move_misses(connection: Any, cipher: ContactCipher, contact_id: int) -> None:
    conversations = sa.table(
        "conversations", sa.column("id"), sa.column("contact_id"), sa.column("misses", sa.JSON())
    )
    rows = connection.execute(
        sa.select(conversations.c.id, conversations.c.misses).where(
            conversations.c.contact_id == contact_id
        )
    )
    for conversation_id, misses in list(rows):
        texts = (misses or {}).get("texts") or []
        if texts:
            connection.execute(
                sa.update(conversations)
                .where(conversations.c.id == conversation_id)
                .values(misses={"texts": [cipher.encrypt(t) for t in texts]})
            )


def downgrade() -> None:
    # Contacts' keys are dropped below: the texts and numbers under them could not be read again.
    if op.get_bind().execute(sa.text("SELECT count(*) FROM contacts")).scalar():
        raise RuntimeError("0006 cannot be undone once contacts exist: their keys would be lost")
    with op.batch_alter_table("thread_notes", schema=None) as batch_op:
        batch_op.drop_index("ix_thread_notes_contact_id")
    op.drop_table("thread_notes")
    with op.batch_alter_table("twilio_deletions", schema=None) as batch_op:
        batch_op.drop_index("ix_twilio_deletions_next_attempt_at")
    op.drop_table("twilio_deletions")
    op.drop_table("do_not_contact")
    with op.batch_alter_table("contacts", schema=None) as batch_op:
        batch_op.drop_column("erased_at")
        batch_op.drop_column("erase_requested_at")
        batch_op.drop_column("key_encrypted")
