from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from engage.db import Base, utcnow


class ResultSnapshot(Base):
    """A survey's grouped counts frozen at one time: every aggregate download reads one.

    `cells` holds grouped counts with the sums of their people's record keys, finest groups
    only (engage/services/snapshots.py); never a respondent, a text or a phone number.
    """

    __tablename__ = "result_snapshots"
    __table_args__ = (Index("ix_result_snapshots_survey_taken", "survey_id", "taken_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    survey_id: Mapped[str] = mapped_column(String(100))
    taken_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Answer rows up to this id were written before the snapshot: respondents with later rows
    # are the new ones that a next snapshot waits for.
    max_answer_id: Mapped[int]
    respondents: Mapped[int]
    # The user (an admin) who asked for it sooner than the daily one, else None.
    requested_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    cells: Mapped[dict[str, Any]]
