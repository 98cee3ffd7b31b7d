"""Campaigns: inviting matching contacts to a survey, in their language, outside their quiet
hours; what a campaign would reach before it starts; pausing, resuming and cancelling it; and
its progress.

A campaign's bookkeeping is its message rows (`messages.campaign_id`): per contact one
`invitation` row (the first of its step, sequence 0) that points at the conversation it opened,
and one `reminder` row per reminder (engage/services/reminders.py). Its progress is counted from
those rows, their conversations and their contacts. A voice campaign has one `calls` row per
contact instead, placed by its own job (engage/services/campaign_calls.py), and no reminders.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    Select,
    and_,
    case,
    delete,
    exists,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.orm import Session, aliased

from engage.channels import CHANNELS, VOICE, Channel, channel_named
from engage.db import id_in, insert_returning_ids, rows_matched, table_of, utcnow
from engage.models import AuditEntry, Call, Campaign, Contact, Conversation, DoNotContact, Message
from engage.privacy import Vault
from engage.services import campaign_calls
from engage.services.contact_filters import CHANNEL, LANGUAGE, ContactFilter, filter_conditions
from engage.services.conversations import Settings, make_engine
from engage.services.maintenance import idle_from
from engage.services.quiet_hours import next_allowed
from engage.services.rows import call_row, conversation_row, message_row
from engage.services.survey_report import message_costs
from engage.services.surveys import DatabaseCatalog
from engage.services.voice import new_token
from engage.states import (
    UNSENT,
    CallPurpose,
    CallStatus,
    CampaignState,
    Direction,
    MessageStatus,
    QueueName,
    RemindWhom,
)
from engage.survey.definition import Survey
from engage.survey.engine import (
    CONSENT,
    INVITATION,
    ContactState,
    Engine,
    render_question,
    spell_for_channel,
)
from engage.survey.segments import count_segments

log = logging.getLogger(__name__)

BATCH = 2000
# At most this many reminders per campaign: more would be pestering.
MAX_REMINDERS = 5
INVITATION_KIND = "invitation"
REMINDER_KIND = "reminder"

# Statuses of a row Twilio took (whatever became of it after), that it delivered, and of a row
# that never reached the worker.
TAKEN = (
    MessageStatus.ACCEPTED,
    MessageStatus.SCHEDULED,
    MessageStatus.QUEUED,
    MessageStatus.SENDING,
    MessageStatus.SENT,
    MessageStatus.DELIVERED,
    MessageStatus.UNDELIVERED,
    MessageStatus.READ,
)
DELIVERED = (MessageStatus.DELIVERED, MessageStatus.READ)
FAILED = (MessageStatus.FAILED, MessageStatus.UNDELIVERED, MessageStatus.UNCONFIRMED)
# How a conversation can end because the worker wrote: they answered it to the end, said no,
# started another survey, or opted out.
ENDED_BY_REPLY = ("completed", "declined", "abandoned", "opted_out")
# Campaign states in which it may still send.
LIVE = (CampaignState.SCHEDULED, CampaignState.RUNNING)

# Why a contact who matches the filter is left out (docs: "Campaign reminders", the preview).
OPTED_OUT, MID_SURVEY, DONE, REACHED = "opted_out", "mid_survey", "done", "reached"


class CampaignError(ValueError):
    """A campaign that cannot start (unknown survey, bad filter, no sender) or change state."""


@dataclass
class Batch:
    """Outbound rows (or a voice campaign's calls) written in one transaction: the rows to send
    now, how many wait, and how many calls are due now."""

    send_now: list[int]
    scheduled: int
    calls_now: int = 0


@dataclass(frozen=True)
class Reminders:
    """A campaign's reminder settings: none when `count` is 0."""

    count: int = 0
    after_hours: int | None = None
    whom: str = RemindWhom.NOT_STARTED


NO_REMINDERS = Reminders()


def active_survey(session: Session, survey_id: str) -> Survey:
    """The current version of a published survey (CampaignError when there is none)."""
    survey = next((s for s in DatabaseCatalog(session).active() if s.id == survey_id), None)
    if survey is None:
        raise CampaignError(f"no active survey {survey_id!r}")
    return survey


def profile_keys(session: Session) -> list[str]:
    """The profile keys a campaign may filter on: those the published surveys save."""
    return sorted(
        {q.profile for s in DatabaseCatalog(session).active() for q in s.questions if q.profile}
    )


def check_filter(session: Session, chosen: ContactFilter) -> None:
    """Refuse a filter on an attribute no published survey saves (a typo would reach nobody)."""
    keys = set(profile_keys(session))
    unknown = sorted(k for k in chosen.profile if k not in keys)
    if unknown:
        raise CampaignError(
            f"unknown attribute(s) {', '.join(unknown)}; the published surveys' profile keys "
            f"are {', '.join(sorted(keys)) or 'none'} (and {LANGUAGE}, {CHANNEL})"
        )
    if chosen.channel and chosen.channel not in CHANNELS:
        raise CampaignError(f"unknown channel {chosen.channel!r}")


def check_channel(survey: Survey, channel: str, *, reminders: int = 0) -> None:
    """Refuse a channel the survey cannot go out on: a voice campaign needs a survey offered by
    phone, and has no reminders (a reminder is a text)."""
    if channel == VOICE.name:
        if not survey.voice:
            raise CampaignError(
                f"survey {survey.id!r} is not offered by phone (its file has no `voice:`): "
                "it cannot be a voice campaign"
            )
        if reminders:
            raise CampaignError("reminders are not offered for voice campaigns")
    elif channel not in CHANNELS:
        raise CampaignError(f"unknown channel {channel!r}")


def check_reminders(reminders: Reminders) -> None:
    if not 0 <= reminders.count <= MAX_REMINDERS:
        raise CampaignError(f"reminders must be from 0 to {MAX_REMINDERS}")
    if reminders.count and (reminders.after_hours is None or reminders.after_hours < 1):
        raise CampaignError("reminders need --remind-after: a whole number of hours, at least 1")
    if reminders.whom not in tuple(RemindWhom):
        raise CampaignError(f"remind must be one of {', '.join(RemindWhom)}")


def as_filter(where: dict[str, str] | ContactFilter) -> ContactFilter:
    return where if isinstance(where, ContactFilter) else ContactFilter.from_stored(where)


def create_campaign(
    session: Session,
    survey_id: str,
    *,
    where: dict[str, str] | ContactFilter,
    channel: str,
    start_at: datetime | None,
    reminders: Reminders = NO_REMINDERS,
    created_by: int | None = None,
    now: datetime | None = None,
) -> Campaign:
    """Record a campaign for the survey's current version (its invitations are written next)."""
    now = now or utcnow()
    survey = active_survey(session, survey_id)
    chosen = as_filter(where)
    check_filter(session, chosen)
    check_reminders(reminders)
    check_channel(survey, channel, reminders=reminders.count)
    start = start_at or now
    campaign = Campaign(
        survey_id=survey.id,
        version=survey.version,
        channel=channel,
        filters=chosen.stored(),
        start_at=start,
        state=CampaignState.SCHEDULED if start > now else CampaignState.RUNNING,
        reminders=reminders.count,
        remind_after_hours=reminders.after_hours if reminders.count else None,
        remind=reminders.whom,
        created_by=created_by,
    )
    session.add(campaign)
    session.flush()
    return campaign


# -- who is invited ------------------------------------------------------------------------------


def _exclusions(survey_id: str, *, repeat: bool) -> list[tuple[ColumnElement[bool], str]]:
    """Why a matching contact is left out, in the order the reasons are told."""
    # Never a number once erased (the do-not-contact list): an opt-out survives erasure.
    erased_number = exists().where(DoNotContact.phone_hash == Contact.phone_hash)
    active = exists().where(Conversation.contact_id == Contact.id, Conversation.status == "active")
    reasons: list[tuple[ColumnElement[bool], str]] = [
        (or_(Contact.is_opted_out.is_(True), erased_number), OPTED_OUT),
        (active, MID_SURVEY),
    ]
    if not repeat:
        completed = exists().where(
            Conversation.contact_id == Contact.id,
            Conversation.survey_id == survey_id,
            Conversation.status == "completed",
        )
        reasons.append((completed, DONE))
    return reasons


def matching_contact_ids(session: Session, campaign: Campaign, *, repeat: bool) -> list[int]:
    """Contacts to invite: the filter's, not opted out, not mid-survey, not done with it (unless
    repeat), and not invited by this campaign already (a fan-out that runs again)."""
    return list(session.scalars(_matching(campaign, repeat=repeat).order_by(Contact.id)))


def count_matching(session: Session, campaign: Campaign, *, repeat: bool) -> int:
    """How many contacts `matching_contact_ids` would give, counted in the database."""
    return int(
        session.scalar(
            select(func.count()).select_from(_matching(campaign, repeat=repeat).subquery())
        )
        or 0
    )


def _matching(campaign: Campaign, *, repeat: bool) -> Select[int]:
    query = select(Contact.id).where(
        *filter_conditions(ContactFilter.from_stored(campaign.filters)),
        *(~condition for condition, _ in _exclusions(campaign.survey_id, repeat=repeat)),
    )
    if campaign.invited and campaign.channel == VOICE.name:
        query = query.where(
            ~exists().where(Call.contact_id == Contact.id, Call.campaign_id == campaign.id)
        )
    elif campaign.invited:
        query = query.where(
            ~exists().where(
                Message.contact_id == Contact.id,
                Message.campaign_id == campaign.id,
                Message.kind == INVITATION_KIND,
            )
        )
    return query


def batches(ids: list[int], size: int = BATCH) -> Iterator[list[int]]:
    for start in range(0, len(ids), size):
        yield ids[start : start + size]


# -- the preview ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class LanguageEstimate:
    """What the campaign costs for the contacts it reaches in one language (SMS segments; on
    WhatsApp, messages)."""

    language: str
    contacts: int
    # One invitation: the consent for those who have not consented, else "reply 1 to start".
    consent_segments: int
    invitation_segments: int
    invitations_total: int
    # Every message of the survey (intro, each question, closing), as an upper bound.
    survey_segments: int
    reminder_segments: int


@dataclass(frozen=True)
class Preview:
    """Before a campaign starts: who it reaches, who is left out and why, and what it costs."""

    survey: Survey
    channel: str
    reached: int
    left_out: dict[str, int]
    estimates: list[LanguageEstimate]
    reminders: int
    # On SMS: each message of the survey (consent, intro, question ids, closing) and its
    # segments per language reached.
    message_segments: list[tuple[str, dict[str, int]]]
    # By phone: the calls, one per contact reached, by the language they are called in.
    calls: list[tuple[str, int]] = field(default_factory=list)

    @property
    def counts_segments(self) -> bool:
        return channel_named(self.channel).counts_segments

    @property
    def is_spoken(self) -> bool:
        return channel_named(self.channel).is_spoken

    @property
    def invitations_total(self) -> int:
        return sum(e.invitations_total for e in self.estimates)

    @property
    def survey_total(self) -> int:
        """Invitations, and every message of the survey to everyone reached: an upper bound."""
        return self.invitations_total + sum(e.contacts * e.survey_segments for e in self.estimates)

    @property
    def reminders_total(self) -> int:
        return sum(e.contacts * e.reminder_segments * self.reminders for e in self.estimates)


def preview_campaign(
    session: Session,
    settings: Settings,
    survey_id: str,
    *,
    where: ContactFilter,
    channel: str,
    reminders: int = 0,
    now: datetime | None = None,
) -> Preview:
    """What starting this campaign now would do: counted in the database, texts rendered as the
    invitations and reminders would be."""
    now = now or utcnow()
    survey = active_survey(session, survey_id)
    check_filter(session, where)
    check_channel(survey, channel, reminders=reminders)
    described = channel_named(channel)
    exclusions = _exclusions(survey.id, repeat=survey.repeat)
    reason = case(*exclusions, else_=REACHED).label("reason")
    counted = session.execute(
        select(reason, func.count()).where(*filter_conditions(where)).group_by(reason)
    )
    counts: Counter[str] = Counter({str(name): int(n) for name, n in counted})
    groups = session.execute(
        select(Contact.language, Contact.has_consented, func.count())
        .where(*filter_conditions(where), *(~condition for condition, _ in exclusions))
        .group_by(Contact.language, Contact.has_consented)
    ).all()
    reached = counts.get(REACHED, 0)
    left_out = {name: counts.get(name, 0) for name in (OPTED_OUT, MID_SURVEY, DONE)}
    if described.is_spoken:
        # Calls are billed by the minute, not by segment: how many, in which languages.
        calls: Counter[str] = Counter()
        for language, _has_consented, n in groups:
            calls[campaign_calls.call_language(survey, language)] += int(n)
        return Preview(
            survey=survey,
            channel=channel,
            reached=reached,
            left_out=left_out,
            estimates=[],
            reminders=0,
            message_segments=[],
            calls=[(language, calls[language]) for language in survey.voice if calls[language]],
        )
    engine = make_engine(session, settings)
    invitation = _invitations(engine, survey, now, channel=described)

    def cost(texts: Sequence[str]) -> int:
        if not described.counts_segments:
            return len(texts)
        return sum(count_segments(text).segments for text in texts)

    by_language: dict[str, dict[bool, int]] = {}
    for language, has_consented, n in groups:
        resolved, _pending, _texts = invitation(language, bool(has_consented), None)
        per_consent = by_language.setdefault(resolved, {True: 0, False: 0})
        per_consent[bool(has_consented)] += int(n)
    estimates = []
    for language in sorted(by_language, key=survey.languages.index):
        n_consented, n_not = by_language[language][True], by_language[language][False]
        consent = cost(invitation(language, False, None)[2])
        invite = cost(invitation(language, True, None)[2])
        estimates.append(
            LanguageEstimate(
                language=language,
                contacts=n_consented + n_not,
                consent_segments=consent,
                invitation_segments=invite,
                invitations_total=n_not * consent + n_consented * invite,
                survey_segments=cost(survey_texts(engine, survey, language, described)),
                reminder_segments=cost([reminder_text(engine, survey, language, described)]),
            )
        )
    per_message: dict[str, dict[str, int]] = {}
    if described.counts_segments:
        for message_cost in message_costs(survey, org_name=settings.org_name):
            if message_cost.language in by_language:
                per_message.setdefault(message_cost.message, {})[message_cost.language] = (
                    message_cost.segments
                )
    return Preview(
        survey=survey,
        channel=channel,
        reached=reached,
        left_out=left_out,
        estimates=estimates,
        reminders=reminders,
        message_segments=list(per_message.items()),
    )


def survey_texts(engine: Engine, survey: Survey, language: str, channel: Channel) -> list[str]:
    """Every survey message in one language as this channel gets it: intro, questions, closing."""
    t = engine.texts(language)
    if channel.counts_segments:
        t = t.sms
    texts = [survey.intro.get(language) or ""]
    texts += [render_question(q, survey, language, t) for q in survey.questions]
    texts.append(survey.closing.get(language) or "")
    return [spell_for_channel(survey, text, channel.name) for text in texts if text]


def reminder_text(
    engine: Engine, survey: Survey, language: str, channel: Channel, *, pending: str | None = None
) -> str:
    """A reminder in the contact's language: to start (the invitation still waits for its
    answer) or to go on (a question waits)."""
    t = engine.texts(language)
    if channel.counts_segments:
        t = t.sms  # system texts go in plain GSM-7 spelling on SMS
    title = survey.title.get(language) or survey.title.get(survey.default_language) or survey.id
    if pending is None or pending in (CONSENT, INVITATION):
        return t.reminder_to_start(title)
    return t.reminder_to_go_on(title)


# -- writing the invitations ---------------------------------------------------------------------


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
    """Open an invitation conversation and write its outbound rows for each contact (a voice
    campaign: its call)."""
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
            Contact.phone_hash,
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
        due = send_after(contact.timezone)
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
                # Idle from when the invitation is due, not from now: one sent in the morning or
                # at a later start must not have expired by then.
                last_activity_at=max(due, now),
            )
        )
        invitations.append((contact, language, replies, due))
    conversation_ids = insert_returning_ids(session, table_of(Conversation), conversations)
    if described.is_spoken:
        return _write_calls(session, campaign, conversation_ids, invitations, sender, now)
    rows = []
    for conversation_id, (contact, language, replies, due) in zip(
        conversation_ids, invitations, strict=True
    ):
        if described.prefix:
            cipher = vault.contact_cipher(contact.key_encrypted)
            address = cipher.encrypt(described.address(cipher.decrypt(contact.phone_encrypted)))
        else:
            address = contact.phone_encrypted  # the same plaintext: the E.164 number
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
                    kind=INVITATION_KIND,
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


