"""Campaign reminders, written by the clock.

A running campaign with `reminders` > 0 reminds each invited contact `remind_after_hours` after
its invitation went out, and again that long after each reminder, at most `reminders` times:
those who have not answered the invitation (`not_started`, the default), or who have not
finished the survey (`not_completed`). Never in the contact's quiet hours, never after an
opt-out, an erasure or a completion, never to one who is answering another survey. A reminder is
one short text in the conversation's language; on WhatsApp it carries the survey's template, which
the claim sends instead when the 24 h window is closed (engage/services/outbox.py).

A reminder reopens an expired invitation, so that the worker's answer is read against it: at
the invitation when they never answered a question, else at the question after their last
answer.

The reminder rows are the bookkeeping: how many a contact got, and when the last was written.
The contact is locked while its reminder is decided and written, as a conversation step locks
it, so two clocks at once (or a clock and the worker's own reply) never remind twice.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, exists, func, or_, select, update
from sqlalchemy.orm import Session, aliased

from engage.channels import channel_named
from engage.db import insert_returning_ids, table_of, utcnow
from engage.models import Answer, Campaign, Contact, Conversation, DoNotContact, Message
from engage.services.campaigns import (
    FAILED,
    INVITATION_KIND,
    REMINDER_KIND,
    TAKEN,
    answered_invitation,
    reminder_text,
)
from engage.services.conversations import Settings, make_engine
from engage.services.quiet_hours import next_allowed
from engage.services.rows import message_row
from engage.states import CampaignState, Direction, QueueName, RemindWhom
from engage.survey.definition import Survey
from engage.survey.engine import CONSENT, INVITATION, ContactState, is_profile_stale

log = logging.getLogger(__name__)

# Contacts decided and written per transaction.
CHUNK = 500


@dataclass(frozen=True)
class Written:
    """Reminder rows written in one transaction, to hand to `bulk` after the commit, and the
    last invitation looked at (None: no more were due): the next chunk starts after it."""

    message_ids: list[int]
    last_invitation_id: int | None = None


@dataclass(frozen=True)
class Zones:
    """The contacts' time zones where it is not quiet hours now; `unknown`: whether it is day
    everywhere a contact of unknown zone may be."""

    names: list[str]
    unknown: bool


def _zones_in_daytime(
    session: Session, now: datetime, quiet_hours: tuple[int, int]
) -> Zones | None:
    """Where a reminder may go now (None: nowhere). A few dozen zones, decided once a round,
    so that the night's contacts are left out in SQL, not read and skipped."""
    zones = session.scalars(select(Contact.timezone).distinct()).all()
    names = [z for z in zones if z is not None and next_allowed(now, z, quiet_hours) <= now]
    unknown = next_allowed(now, None, quiet_hours) <= now
    if not names and not unknown:
        return None
    return Zones(names, unknown)


def eligible(
    campaign: Campaign, *, now: datetime | None, zones: Zones | None = None, after_id: int = 0
) -> Select[*tuple[Any, ...]]:
    """The campaign's invitations whose contact may still be reminded; with `now`, only those
    whose reminder is due (`remind_after_hours` since the invitation went out, or since the
    last reminder); with `zones`, only contacts where it is day. Rows: the invitation, its
    conversation and its contact, in invitation order after `after_id`."""
    inv = aliased(Message, name="invitation")
    reminder = aliased(Message, name="reminder")
    inbound = aliased(Message, name="inbound")
    other = aliased(Conversation, name="other")
    mine = and_(
        reminder.contact_id == inv.contact_id,  # by contact: the contact's messages are indexed
        reminder.campaign_id == campaign.id,
        reminder.kind == REMINDER_KIND,
    )
    written = select(func.count(reminder.id)).where(mine).scalar_subquery()
    wrote = exists().where(
        inbound.contact_id == inv.contact_id,
        inbound.conversation_id == Conversation.id,
        inbound.direction == Direction.IN,
    )
    conditions: list[ColumnElement[bool]] = [
        inv.campaign_id == campaign.id,
        inv.kind == INVITATION_KIND,
        inv.sequence == 0,
        inv.id > after_id,
        # Twilio took it and did not report it lost: a failed invitation gets no reminder.
        inv.status.in_(TAKEN),
        inv.status.not_in(FAILED),
        inv.sent_at.is_not(None),
        Conversation.status.in_(("active", "expired")),
        Contact.is_opted_out.is_(False),
        Contact.erased_at.is_(None),
        ~exists().where(DoNotContact.phone_hash == Contact.phone_hash),
        # Answering another survey now, or done with this one since the invitation.
        ~exists().where(
            other.contact_id == Contact.id, other.id != Conversation.id, other.status == "active"
        ),
        ~exists().where(
            other.contact_id == Contact.id,
            other.survey_id == campaign.survey_id,
            other.status == "completed",
            other.ended_at >= Conversation.started_at,
        ),
        written < campaign.reminders,
    ]
    if campaign.remind == RemindWhom.NOT_STARTED:
        # Not answered, and silent: one who only asked for help or wrote of trouble is not
        # sent an automatic reminder either.
        conditions += [~answered_invitation(), ~wrote]
    if zones is not None:
        in_daytime = Contact.timezone.in_(zones.names)
        conditions.append(
            or_(in_daytime, Contact.timezone.is_(None)) if zones.unknown else in_daytime
        )
    if now is not None:
        hours = timedelta(hours=campaign.remind_after_hours or 0)
        last = select(func.max(reminder.created_at)).where(mine).scalar_subquery()
        conditions.append(func.coalesce(last, inv.sent_at) <= now - hours)
    return (
        select(
            inv.id.label("invitation_id"),
            inv.our_address,
            inv.their_address_encrypted,
            inv.channel,
            Conversation.id.label("conversation_id"),
            Conversation.status,
            Conversation.pending,
            Conversation.language,
            Conversation.last_question_id,
            Contact.id.label("contact_id"),
            Contact.timezone,
            Contact.has_consented,
            Contact.profile,
            Contact.profile_updated_at,
        )
        .select_from(inv)
        .join(Conversation, Conversation.id == inv.conversation_id)
        .join(Contact, Contact.id == inv.contact_id)
        .where(*conditions)
        .order_by(inv.id)
    )


