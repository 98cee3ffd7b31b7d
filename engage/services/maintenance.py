"""Periodic work the clock runs."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update
from sqlalchemy.orm import Session

from engage.db import rows_matched, utcnow
from engage.models import Conversation


def expire_idle_conversations(session: Session, *, idle_hours: int) -> int:
    """End as expired every open conversation idle longer than idle_hours; answers are kept."""
    now = utcnow()
    result = session.execute(
        update(Conversation)
        .where(
            Conversation.status == "active",
            Conversation.last_activity_at < now - timedelta(hours=idle_hours),
        )
        .values(status="expired", pending=None, ended_at=now)
    )
    session.flush()
    return rows_matched(result)
