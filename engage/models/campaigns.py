from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from engage.db import Base, utcnow
from engage.states import CampaignState, RemindWhom


class Campaign(Base):
    """An invitation of matching contacts to a survey, with its reminders.

    Per contact, the campaign's message rows are its bookkeeping: one `invitation` row (the
    first of its step, `sequence` 0) and a `reminder` row for each reminder written, all with
    this campaign's id (engage/services/campaigns.py, engage/services/reminders.py).
    """

    __tablename__ = "campaigns"

    id: Mapped[int] = mapped_column(primary_key=True)
    survey_id: Mapped[str] = mapped_column(String(100))
    version: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(10), default="sms")
    # {"language": …, "channel": … (a channel the contact has used), <profile key>: value, …}
    filters: Mapped[dict[str, Any]] = mapped_column(default=dict)
    start_at: Mapped[datetime] = mapped_column(default=utcnow)
    state: Mapped[str] = mapped_column(
        String(20), default=CampaignState.RUNNING, server_default=CampaignState.RUNNING
    )
    # How many contacts it invites after its exclusions (set when the invitations are written).
    contacts: Mapped[int] = mapped_column(default=0, server_default="0")
    invited: Mapped[int] = mapped_column(default=0)
    # Reminders: at most `reminders`, each `remind_after_hours` after the one before (the first
    # after the invitation), to those who have not started or not completed (`remind`).
    remind_after_hours: Mapped[int | None]
    reminders: Mapped[int] = mapped_column(default=0, server_default="0")
    remind: Mapped[str] = mapped_column(
        String(20), default=RemindWhom.NOT_STARTED, server_default=RemindWhom.NOT_STARTED
    )
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # When every invitation was written; None while the fan-out runs.
    fanned_out_at: Mapped[datetime | None]
    # When it finished or was cancelled.
    ended_at: Mapped[datetime | None]
