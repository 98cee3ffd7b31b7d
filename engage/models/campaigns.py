from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from engage.db import Base, utcnow


class Campaign(Base):
    """An invitation of matching contacts to a survey."""

    __tablename__ = "campaigns"

    id: Mapped[int] = mapped_column(primary_key=True)
    survey_id: Mapped[str] = mapped_column(String(100))
    version: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(10), default="sms")
    filters: Mapped[dict[str, Any]] = mapped_column(default=dict)
    start_at: Mapped[datetime] = mapped_column(default=utcnow)
    invited: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
