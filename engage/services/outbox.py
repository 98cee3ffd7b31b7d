"""Delivering outbound rows: at most once each, never to a contact who opted out."""

from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.orm import Session

from engage.db import utcnow
from engage.messaging import MessageSender, OutboundMessage
from engage.models import Contact, Message
from engage.privacy import Vault

log = logging.getLogger(__name__)


def deliver(session: Session, vault: Vault, sender: MessageSender, message_id: int) -> str:
    """Send one pending outbound row; returns what happened (sent, skipped, cancelled).

    After an opt-out nothing is sent but the one confirmation of that opt-out.
    """
    message = session.scalar(select(Message).where(Message.id == message_id).with_for_update())
    if message is None or message.direction != "out" or message.status != "pending":
        return "skipped"
    contact = session.get(Contact, message.contact_id) if message.contact_id else None
    if contact is not None and contact.is_opted_out and message.kind != "opt_out":
        message.status = "cancelled"
        session.flush()
        log.info("message %s: cancelled, %s opted out", message.id, contact.pseudonym)
        return "cancelled"
    result = sender.send(
        OutboundMessage(
            message_id=message.id,
            contact=contact.pseudonym if contact else "unknown",
            to=vault.decrypt(message.their_address_encrypted or ""),
            from_=message.our_address,
            body=message.body,
        )
    )
    message.sid = result.sid
    message.status = result.status
    message.sent_at = utcnow()
    session.flush()
    log.info("message %s: sent sid=%s", message.id, result.sid)
    return "sent"
