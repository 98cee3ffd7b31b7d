"""The outbox: outbound rows become at most one Twilio message each.

A send happens in three steps, each its own transaction, owned by the job:
`prepare_send` claims a pending row (status `dispatching`, with the time of the attempt), the
sender calls Twilio outside any transaction, then `record_sent` / `record_failure` write what
Twilio answered. A row found still `dispatching` means an earlier answer was lost (a timeout, a
killed worker): `reconcile` looks it up at Twilio instead of sending it again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from engage.db import utcnow
from engage.messaging import OutboundMessage, SendResult
from engage.models import Contact, Message
from engage.privacy import Vault
from engage.services.delivery import OPTED_OUT_CODE, advance_status, mark_opted_out

log = logging.getLogger(__name__)

WHATSAPP_WINDOW = timedelta(hours=24)
OUTSIDE_WINDOW_CODE = 63016


@dataclass(frozen=True)
class SendPlan:
    action: str  # send | reconcile | done
    message: OutboundMessage | None = None
    attempted_at: datetime | None = None


def sender_of(session: Session, message_id: int) -> str | None:
    """The address a row will be sent from (for the rate limit), without locking it."""
    return session.scalar(select(Message.our_address).where(Message.id == message_id))


def prepare_send(
    session: Session,
    vault: Vault,
    message_id: int,
    *,
    status_callback: str | None = None,
    now: datetime | None = None,
) -> SendPlan:
    """Claim a pending row for sending, or say it needs reconciling, or that nothing is to do."""
    now = now or utcnow()
    message = session.scalar(select(Message).where(Message.id == message_id).with_for_update())
    if message is None or message.direction != "out":
        return SendPlan("done")
    if message.status == "dispatching":
        outbound = _outbound(vault, message, None, content_sid=message.content_sid)
        return SendPlan("reconcile", outbound, message.attempted_at)
    if message.status != "pending":
        return SendPlan("done")
    if message.send_after is not None and message.send_after > now:
        return SendPlan("done")  # scheduled for later; the scheduler or sweeper brings it back
    if _earlier_in_step_unsent(session, message):
        return SendPlan("done")  # the earlier row's job sends this one after it, in order
    contact = session.get(Contact, message.contact_id) if message.contact_id else None
    if contact is not None and contact.is_opted_out and message.kind != "opt_out":
        message.status = "cancelled"
        log.info("message %s: cancelled, %s opted out", message.id, contact.pseudonym)
        return SendPlan("done")
    content_sid = None
    if message.channel == "whatsapp" and not _inside_window(contact, now):
        if not message.content_sid:
            # Twilio would refuse it (63016): fail it clearly here, for staff to see.
            message.status = "failed"
            message.error_code = OUTSIDE_WINDOW_CODE
            log.warning("message %s: outside the WhatsApp 24 h window, no template", message.id)
            return SendPlan("done")
        content_sid = message.content_sid
    message.status = "dispatching"
    message.attempted_at = now
    session.flush()
    outbound = replace(
        _outbound(vault, message, contact, content_sid=content_sid), status_callback=status_callback
    )
    return SendPlan("send", outbound, now)


def _step_rows(message: Message):
    """Rows written by the same step as this one (same contact, same moment), in order."""
    return select(Message).where(
        Message.direction == "out",
        Message.contact_id == message.contact_id,
        Message.created_at == message.created_at,
        Message.conversation_id == message.conversation_id,
    )


def _earlier_in_step_unsent(session: Session, message: Message) -> bool:
    if message.sequence == 0:
        return False
    earlier = session.scalar(_step_rows(message).where(Message.sequence == message.sequence - 1))
    return earlier is not None and earlier.status in ("pending", "dispatching")


def next_in_step(session: Session, message_id: int) -> int | None:
    """The row to send after this one, when a step's replies did not fit one message."""
    message = session.get(Message, message_id)
    if message is None:
        return None
    following = session.scalar(
        _step_rows(message).where(
            Message.sequence == message.sequence + 1, Message.status == "pending"
        )
    )
    return following.id if following else None


def _inside_window(contact: Contact | None, now: datetime) -> bool:
    opened = contact.last_whatsapp_inbound_at if contact else None
    return opened is not None and now - opened < WHATSAPP_WINDOW


def _outbound(
    vault: Vault, message: Message, contact: Contact | None, *, content_sid: str | None = None
) -> OutboundMessage:
    return OutboundMessage(
        message_id=message.id,
        contact=contact.pseudonym if contact else f"contact-{message.contact_id}",
        to=vault.decrypt(message.their_address_encrypted or ""),
        from_=message.our_address,
        body=message.body,
        content_sid=content_sid,
        content_variables=message.content_variables if content_sid else None,
    )


def record_sent(session: Session, message_id: int, result: SendResult) -> None:
    """Twilio accepted the message: keep its SID; the status only moves forward."""
    session.execute(update(Message).where(Message.id == message_id).values(sent_at=utcnow()))
    advance_status(session, message_id, result.status or "queued", sid=result.sid)
    session.flush()
    log.info("message %s: sent sid=%s", message_id, result.sid)


def record_failure(session: Session, message_id: int, code: int | None, *, permanent: bool) -> None:
    """A permanent error fails the row (21610 also opts the contact out); else it waits again."""
    message = session.get(Message, message_id)
    if message is None:
        return
    if not permanent:
        message.status = "pending"
        message.attempted_at = None
        log.info("message %s: transient error %s, will retry", message_id, code)
    else:
        message.status = "failed"
        message.error_code = code
        log.warning("message %s: failed, Twilio error %s", message_id, code)
        if code == OPTED_OUT_CODE and message.contact_id is not None:
            mark_opted_out(session, message.contact_id)
    session.flush()


def record_unconfirmed(session: Session, message_id: int) -> None:
    """An earlier attempt's answer was lost and Twilio shows no such message: staff decide."""
    session.execute(
        update(Message)
        .where(Message.id == message_id, Message.status == "dispatching")
        .values(status="unconfirmed")
    )
    session.flush()
    log.warning(
        "message %s: outcome unknown and not found at Twilio; flagged, not resent", message_id
    )


def stale_pending_ids(
    session: Session, *, older_than: timedelta, limit: int = 1000, after_id: int = 0
) -> list[tuple[int, str]]:
    """(id, queue) of outbound rows still pending long after they were written, or due now."""
    now = utcnow()
    rows = session.execute(
        select(Message.id, Message.send_after, Message.queue)
        .where(
            Message.direction == "out",
            Message.status == "pending",
            Message.created_at < now - older_than,
            or_(Message.send_after.is_(None), Message.send_after <= now),
            Message.id > after_id,
        )
        .order_by(Message.id)
        .limit(limit)
    ).all()
    return [(row.id, row.queue) for row in rows]


def stale_dispatching_ids(
    session: Session, *, older_than: timedelta, limit: int = 1000
) -> list[int]:
    """Rows whose send began long ago and never finished (a killed worker): to reconcile."""
    return list(
        session.scalars(
            select(Message.id)
            .where(
                Message.direction == "out",
                Message.status == "dispatching",
                Message.attempted_at < utcnow() - older_than,
            )
            .order_by(Message.id)
            .limit(limit)
        )
    )
