from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from engage.db import Base, utcnow


class SurveyVersion(Base):
    """One published version of a survey file: its parsed definition, never changed once stored."""

    __tablename__ = "survey_versions"
    __table_args__ = (UniqueConstraint("survey_id", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    survey_id: Mapped[str] = mapped_column(String(100), index=True)
    version: Mapped[str] = mapped_column(String(64))
    definition: Mapped[dict[str, Any]]
    # The version new conversations start on; False for older versions and removed files.
    is_current: Mapped[bool] = mapped_column(default=True)
    published_at: Mapped[datetime] = mapped_column(default=utcnow)
