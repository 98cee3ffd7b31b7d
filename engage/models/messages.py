from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, ForeignKey, Index, String, Text, and_, false, literal, or_
from sqlalchemy.orm import Mapped, mapped_column

from engage.db import Base, table_of, utcnow
from engage.states import Direction, MessageStatus, QueueName


class Message(Base):
    """Every inbound and outbound message. Outbound rows are the outbox: written before sending."""

    __tablename__ = "messages"
    __table_args__ = (
        Index("ix_messages_status_direction", "direction", "status"),
        # The clock's look-up of urgent messages whose alert has not gone out yet.
        Index("ix_messages_urgent_alert", "is_urgent", "alert_sent_at"),
        # A contact's messages in time order; the contacts list's filters on last activity
        # and channel are answered from this index alone, a probe per contact.
        Index("ix_messages_contact_time", "contact_id", "created_at", "channel"),
        # A campaign's rows by kind (invitation, reminder) and status: its progress counts,
        # its unsent rows (pause, resume, cancel) and its reminders are read from this index.
        Index("ix_messages_campaign_progress", "campaign_id", "kind", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    direction: Mapped[str] = mapped_column(String(3))  # states.Direction
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id"))
    conversation_id: Mapped[int | None] = mapped_column(ForeignKey("conversations.id"))
    channel: Mapped[str] = mapped_column(String(10), default="sms")
    # Twilio's MessageSid: unique, so a repeated webhook is claimed only once.
    sid: Mapped[str | None] = mapped_column(String(64), unique=True)
    # Our own number (inbound To / outbound From): not personal data.
    our_address: Mapped[str | None] = mapped_column(String(100))
    # The worker's address exactly as Twilio wrote it, encrypted (replies go back to it).
    their_address_encrypted: Mapped[str | None] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text, default="")
    media_url: Mapped[str | None] = mapped_column(Text)
    kind: Mapped[str | None] = mapped_column(String(20))
    is_free_text: Mapped[bool] = mapped_column(default=False)
    # A safety flag (docs/conversation.md §8): the topic, never the words.
    is_urgent: Mapped[bool] = mapped_column(default=False, server_default=false())
    urgent_topic: Mapped[str | None] = mapped_column(String(30))
    # When ENGAGE_ALERT_WEBHOOK took the alert for this urgent message; None: the clock retries.
    alert_sent_at: Mapped[datetime | None]
    status: Mapped[str] = mapped_column(String(20), default=MessageStatus.RECEIVED)
    error_code: Mapped[int | None]
    queue: Mapped[str] = mapped_column(String(10), default=QueueName.REPLIES)
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaigns.id"))
    # A WhatsApp Content template, for invitations outside the 24-hour window.
    content_sid: Mapped[str | None] = mapped_column(String(40))
    content_variables: Mapped[dict[str, Any] | None]
    # Not before this time (quiet hours, --at); None means at once.
    send_after: Mapped[datetime | None]
    # When a send to Twilio began: a row left 'dispatching' is looked up, never blindly resent.
    attempted_at: Mapped[datetime | None]
    sequence: Mapped[int] = mapped_column(default=0)
    is_simulated: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None]
    # The staff member who wrote this reply in the inbox; None for Engage's own texts.
    sent_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    # When staff marked the thread handled with this message in it (services/inbox.py): a
    # message that needs a person and has none keeps its contact's thread open.
    handled_at: Mapped[datetime | None]


def is_waiting_for_staff(m: Any) -> ColumnElement[bool]:
    """A message that needs a person and nobody has handled yet: an urgent, free-text or media
    message from a worker, or a send whose outcome is unknown (`unconfirmed`).

    `m` is the messages table's columns (`Message`, or a Core table or alias). The partial
    index below is built from this very expression, and the inbox's queries use it as it is:
    SQLite uses a partial index only for a query that repeats its WHERE terms, and both
    databases only when the constants are written into the statement (`literal_execute`).
    Text answers need a person too; they are found through their answer rows (services/inbox.py).
    """

    def constant(value: str) -> ColumnElement[str]:
        return literal(value, String(), literal_execute=True)

    return and_(
        m.handled_at.is_(None),
        or_(
            and_(
                m.direction == constant(Direction.IN.value),
                or_(m.is_urgent, m.is_free_text, m.media_url.is_not(None)),
            ),
            m.status == constant(MessageStatus.UNCONFIRMED.value),
        ),
    )


# The inbox reads only what waits for staff: a small index, whatever the table's size.
_waiting = is_waiting_for_staff(table_of(Message).c)
Index(
    "ix_messages_waiting",
    Message.contact_id,
    postgresql_where=_waiting,
    sqlite_where=_waiting,
)