def _write_calls(
    session: Session,
    campaign: Campaign,
    conversation_ids: list[int],
    invitations: list[tuple[Any, str, list[str], datetime]],
    sender: str,
    now: datetime,
) -> Batch:
    """A voice campaign's batch: one queued call per contact, not before its quiet hours end
    (its placer takes it from there)."""
    rows = [
        call_row(
            purpose=CallPurpose.CAMPAIGN,
            status=CallStatus.QUEUED,
            token=new_token(),
            campaign_id=campaign.id,
            contact_id=contact.id,
            conversation_id=conversation_id,
            phone_hash=contact.phone_hash,
            our_address=sender,
            call_after=None if due <= now else due,
            created_at=now,
        )
        for conversation_id, (contact, _language, _texts, due) in zip(
            conversation_ids, invitations, strict=True
        )
    ]
    insert_returning_ids(session, table_of(Call), rows)
    campaign.invited = Campaign.invited + len(rows)
    session.flush()
    due_now = sum(row["call_after"] is None for row in rows)
    return Batch(send_now=[], scheduled=len(rows) - due_now, calls_now=due_now)


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
            # By phone, in a language the survey is offered in by phone.
            spoken = campaign_calls.call_language(survey, language) if channel.is_spoken else None
            outcome = engine.invite(state, survey, now=now, language=spoken, channel=channel.name)
            conv = outcome.conversation
            assert conv is not None
            replies = list(outcome.replies)
            if channel.joins_parts:
                # One message: outside the window it goes as the template instead.
                replies = ["\n\n".join(replies)]
            known[key] = (conv.language, conv.pending, replies)
        return known[key]

    return invitation


