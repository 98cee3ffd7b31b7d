"""Delivery status from Twilio's callbacks: a status only moves forward."""

from __future__ import annotations

import logging

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from engage.db import rows_matched, utcnow
from engage.models import Contact, Message
from engage.states import Direction, MessageStatus

log = logging.getLogger(__name__)

# queued < sending < sent < delivered|undelivered|failed < read (docs/twilio.md §3). Our states
# before Twilio has the message rank lowest. Looked up by the text Twilio sends.
RANK: dict[str, int] = {
    MessageStatus.PENDING: 0,
    MessageStatus.DISPATCHING: 0,
    MessageStatus.ACCEPTED: 1,
    MessageStatus.SCHEDULED: 1,
    MessageStatus.QUEUED: 1,
    MessageStatus.SENDING: 2,
    MessageStatus.SENT: 3,
    MessageStatus.DELIVERED: 4,
    MessageStatus.UNDELIVERED: 4,
    MessageStatus.FAILED: 4,
    MessageStatus.READ: 5,
}
OPTED_OUT_CODE = 21610


def lower_statuses(status: str) -> list[str]:
    """The statuses a new status may replace."""
    rank = RANK[status]
    return [s for s, r in RANK.items() if r < rank]


def advance_status(
    session: Session,
    message_id: int,
    status: str,
    *,
    sid: str | None = None,
    error_code: int | None = None,
) -> bool:
    """Move a row's status forward, atomically; True when it moved. Never moves it back."""
    if status not in RANK:
        return False
    values: dict[str, object] = {"status": status}
    if error_code is not None:
        values["error_code"] = error_code
    if sid is not None:
        values["sid"] = sid
    query = (
        update(Message)
        .where(Message.id == message_id, Message.status.in_(lower_statuses(status)))
        .values(**values)
    )
    if sid is not None:
        query = query.where(or_(Message.sid.is_(None), Message.sid == sid))
    moved = rows_matched(session.execute(query)) > 0
    if sid is not None and not moved:
        # A status that is not newer still tells us the SID if we lacked it.
        session.execute(
            update(Message).where(Message.id == message_id, Message.sid.is_(None)).values(sid=sid)
        )
    return moved


def record_callback(
    session: Session,
    *,
    sid: str,
    status: str,
    error_code: int | None,
    message_id: int | None,
) -> str:
    """Apply one status callback; returns what happened (for the log)."""
    message = None
    if message_id is not None:
        message = session.get(Message, message_id)
        if message is not None and message.sid not in (None, sid):
            log.warning("status %s: message %s has another sid, ignored", sid, message_id)
            return "mismatch"
    if message is None:
        message = session.scalar(select(Message).where(Message.sid == sid))
    if message is None or message.direction != Direction.OUT:
        log.info("status %s: unknown message (%s)", sid, status)
        return "unknown"
    if status not in RANK:
        log.info("status %s: unknown status %r for message %s", sid, status, message.id)
        return "unknown-status"
    moved = advance_status(session, message.id, status, sid=sid, error_code=error_code)
    if error_code == OPTED_OUT_CODE and message.contact_id is not None:
        mark_opted_out(session, message.contact_id)
    session.flush()
    log.info("message %s: status %s%s", message.id, status, "" if moved else " (not newer)")
    return "applied" if moved else "stale"


def mark_opted_out(session: Session, *contact_ids: int | None) -> None:
    """Twilio says these numbers opted out (21610): nothing more is sent to them."""
    session.execute(
        update(Contact)
        .where(Contact.id.in_(contact_ids), Contact.is_opted_out.is_(False))
        .values(is_opted_out=True, opted_out_at=utcnow())
    )
