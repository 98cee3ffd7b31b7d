"""Inviting matching contacts to a survey, in their language, outside their quiet hours."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from engage.channels import Channel, channel_named
from engage.db import id_in, insert_returning_ids, table_of, utcnow
from engage.models import Campaign, Contact, Conversation, DoNotContact, Message
from engage.privacy import Vault
from engage.services.conversations import Settings, make_engine
from engage.services.quiet_hours import next_allowed
from engage.services.rows import conversation_row, message_row
from engage.services.surveys import DatabaseCatalog
from engage.states import Direction, QueueName
from engage.survey.definition import Survey
from engage.survey.engine import ContactState, Engine

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
    # Never an erased contact, nor a number once erased (the do-not-contact list).
    erased_number = exists().where(DoNotContact.phone_hash == Contact.phone_hash)
    query = select(Contact.id).where(
        Contact.is_opted_out.is_(False),
        Contact.is_simulated.is_(False),
        Contact.erased_at.is_(None),
        ~erased_number,
        ~active,
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
    contacts = session.execute(
        select(
            Contact.id,
            Contact.language,
            Contact.has_consented,
            Contact.profile,
            Contact.timezone,
            Contact.phone_encrypted,
            Contact.key_encrypted,
            Contact.record_key,
        )
        .where(id_in(session, Contact.id, contact_ids))
        .order_by(Contact.id)
    ).all()
    channel, campaign_id = campaign.channel, campaign.id  # read once: ORM attributes are slow
    described = channel_named(channel)
    invitation = _invitations(engine, survey, now, channel=described)
    start_at = max(campaign.start_at, now)
    # The first time outside quiet hours, worked out once per time zone.
    send_after = cache(lambda zone: next_allowed(start_at, zone, quiet_hours))
    conversations, invitations = [], []
    for contact in contacts:
        language, pending, replies = invitation(
            contact.language, contact.has_consented, contact.profile
        )
        conversations.append(
            conversation_row(
                contact_id=contact.id,
                survey_id=survey.id,
                version=survey.version,
                language=language,
                channel=channel,
                pending=pending,
                is_invited=True,
                last_profile=dict(contact.profile or {}),
                record_key=contact.record_key,
                started_at=now,
                last_activity_at=now,
            )
        )
        invitations.append((contact, language, replies))
    conversation_ids = insert_returning_ids(session, table_of(Conversation), conversations)
    rows = []
    for conversation_id, (contact, language, replies) in zip(
        conversation_ids, invitations, strict=True
    ):
        if described.prefix:
            cipher = vault.contact_cipher(contact.key_encrypted)
            address = cipher.encrypt(described.address(cipher.decrypt(contact.phone_encrypted)))
        else:
            address = contact.phone_encrypted  # the same plaintext: the E.164 number
        due = send_after(contact.timezone)
        for sequence, body in enumerate(replies):
            rows.append(
                message_row(
                    direction=Direction.OUT,
                    contact_id=contact.id,
                    conversation_id=conversation_id,
                    channel=channel,
                    our_address=sender,
                    their_address_encrypted=address,
                    body=body,
                    kind="invitation",
                    sequence=sequence,
                    queue=QueueName.BULK,
                    campaign_id=campaign_id,
                    content_sid=template.get(language) if sequence == 0 else None,
                    send_after=None if due <= now else due,
                    created_at=now,
                )
            )
    message_ids = insert_returning_ids(session, table_of(Message), rows)
    # In SQL, not read-modify-write: batches of one campaign may commit side by side.
    campaign.invited = Campaign.invited + len(contacts)
    session.flush()
    due_now = [i for i, row in zip(message_ids, rows, strict=True) if row["send_after"] is None]
    return Batch(send_now=due_now, scheduled=len(rows) - len(due_now))


def _invitations(
    engine: Engine, survey: Survey, now: datetime, *, channel: Channel
) -> Callable[[str | None, bool, dict[str, Any] | None], tuple[str, str | None, list[str]]]:
    """The invitation for a contact's state: language, pending step and texts, worked out once.

    `Engine.invite` depends only on the contact state it is given besides the survey and the time,
    which are the same for the whole batch; a campaign's contacts fall into a few dozen states
    (language, consent, profile), so each is rendered once per batch, not once per contact.
    """
    known: dict[tuple[str | None, bool, str], tuple[str, str | None, list[str]]] = {}

    def invitation(
        language: str | None, has_consented: bool, profile: dict[str, Any] | None
    ) -> tuple[str, str | None, list[str]]:
        # repr, not JSON, for speed: a profile written in another key order only misses the cache.
        key = (language, has_consented, repr(profile))
        if key not in known:
            state = ContactState(
                language=language, has_consented=has_consented, profile=dict(profile or {})
            )
            outcome = engine.invite(state, survey, now=now, channel=channel.name)
            conv = outcome.conversation
            assert conv is not None
            replies = list(outcome.replies)
            if channel.joins_parts:
                # One message: outside the window it goes as the template instead.
                replies = ["\n\n".join(replies)]
            known[key] = (conv.language, conv.pending, replies)
        return known[key]

    return invitation