def finish_fan_out(session: Session, campaign_id: int, *, now: datetime | None = None) -> None:
    """Every invitation is written: the campaign knows how many it invites."""
    session.execute(
        update(Campaign)
        .where(Campaign.id == campaign_id)
        .values(fanned_out_at=now or utcnow(), contacts=Campaign.invited)
    )


# -- pause, resume, cancel -----------------------------------------------------------------------

_messages = table_of(Message)


def pause_campaign(session: Session, campaign: Campaign) -> None:
    """Nothing more of it is sent until it resumes: the claim leaves its rows pending."""
    if campaign.state not in LIVE:
        raise CampaignError(f"campaign {campaign.id} is {campaign.state}: it cannot be paused")
    campaign.state = CampaignState.PAUSED
    session.flush()
    log.info("campaign %s: paused", campaign.id)


def resume_campaign(
    session: Session, campaign: Campaign, *, now: datetime | None = None
) -> list[int]:
    """Back to sending; the rows that are due now, to hand to `bulk` after the commit (a voice
    campaign has none: its placer is started again)."""
    now = now or utcnow()
    if campaign.state != CampaignState.PAUSED:
        raise CampaignError(f"campaign {campaign.id} is {campaign.state}: it cannot be resumed")
    campaign.state = CampaignState.SCHEDULED if campaign.start_at > now else CampaignState.RUNNING
    # An invitation that waited through the pause gets its idle time from now.
    waiting = select(_messages.c.conversation_id).where(
        _messages.c.campaign_id == campaign.id,
        _messages.c.kind == INVITATION_KIND,
        _messages.c.status == MessageStatus.PENDING,
    )
    idle_from(session, waiting, now)
    if campaign.channel == VOICE.name:
        campaign_calls.refresh_waiting(session, campaign.id, now=now)
    due = session.scalars(
        select(Message.id)
        .where(
            Message.campaign_id == campaign.id,
            Message.kind.in_((INVITATION_KIND, REMINDER_KIND)),
            Message.status == MessageStatus.PENDING,
            or_(Message.send_after.is_(None), Message.send_after <= now),
        )
        .order_by(Message.id)
    ).all()
    session.flush()
    log.info("campaign %s: resumed, %d row(s) due", campaign.id, len(due))
    return list(due)


