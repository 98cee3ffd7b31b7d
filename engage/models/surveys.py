from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from engage.db import Base, utcnow

# Where a survey is written: a file under surveys/ (read-only in the browser) or the staff pages.
SURVEY_SOURCES = ("file", "web")


class SurveyRecord(Base):
    """A survey id and where it lives: claimed by the first file or web draft that uses it.

    A retired survey's keywords start nothing (results stay); a deploy never brings it back.
    """

    __tablename__ = "surveys"

    id: Mapped[str] = mapped_column(String(100), primary_key=True)
    source: Mapped[str] = mapped_column(String(10), default="file")
    # A web survey made with "copy to edit": the file survey whose keywords it may take over.
    copied_from: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    retired_at: Mapped[datetime | None]


class SurveyDraft(Base):
    """A web survey being written: its YAML text, saved as staff type, never run by workers.

    `revision` counts saves: a save that names an older revision than this is refused, so
    two people editing never silently overwrite each other.
    """

    __tablename__ = "survey_drafts"

    survey_id: Mapped[str] = mapped_column(ForeignKey("surveys.id"), primary_key=True)
    text: Mapped[str] = mapped_column(Text)
    revision: Mapped[int] = mapped_column(default=1)
    updated_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class SurveyVersion(Base):
    """One published version of a survey: its parsed definition, never changed once stored."""

    __tablename__ = "survey_versions"
    __table_args__ = (UniqueConstraint("survey_id", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    survey_id: Mapped[str] = mapped_column(String(100), index=True)
    version: Mapped[str] = mapped_column(String(64))
    definition: Mapped[dict[str, Any]]
    # The version new conversations start on; False for older versions and removed files.
    is_current: Mapped[bool] = mapped_column(default=True)
    published_at: Mapped[datetime] = mapped_column(default=utcnow)
