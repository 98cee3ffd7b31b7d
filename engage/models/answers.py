from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from engage.db import Base, utcnow


class Answer(Base):
    """A question's outcome in a conversation: answered, skipped, missed, or from the profile."""

    __tablename__ = "answers"
    __table_args__ = (Index("ix_answers_survey_question", "survey_id", "question_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id"), index=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"), index=True)
    survey_id: Mapped[str] = mapped_column(String(100))
    version: Mapped[str] = mapped_column(String(64))
    question_id: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(10))  # answered | skipped | missed | profile
    # {"v": value}: the choice value, a list for multi, yes/no, the number, the text; null if none.
    value: Mapped[dict[str, Any]] = mapped_column(default=dict)
    raw_text: Mapped[str | None] = mapped_column(Text)
    language: Mapped[str] = mapped_column(String(8))
    # Profile attributes at answer time, for breakdowns.
    profile: Mapped[dict[str, Any]] = mapped_column(default=dict)
    is_simulated: Mapped[bool] = mapped_column(default=False)
    # The contact's record key, copied when the row is written (no default: every writer must
    # copy it); kept when the contact is erased, so published counts do not move.
    record_key: Mapped[int]
    # False once the contact has a later row for the same survey and question (set on write):
    # results count each respondent once per question, with the row where this is true.
    is_latest: Mapped[bool] = mapped_column(default=True)
    answered_at: Mapped[datetime] = mapped_column(default=utcnow)