def cancel_campaign(session: Session, campaign: Campaign, *, now: datetime | None = None) -> int:
    """Stop it for good: its unsent rows (or calls not yet placed) are dropped; how many."""
    now = now or utcnow()
    if campaign.state not in (*LIVE, CampaignState.PAUSED):
        raise CampaignError(f"campaign {campaign.id} is {campaign.state}: it cannot be cancelled")
    campaign.state = CampaignState.CANCELLED
    campaign.ended_at = now
    session.flush()
    dropped = drop_unsent(session, campaign.id)
    log.info("campaign %s: cancelled, %d unsent row(s) dropped", campaign.id, dropped)
    return dropped


def drop_unsent(session: Session, campaign_id: int) -> int:
    """A cancelled campaign's unsent rows are cancelled, and the invitations that never went
    out are undone: their conversations are deleted, so the contacts are not left mid-survey
    and results do not count an invitation nobody received. Safe to run again (the fan-out
    does, when a campaign is cancelled while its invitations are being written)."""
    m = _messages.c
    never_sent = select(m.conversation_id).where(
        m.campaign_id == campaign_id,
        m.kind == INVITATION_KIND,
        m.sequence == 0,
        m.status.in_((MessageStatus.PENDING, MessageStatus.CANCELLED)),
    )
    # A conversation the worker wrote into meanwhile (texted or called before it went) stays.
    wrote = exists().where(
        m.contact_id == Conversation.contact_id,
        m.conversation_id == Conversation.id,
        m.direction == Direction.IN,
    )
    # A voice campaign's invitations are its calls: those never placed are undone too.
    never_placed = campaign_calls.never_placed(campaign_id)
    undone = select(Conversation.id).where(
        or_(
            Conversation.id.in_(never_sent.scalar_subquery()),
            Conversation.id.in_(never_placed.scalar_subquery()),
        ),
        Conversation.status == "active",
        ~wrote,
    )
    undone_ids = list(session.scalars(undone))
    dropped = rows_matched(
        session.execute(
            update(Message)
            .where(Message.campaign_id == campaign_id, Message.status == MessageStatus.PENDING)
            .values(status=MessageStatus.CANCELLED)
        )
    )
    dropped += campaign_calls.cancel_queued_calls(session, campaign_id, now=utcnow())
    for chunk in batches(undone_ids, 1000):
        for table in (Message, Call):
            session.execute(
                update(table)
                .where(table.campaign_id == campaign_id, table.conversation_id.in_(chunk))
                .values(conversation_id=None)
            )
        session.execute(delete(Conversation).where(Conversation.id.in_(chunk)))
    session.flush()
    return dropped


