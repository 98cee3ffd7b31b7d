"""Rows written by hand (the step's statements, a campaign's set-based inserts): one builder per
table, so every writer gives every column, and the same ones (a multi-row INSERT needs that)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from engage.states import CallPurpose, CallStatus, Direction, MessageStatus, QueueName


def message_row(
    *,
    direction: Direction,
    channel: str,
    our_address: str | None,
    their_address_encrypted: str | None,
    body: str,
    kind: str,
    created_at: datetime,
    contact_id: int | None = None,
    conversation_id: int | None = None,
    sid: str | None = None,
    media_url: str | None = None,
    is_free_text: bool = False,
    is_urgent: bool = False,
    urgent_topic: str | None = None,
    queue: QueueName = QueueName.REPLIES,
    sequence: int = 0,
    is_simulated: bool = False,
    campaign_id: int | None = None,
    content_sid: str | None = None,
    send_after: datetime | None = None,
) -> dict[str, Any]:
    """A row of `messages`: inbound ones are received, outbound ones wait to be claimed."""
    return {
        "direction": direction,
        "status": MessageStatus.RECEIVED if direction == Direction.IN else MessageStatus.PENDING,
        "channel": channel,
        "our_address": our_address,
        "their_address_encrypted": their_address_encrypted,
        "body": body,
        "kind": kind,
        "created_at": created_at,
        "contact_id": contact_id,
        "conversation_id": conversation_id,
        "sid": sid,
        "media_url": media_url,
        "is_free_text": is_free_text,
        "is_urgent": is_urgent,
        "urgent_topic": urgent_topic,
        "queue": queue,
        "sequence": sequence,
        "is_simulated": is_simulated,
        "campaign_id": campaign_id,
        "content_sid": content_sid,
        "content_variables": None,
        "send_after": send_after,
    }


def conversation_row(
    *,
    contact_id: int,
    survey_id: str,
    version: str,
    language: str,
    channel: str,
    pending: str | None,
    record_key: int,
    started_at: datetime,
    last_activity_at: datetime,
    last_profile: dict[str, Any],
    is_invited: bool = False,
    is_simulated: bool = False,
    status: str = "active",
    misses: list[str] | None = None,
    consent_tries: int = 0,
    ended_at: datetime | None = None,
    last_question_id: str | None = None,
) -> dict[str, Any]:
    """A row of `conversations` (misses already encrypted under the contact's key)."""
    return {
        "contact_id": contact_id,
        "survey_id": survey_id,
        "version": version,
        "language": language,
        "channel": channel,
        "status": status,
        "pending": pending,
        "misses": {"texts": list(misses or [])},
        "consent_tries": consent_tries,
        "is_invited": is_invited,
        "is_simulated": is_simulated,
        "record_key": record_key,
        "started_at": started_at,
        "last_activity_at": last_activity_at,
        "ended_at": ended_at,
        "last_question_id": last_question_id,
        "last_profile": last_profile,
    }


def call_row(
    *,
    purpose: CallPurpose,
    our_address: str | None,
    status: CallStatus,
    created_at: datetime,
    token: str,
    sid: str | None = None,
    contact_id: int | None = None,
    campaign_id: int | None = None,
    conversation_id: int | None = None,
    phone_hash: str | None = None,
    their_address_encrypted: str | None = None,
    call_after: datetime | None = None,
    is_simulated: bool = False,
) -> dict[str, Any]:
    """A row of `calls`: one the worker made (`inbound`), or one Engage places (a campaign's
    keeps no number: it is read from the contact when the call is placed)."""
    return {
        "token": token,
        "sid": sid,
        "purpose": purpose,
        "contact_id": contact_id,
        "campaign_id": campaign_id,
        "conversation_id": conversation_id,
        "our_address": our_address,
        "phone_hash": phone_hash,
        "their_address_encrypted": their_address_encrypted,
        "status": status,
        "sequence": -1,
        "call_after": call_after,
        "is_simulated": is_simulated,
        "created_at": created_at,
    }
