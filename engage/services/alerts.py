"""Alerts for urgent messages (ENGAGE_ALERT_WEBHOOK): what they say and which are due.

An alert names the contact by its pseudonym and the thread by its URL: never the message's
text, never a number.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from engage.models import Message


def alert_payload(message: Message, public_url: str) -> dict[str, Any]:
    """The JSON an alert posts for one urgent inbound message."""
    return {
        "contact": f"contact-{message.contact_id}",
        "topic": message.urgent_topic,
        "at": message.created_at.isoformat(),
        "url": f"{public_url}/staff/inbox/{message.contact_id}",
        "is_simulated": message.is_simulated,
    }


def urgent_message(session: Session, message_id: int) -> Message | None:
    """An urgent inbound message whose alert has not gone out, or None."""
    message = session.get(Message, message_id)
    if message is None or not message.is_urgent or message.alert_sent_at is not None:
        return None
    if message.contact_id is None:  # erased meanwhile: nobody to point staff to
        return None
    return message


def mark_alert_sent(session: Session, message_id: int, now: datetime) -> None:
    session.execute(
        update(Message)
        .where(Message.id == message_id, Message.alert_sent_at.is_(None))
        .values(alert_sent_at=now)
    )


def due_alert_ids(
    session: Session, *, now: datetime, older_than: timedelta, within: timedelta, limit: int = 500
) -> list[int]:
    """Urgent messages whose alert has not gone out: written more than `older_than` ago (the
    step's own hand-over has had its chance) and less than `within` ago."""
    return list(
        session.scalars(
            select(Message.id)
            .where(
                Message.is_urgent.is_(True),
                Message.alert_sent_at.is_(None),
                Message.contact_id.is_not(None),
                Message.created_at < now - older_than,
                Message.created_at > now - within,
            )
            .order_by(Message.id)
            .limit(limit)
        )
    )