def is_cancelled(session: Session, campaign_id: int) -> bool:
    return session.scalar(select(Campaign.state).where(Campaign.id == campaign_id)) == (
        CampaignState.CANCELLED
    )


# -- progress ------------------------------------------------------------------------------------


def _number(condition: ColumnElement[bool]) -> Any:
    """How many rows meet the condition, in an aggregate select."""
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0).cast(Integer)


def _consented() -> ColumnElement[bool]:
    """Said yes and reached the questions (or the end)."""
    return or_(
        Conversation.status == "completed",
        Conversation.last_question_id.is_not(None),
        and_(
            Conversation.status == "active",
            Conversation.pending.is_not(None),
            Conversation.pending.not_in((CONSENT, INVITATION)),
        ),
    )


def progress(session: Session, campaign: Campaign) -> dict[str, int | str]:
    """Exact counts (staff only): contacts, invited, sent, delivered, failed, started, consented,
    completed, reminded, opted out, and the state. A voice campaign counts calls instead of
    messages (`call_progress`)."""
    if campaign.channel == VOICE.name:
        return call_progress(session, campaign)
    inv = aliased(Message, name="invitation")
    started = answered_invitation()
    consented = _consented()
    row = session.execute(
        select(
            func.count(inv.id),
            _number(inv.status.in_(TAKEN)),
            _number(inv.status.in_(DELIVERED)),
            _number(inv.status.in_(FAILED)),
            _number(started),
            _number(consented),
            _number(Conversation.status == "completed"),
            _number(Contact.is_opted_out.is_(True)),
        )
        .select_from(inv)
        .outerjoin(Conversation, Conversation.id == inv.conversation_id)
        .outerjoin(Contact, Contact.id == inv.contact_id)
        .where(inv.campaign_id == campaign.id, inv.kind == INVITATION_KIND, inv.sequence == 0)
    ).one()
    reminded = session.scalar(
        select(func.count(func.distinct(Message.contact_id))).where(
            Message.campaign_id == campaign.id,
            Message.kind == REMINDER_KIND,
            Message.status.in_(TAKEN),
        )
    )
    invited, sent, delivered, failed, started_n, consented_n, completed, opted_out = row
    return {
        "contacts": max(campaign.contacts, campaign.invited),
        "invited": int(invited),
        "sent": int(sent),
        "delivered": int(delivered),
        "failed": int(failed),
        "started": int(started_n),
        "consented": int(consented_n),
        "completed": int(completed),
        "reminded": int(reminded or 0),
        "opted_out": int(opted_out),
        "state": campaign.state,
    }


