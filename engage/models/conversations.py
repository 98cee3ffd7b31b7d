from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from engage.db import Base, utcnow


class Conversation(Base):
    """One contact answering one survey version, from the keyword or invitation to its end."""

    __tablename__ = "conversations"
    __table_args__ = (Index("ix_conversations_contact_status", "contact_id", "status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"))
    survey_id: Mapped[str] = mapped_column(String(100), index=True)
    version: Mapped[str] = mapped_column(String(64))
    language: Mapped[str] = mapped_column(String(8))
    channel: Mapped[str] = mapped_column(String(10), default="sms")
    status: Mapped[str] = mapped_column(String(20), default="active")
    pending: Mapped[str | None] = mapped_column(String(100))
    misses: Mapped[dict[str, Any]] = mapped_column(default=dict)
    consent_tries: Mapped[int] = mapped_column(default=0)
    is_invited: Mapped[bool] = mapped_column(default=False)
    is_simulated: Mapped[bool] = mapped_column(default=False)
    # The contact's record key, copied when the conversation is written (no default: every
    # writer must copy it).
    record_key: Mapped[int]
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_activity_at: Mapped[datetime] = mapped_column(default=utcnow)
    ended_at: Mapped[datetime | None]
    # The last question that got an answer row in this conversation, and the profile written
    # with that row: the funnel reads these instead of the conversation's answers.
    last_question_id: Mapped[str | None] = mapped_column(String(100))
    last_profile: Mapped[dict[str, Any]] = mapped_column(default=dict)
