from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from engage.db import Base, utcnow


class DoNotContact(Base):
    """An erased number, as its keyed hash only: imports and campaigns skip it.

    A later message from the number makes a new contact (opted out when the erased one was).
    """

    __tablename__ = "do_not_contact"

    phone_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    is_opted_out: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class TwilioDeletion(Base):
    """A message of an erased contact still to delete at Twilio; the clock retries it."""

    __tablename__ = "twilio_deletions"

    sid: Mapped[str] = mapped_column(String(64), primary_key=True)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ThreadNote(Base):
    """A note on a contact's thread for staff: written by staff, or by Engage (no author).

    `kind` says what it is: `erased_urgent` (an urgent message, topic `topic`, erased by its
    sender at `created_at`: no content) or `note` (staff's own words in `body`).
    """

    __tablename__ = "thread_notes"

    id: Mapped[int] = mapped_column(primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    topic: Mapped[str | None] = mapped_column(String(30))
    body: Mapped[str | None] = mapped_column(Text)
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