def call_progress(session: Session, campaign: Campaign) -> dict[str, int | str]:
    """A voice campaign's exact counts: contacts; calls written (invited), placed, answered by a
    person, by a machine (hung up on), busy, not answered, failed or canceled; then, as for
    texts, started, consented, completed, opted out; and the state."""
    machine = campaign_calls.is_machine()
    row = session.execute(
        select(
            func.count(Call.id),
            _number(campaign_calls.is_placed()),
            _number(and_(Call.status == CallStatus.COMPLETED, ~machine)),
            _number(machine),
            _number(Call.status == CallStatus.BUSY),
            _number(Call.status == CallStatus.NO_ANSWER),
            _number(Call.status.in_((CallStatus.FAILED, CallStatus.CANCELED))),
            _number(answered_invitation()),
            _number(_consented()),
            _number(Conversation.status == "completed"),
            _number(Contact.is_opted_out.is_(True)),
        )
        .select_from(Call)
        .outerjoin(Conversation, Conversation.id == Call.conversation_id)
        .outerjoin(Contact, Contact.id == Call.contact_id)
        .where(Call.campaign_id == campaign.id, Call.purpose == CallPurpose.CAMPAIGN)
    ).one()
    names = (
        "invited",
        "placed",
        "answered",
        "machine",
        "busy",
        "no_answer",
        "failed",
        "started",
        "consented",
        "completed",
        "opted_out",
    )
    return {
        "contacts": max(campaign.contacts, campaign.invited),
        **{name: int(n) for name, n in zip(names, row, strict=True)},
        "state": campaign.state,
    }


