"""Periodic work the clock runs."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Select, exists, update
from sqlalchemy.orm import Session, aliased

from engage.db import rows_matched, utcnow
from engage.models import Call, Conversation, Message
from engage.states import CallStatus, MessageStatus


def idle_from(session: Session | Connection, conversation_ids: Select[Any], now: datetime) -> None:
    """Invitations that waited to go out (a paused campaign's) are idle from now, not from
    when they were written: the worker has not seen them yet."""
    session.execute(
        update(Conversation)
        .where(
            Conversation.id.in_(conversation_ids.scalar_subquery()),
            Conversation.status == "active",
            Conversation.last_activity_at < now,
        )
        .values(last_activity_at=now)
    )


def expire_idle_conversations(session: Session, *, idle_hours: int) -> int:
    """End as expired every open conversation idle longer than idle_hours; answers are kept.

    An invitation that has not gone out yet (its campaign is paused), by text or by call, is
    not idle: the worker has not seen it. Resuming the campaign gives it its idle time from then.
    """
    now = utcnow()
    invitation = aliased(Message)
    waiting = exists().where(
        # By contact first: the contact's messages are indexed, a conversation's are not.
        invitation.contact_id == Conversation.contact_id,
        invitation.conversation_id == Conversation.id,
        invitation.kind == "invitation",
        invitation.status == MessageStatus.PENDING,
    )
    # A voice campaign's invitation is its call: not placed yet, not seen either.
    call_waiting = exists().where(
        Call.conversation_id == Conversation.id, Call.status == CallStatus.QUEUED
    )
    result = session.execute(
        update(Conversation)
        .where(
            Conversation.status == "active",
            Conversation.last_activity_at < now - timedelta(hours=idle_hours),
            ~waiting,
            ~call_waiting,
        )
        .values(status="expired", pending=None, ended_at=now)
    )
    session.flush()
    return rows_matched(result)
