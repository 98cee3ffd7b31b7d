from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from engage.db import Base, utcnow
from engage.states import CallPurpose, CallStatus


class MediaFile(Base):
    """A recorded prompt of a published survey version, by its content (`<sha256>.<ext>`).

    Written when a version is published, never changed: `GET /media/<name>` serves it to
    Twilio (and WhatsApp) from any web process.
    """

    __tablename__ = "media_files"

    name: Mapped[str] = mapped_column(String(80), primary_key=True)
    mimetype: Mapped[str] = mapped_column(String(40))
    content: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Call(Base):
    """One phone call, in or out: who it is with, where it stands, and what it waits for.

    `token` names the call in the URLs Twilio is given (`/twilio/voice/step?c=…`): a call we
    place has one before Twilio gives it a CallSid.
    """

    __tablename__ = "calls"
    # A campaign's calls: the next due one to place, and its progress.
    __table_args__ = (Index("ix_calls_campaign_status", "campaign_id", "status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    token: Mapped[str] = mapped_column(String(40), unique=True)
    sid: Mapped[str | None] = mapped_column(String(64), unique=True)
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id"), index=True)
    # inbound: the worker called; callback: we call back a missed call; campaign: we call.
    purpose: Mapped[str] = mapped_column(String(20), default=CallPurpose.INBOUND)
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaigns.id"))
    # A campaign's call: the invitation conversation it was written with.
    conversation_id: Mapped[int | None] = mapped_column(ForeignKey("conversations.id"), index=True)
    our_address: Mapped[str | None] = mapped_column(String(100))
    # A call we place: the number's keyed hash (one callback at a time per number) and the
    # number itself, encrypted, forgotten once the call has ended.
    phone_hash: Mapped[str | None] = mapped_column(String(64), index=True)
    their_address_encrypted: Mapped[str | None] = mapped_column(String(300))
    # Twilio's CallStatus, the furthest one heard (callbacks arrive in any order).
    status: Mapped[str] = mapped_column(String(20), default=CallStatus.QUEUED)  # CallStatus
    sequence: Mapped[int] = mapped_column(default=-1)
    answered_by: Mapped[str | None] = mapped_column(String(30))
    # What the next keys answer beyond the survey: None (the survey), "survey_menu", "help"
    # (0 connects to the help line), "goodbye" (9 opts out), "opted_out" (1 opts back in).
    awaiting: Mapped[str | None] = mapped_column(String(20))
    # The language picked in the call's menu, before the caller has a contact of their own.
    language: Mapped[str | None] = mapped_column(String(8))
    # Not before this time (quiet hours, the call rate); for calls we place.
    call_after: Mapped[datetime | None]
    error_code: Mapped[int | None]
    duration: Mapped[int | None]
    is_simulated: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    ended_at: Mapped[datetime | None]


class CallStep(Base):
    """What one step of a call answered (its TwiML): a repeated request gets it again."""

    __tablename__ = "call_steps"
    __table_args__ = (UniqueConstraint("call_id", "step"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("calls.id"))
    step: Mapped[int]
    twiml: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class VoiceNote(Base):
    """A voice note a caller left for a text question: the recording stays at Twilio (staff
    listen there); erasure deletes it."""

    __tablename__ = "voice_notes"

    sid: Mapped[str] = mapped_column(String(64), primary_key=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("calls.id"))
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id"), index=True)
    message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id"))
    question_id: Mapped[str | None] = mapped_column(String(100))
    seconds: Mapped[int | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