def start_scheduled(session: Session, *, now: datetime) -> int:
    """Scheduled campaigns whose start has come are running; how many."""
    return rows_matched(
        session.execute(
            update(Campaign)
            .where(Campaign.state == CampaignState.SCHEDULED, Campaign.start_at <= now)
            .values(state=CampaignState.RUNNING)
        )
    )


# A fan-out not finished this long after the campaign was made has lost its job (a worker
# killed, Redis flushed): the clock hands it over again.
FAN_OUT_GRACE = timedelta(minutes=15)


def unfinished_fan_outs(session: Session, *, now: datetime) -> list[int]:
    return list(
        session.scalars(
            select(Campaign.id).where(
                Campaign.fanned_out_at.is_(None),
                Campaign.state != CampaignState.CANCELLED,
                Campaign.created_at < now - FAN_OUT_GRACE,
            )
        )
    )


def running_fanned_out(session: Session) -> list[Campaign]:
    return list(
        session.scalars(
            select(Campaign).where(
                Campaign.state == CampaignState.RUNNING, Campaign.fanned_out_at.is_not(None)
            )
        )
    )


def record_action(
    session: Session, campaign: Campaign, *, action: str, actor: str, user_id: int | None
) -> AuditEntry:
    """One line of the audit trail: a campaign started, paused, resumed or cancelled."""
    entry = AuditEntry(
        user_id=user_id,
        actor=actor,
        action=action,
        survey_id=campaign.survey_id,
        parameters={"campaign": campaign.id},
    )
    session.add(entry)
    session.flush()
    return entry


