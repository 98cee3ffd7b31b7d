"""Inviting matching contacts to a survey, in their language, outside their quiet hours."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import exists, insert, select
from sqlalchemy.orm import Session

from engage.db import utcnow
from engage.models import Campaign, Contact, Conversation, Message
from engage.privacy import Vault
from engage.services.conversations import Settings, make_engine
from engage.services.quiet_hours import next_allowed
from engage.services.surveys import DatabaseCatalog
from engage.survey.engine import ContactState

log = logging.getLogger(__name__)

BATCH = 2000


class CampaignError(ValueError):
    """A campaign that cannot start (unknown survey, bad filter, no sender)."""


@dataclass
class Batch:
    """Outbound rows written in one transaction: those to send now, and how many wait."""

    send_now: list[int]
    scheduled: int


def create_campaign(
    session: Session,
    survey_id: str,
    *,
    where: dict[str, str],
    channel: str,
    start_at: datetime | None,
) -> Campaign:
    """Record a campaign for the survey's current version."""
    survey = next((s for s in DatabaseCatalog(session).active() if s.id == survey_id), None)
    if survey is None:
        raise CampaignError(f"no active survey {survey_id!r}")
    keys = {q.profile for q in survey.questions if q.profile}
    unknown = [k for k in where if k not in keys and k != "language"]
    if unknown:
        raise CampaignError(
            f"unknown attribute(s) {', '.join(unknown)}; this survey's profile keys are "
            f"{', '.join(sorted(keys)) or 'none'} (and language)"
        )
    campaign = Campaign(
        survey_id=survey.id,
        version=survey.version,
        channel=channel,
        filters=dict(where),
        start_at=start_at or utcnow(),
    )
    session.add(campaign)
    session.flush()
    return campaign


def matching_contact_ids(session: Session, campaign: Campaign, *, repeat: bool) -> list[int]:
    """Contacts to invite: not opted out, not mid-survey, not done with it (unless repeat)."""
    active = exists().where(Conversation.contact_id == Contact.id, Conversation.status == "active")
    query = select(Contact.id).where(
        Contact.is_opted_out.is_(False), Contact.is_simulated.is_(False), ~active
    )
    if not repeat:
        query = query.where(
            ~exists().where(
                Conversation.contact_id == Contact.id,
                Conversation.survey_id == campaign.survey_id,
                Conversation.status == "completed",
            )
        )
    for key, value in campaign.filters.items():
        if key == "language":
            query = query.where(Contact.language == value)
        else:
            query = query.where(Contact.profile[key].as_string() == value)
    return list(session.scalars(query.order_by(Contact.id)))


def batches(ids: list[int], size: int = BATCH) -> Iterator[list[int]]:
    for start in range(0, len(ids), size):
        yield ids[start : start + size]


def invite_batch(
    session: Session,
    settings: Settings,
    campaign: Campaign,
    contact_ids: list[int],
    *,
    sender: str,
    quiet_hours: tuple[int, int],
    now: datetime | None = None,
) -> Batch:
    """Open an invitation conversation and write its outbound rows for each contact."""
    now = now or utcnow()
    engine = make_engine(session, settings)
    survey = engine.surveys.get(campaign.survey_id, campaign.version)
    template = survey.whatsapp_template
    vault: Vault = settings.vault
    contacts = session.scalars(
        select(Contact).where(Contact.id.in_(contact_ids)).order_by(Contact.id)
    ).all()
    conversations, invitations = [], []
    for contact in contacts:
        state = ContactState(
            language=contact.language,
            has_consented=contact.has_consented,
            profile=dict(contact.profile or {}),
        )
        outcome = engine.invite(state, survey, now=now)
        conv = outcome.conversation
        assert conv is not None
        if campaign.channel == "whatsapp":
            # One message: outside the 24 h window it goes as the template instead.
            outcome.replies = ["\n\n".join(outcome.replies)]
        conversations.append(
            {
                "contact_id": contact.id,
                "survey_id": survey.id,
                "version": survey.version,
                "language": conv.language,
                "channel": campaign.channel,
                "status": "active",
                "pending": conv.pending,
                "misses": {"texts": []},
                "consent_tries": 0,
                "is_invited": True,
                "last_profile": dict(contact.profile or {}),
                "is_simulated": False,
                "started_at": now,
                "last_activity_at": now,
            }
        )
        invitations.append((contact, conv.language, outcome.replies))
    conversation_ids = (
        session.scalars(insert(Conversation).returning(Conversation.id), conversations).all()
        if conversations
        else []
    )
    rows = []
    start_at = max(campaign.start_at, now)
    for conversation_id, (contact, language, replies) in zip(
        conversation_ids, invitations, strict=True
    ):
        if campaign.channel == "whatsapp":
            address = vault.encrypt("whatsapp:" + vault.decrypt(contact.phone_encrypted))
        else:
            address = contact.phone_encrypted  # the same plaintext: the E.164 number
        send_after = next_allowed(start_at, contact.timezone, quiet_hours)
        for sequence, body in enumerate(replies):
            rows.append(
                {
                    "direction": "out",
                    "contact_id": contact.id,
                    "conversation_id": conversation_id,
                    "channel": campaign.channel,
                    "our_address": sender,
                    "their_address_encrypted": address,
                    "body": body,
                    "kind": "invitation",
                    "is_free_text": False,
                    "status": "pending",
                    "sequence": sequence,
                    "is_simulated": False,
                    "queue": "bulk",
                    "campaign_id": campaign.id,
                    "content_sid": template.get(language) if sequence == 0 else None,
                    "content_variables": None,
                    "send_after": None if send_after <= now else send_after,
                    "created_at": now,
                }
            )
    message_ids = (
        session.execute(insert(Message).returning(Message.id, Message.send_after), rows).all()
        if rows
        else []
    )
    campaign.invited += len(contacts)
    session.flush()
    return Batch(
        send_now=[row.id for row in message_ids if row.send_after is None],
        scheduled=sum(1 for row in message_ids if row.send_after is not None),
    )