def has_reminders_to_come(session: Session, campaign: Campaign) -> bool:
    """Whether any contact of the campaign may still get a reminder, now or later."""
    if not campaign.reminders:
        return False
    return session.execute(eligible(campaign, now=None).limit(1)).first() is not None


def remindable_campaigns(session: Session) -> list[Campaign]:
    return list(
        session.scalars(
            select(Campaign)
            .where(Campaign.state == CampaignState.RUNNING, Campaign.reminders > 0)
            .order_by(Campaign.id)
        )
    )


def write_reminders(
    session: Session,
    settings: Settings,
    campaign: Campaign,
    *,
    quiet_hours: tuple[int, int],
    now: datetime | None = None,
    limit: int | None = None,
    after_id: int = 0,
) -> Written:
    """Decide and write the due reminders of up to `limit` invitations of one campaign (after
    invitation `after_id`), in this transaction."""
    now = now or utcnow()
    daytime = _zones_in_daytime(session, now, quiet_hours)
    if daytime is None:
        return Written([])
    allowed = session.execute(
        eligible(campaign, now=now, zones=daytime, after_id=after_id).limit(limit or CHUNK)
    ).all()
    if not allowed:
        return Written([])
    # Lock the contacts as a conversation step does, then decide again: what another clock or
    # the worker's reply committed meanwhile is seen, and nobody writes them until we commit.
    contact_ids = [row.contact_id for row in allowed]
    locked = set(
        session.scalars(
            select(Contact.id).where(Contact.id.in_(contact_ids)).with_for_update(skip_locked=True)
        )
    )
    rows = session.execute(
        eligible(campaign, now=now, zones=daytime).where(Contact.id.in_(sorted(locked)))
    ).all()
    engine = make_engine(session, settings)
    survey = engine.surveys.get(campaign.survey_id, campaign.version)
    template = survey.whatsapp_template
    messages = []
    for row in rows:
        pending = row.pending
        if row.status != "active":
            pending = _reopened_at(session, survey, row, now)
            if pending is None:
                continue
        channel = channel_named(row.channel)
        _touch(session, row.conversation_id, row.status, pending, now)
        messages.append(
            message_row(
                direction=Direction.OUT,
                contact_id=row.contact_id,
                conversation_id=row.conversation_id,
                channel=row.channel,
                our_address=row.our_address,
                their_address_encrypted=row.their_address_encrypted,
                body=reminder_text(engine, survey, row.language, channel, pending=pending),
                kind=REMINDER_KIND,
                queue=QueueName.BULK,
                campaign_id=campaign.id,
                content_sid=template.get(row.language) if channel.window is not None else None,
                created_at=now,
            )
        )
    ids = insert_returning_ids(session, table_of(Message), messages)
    session.flush()
    if ids:
        log.info("campaign %s: %d reminder(s) written", campaign.id, len(ids))
    return Written(ids, allowed[-1].invitation_id)


def _touch(
    session: Session, conversation_id: int, status: str, pending: str | None, now: datetime
) -> None:
    """The reminded conversation is open, with its idle time from now."""
    values: dict[str, Any] = {"last_activity_at": now}
    if status != "active":
        values.update(status="active", pending=pending, ended_at=None)
    session.execute(update(Conversation).where(Conversation.id == conversation_id).values(values))


def _reopened_at(session: Session, survey: Survey, row: Any, now: datetime) -> str | None:
    """Where an expired invitation reopens: the invitation itself when no question got an
    answer, else the next question that applies after the last answer (as the engine would
    have asked it); None when nothing is left to ask."""
    if row.last_question_id is None:
        return INVITATION if row.has_consented else CONSENT
    values: dict[str, Any] = {}
    for question_id, value in session.execute(
        select(Answer.question_id, Answer.value)
        .where(Answer.conversation_id == row.conversation_id)
        .order_by(Answer.id)
    ):
        values[question_id] = (value or {}).get("v")
    contact = ContactState(
        has_consented=row.has_consented,
        profile=dict(row.profile or {}),
        profile_updated_at=dict(row.profile_updated_at or {}),
    )
    try:
        start = survey.index_of(row.last_question_id) + 1
    except StopIteration:
        return None
    env = {**contact.profile, **values}
    for question in survey.questions[start:]:
        if question.when is not None and not question.when.evaluate(env):
            continue
        known = contact.profile.get(question.profile) if question.profile else None
        if known is not None and not is_profile_stale(contact, question, now):
            continue
        return question.id
    return None