def answered_invitation() -> ColumnElement[bool]:
    """Whether the worker answered a campaign's invitation (its conversation's own columns, no
    look-up per contact): said yes and got a question, said no, gave an answer it could not
    read, or ended it (finished, started another survey, opted out). A conversation that expired
    after a yes but before any answer no longer shows it (expiry clears the pending question),
    as in the results' funnel."""
    return or_(
        Conversation.status.in_(ENDED_BY_REPLY),
        Conversation.last_question_id.is_not(None),
        Conversation.consent_tries > 0,
        and_(
            Conversation.pending.is_not(None),
            Conversation.pending.not_in((CONSENT, INVITATION)),
        ),
    )


def has_unsent(session: Session, campaign_id: int) -> bool:
    """Whether a row of the campaign is still to send, or a call still to place."""
    return bool(
        session.scalar(
            select(
                exists().where(
                    Message.campaign_id == campaign_id,
                    Message.kind.in_((INVITATION_KIND, REMINDER_KIND)),
                    Message.status.in_(UNSENT),
                )
            )
        )
    ) or campaign_calls.has_queued_calls(session, campaign_id)


def list_campaigns(session: Session, *, limit: int = 200) -> list[Campaign]:
    """Campaigns, newest first."""
    return list(session.scalars(select(Campaign).order_by(Campaign.id.desc()).limit(limit)))


def sent_counts(session: Session, campaign_ids: Sequence[int]) -> dict[int, int]:
    """How many invitations Twilio took (calls placed, for voice), per campaign: one grouped
    count for a whole list."""
    if not campaign_ids:
        return {}
    rows = session.execute(
        select(Message.campaign_id, func.count())
        .where(
            Message.campaign_id.in_(list(campaign_ids)),
            Message.kind == INVITATION_KIND,
            Message.status.in_(TAKEN),
            Message.sequence == 0,
        )
        .group_by(Message.campaign_id)
    )
    counts = {campaign_id: int(n) for campaign_id, n in rows if campaign_id is not None}
    return counts | campaign_calls.placed_counts(session, campaign_ids)
