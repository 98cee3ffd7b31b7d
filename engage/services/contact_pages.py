"""The contacts pages: a filtered list paged by key, one contact's page, and what staff do to a
contact (see its number for a call, look a number up, record an opt-out or opt-in), audited.

No page shows a full number: the list and the contact's page decrypt only the numbers they show
and show `•••• 1234`. The full number leaves only through `reveal_number`, with a reason, at
most REVEALS_PER_DAY times in any 24 hours per person (docs/threat-model.md §2).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from engage.models import AuditEntry, Contact, Conversation, Message, SurveyVersion, User
from engage.privacy import Vault
from engage.services.contact_filters import ContactFilter, filter_conditions
from engage.services.inbox import message_text
from engage.services.surveys import parse_version
from engage.states import Direction

PAGE_SIZE = 50
REVEALS_PER_DAY = 10
REVEAL_WINDOW = timedelta(hours=24)
# How long a revealed number stays on the screen.
REVEAL_SECONDS = 60
# A contact's page shows its latest messages, this many.
MESSAGES_SHOWN = 200
# The audit's word for a contact no look-up found.
NONE_FOUND = "none found"


def mask(e164: str) -> str:
    """A number as staff see it: its last four digits."""
    return "•••• " + e164[-4:]


def pseudonym(contact_id: int) -> str:
    return f"contact-{contact_id}"


@dataclass(frozen=True)
class ContactSummary:
    id: int
    masked: str
    language: str | None
    profile: dict[str, Any]
    is_opted_out: bool
    has_consented: bool
    last_activity_at: datetime | None
    channels: tuple[str, ...]

    @property
    def pseudonym(self) -> str:
        return pseudonym(self.id)


@dataclass(frozen=True)
class ContactPage:
    contacts: list[ContactSummary]
    # The cursor of the next page (the last id shown), None on the last page.
    next_cursor: int | None


def list_contacts(
    session: Session,
    vault: Vault,
    chosen: ContactFilter,
    *,
    cursor: int | None = None,
    limit: int = PAGE_SIZE,
) -> ContactPage:
    """One page of matching contacts, newest first, after `cursor` (keyset paging: a page deep
    in the list costs what the first one does)."""
    query = select(
        Contact.id,
        Contact.phone_encrypted,
        Contact.key_encrypted,
        Contact.language,
        Contact.profile,
        Contact.is_opted_out,
        Contact.has_consented,
    ).where(*filter_conditions(chosen))
    if cursor is not None:
        query = query.where(Contact.id < cursor)
    rows = session.execute(query.order_by(Contact.id.desc()).limit(limit + 1)).all()
    has_more = len(rows) > limit
    rows = rows[:limit]
    ids = [row.id for row in rows]
    activity, channels = _activity(session, ids)
    contacts = [
        ContactSummary(
            id=row.id,
            masked=mask(vault.contact_cipher(row.key_encrypted).decrypt(row.phone_encrypted)),
            language=row.language,
            profile=dict(row.profile or {}),
            is_opted_out=row.is_opted_out,
            has_consented=row.has_consented,
            last_activity_at=activity.get(row.id),
            channels=tuple(sorted(channels.get(row.id, ()))),
        )
        for row in rows
    ]
    return ContactPage(contacts, ids[-1] if has_more else None)


def _activity(session: Session, ids: list[int]) -> tuple[dict[int, datetime], dict[int, set[str]]]:
    """The last message time and the channels used, of these contacts."""
    if not ids:
        return {}, {}
    last: dict[int, datetime] = {}
    for contact_id, moment in session.execute(
        select(Message.contact_id, func.max(Message.created_at))
        .where(Message.contact_id.in_(ids))
        .group_by(Message.contact_id)
    ):
        if contact_id is not None:  # always, for these ids: the column is only nullable
            last[contact_id] = moment
    channels: dict[int, set[str]] = {}
    for contact_id, channel in session.execute(
        select(Message.contact_id, Message.channel).where(Message.contact_id.in_(ids)).distinct()
    ):
        if contact_id is not None:
            channels.setdefault(contact_id, set()).add(channel)
    return last, channels


@dataclass(frozen=True)
class FilterChoices:
    """What the filter form offers: the profile keys and languages of the current surveys."""

    profile_keys: list[str]
    languages: list[str]


# By the ids of the current survey versions (never changed once stored): reading every
# definition again for each page would cost more than the page's own queries.
_choices: dict[frozenset[int], FilterChoices] = {}


def filter_choices(session: Session) -> FilterChoices:
    current = frozenset(
        session.scalars(select(SurveyVersion.id).where(SurveyVersion.is_current.is_(True)))
    )
    if current not in _choices:
        keys: set[str] = set()
        languages: set[str] = set()
        for row in session.scalars(select(SurveyVersion).where(SurveyVersion.id.in_(current))):
            survey = parse_version(row)
            languages.update(survey.languages)
            keys.update(q.profile for q in survey.questions if q.profile)
        _choices.clear()  # only the latest set is ever asked for again
        _choices[current] = FilterChoices(sorted(keys), sorted(languages))
    return _choices[current]


@dataclass(frozen=True)
class ConversationLine:
    survey_id: str
    status: str
    language: str
    channel: str
    started_at: datetime
    last_activity_at: datetime
    ended_at: datetime | None


@dataclass(frozen=True)
class MessageLine:
    id: int
    is_inbound: bool
    channel: str
    created_at: datetime
    body: str  # as text: decrypted when the worker wrote it
    has_media: bool
    status: str
    kind: str | None
    urgent_topic: str | None


@dataclass(frozen=True)
class ContactDetails:
    id: int
    masked: str  # empty once erased
    language: str | None
    profile: dict[str, Any]
    has_consented: bool
    consented_at: datetime | None
    consent_source: str | None
    is_opted_out: bool
    opted_out_at: datetime | None
    timezone: str | None
    created_at: datetime
    erased_at: datetime | None
    channels: tuple[str, ...]
    last_activity_at: datetime | None
    conversations: list[ConversationLine]
    messages: list[MessageLine]
    message_count: int

    @property
    def pseudonym(self) -> str:
        return pseudonym(self.id)


def describe_contact(session: Session, vault: Vault, contact_id: int) -> ContactDetails | None:
    """Everything a contact's page shows, or None for no such (or a simulated) contact."""
    contact = session.get(Contact, contact_id)
    if contact is None or contact.is_simulated:
        return None
    activity, channels = _activity(session, [contact_id])
    conversations = [
        ConversationLine(
            c.survey_id,
            c.status,
            c.language,
            c.channel,
            c.started_at,
            c.last_activity_at,
            c.ended_at,
        )
        for c in session.scalars(
            select(Conversation)
            .where(Conversation.contact_id == contact_id)
            .order_by(Conversation.started_at.desc(), Conversation.id.desc())
        )
    ]
    message_count = session.scalar(
        select(func.count()).select_from(Message).where(Message.contact_id == contact_id)
    )
    masked = ""
    messages: list[MessageLine] = []
    if contact.erased_at is None:
        cipher = vault.contact_cipher(contact.key_encrypted)
        masked = mask(cipher.decrypt(contact.phone_encrypted))
        latest = session.scalars(
            select(Message)
            .where(Message.contact_id == contact_id)
            .order_by(Message.created_at.desc(), Message.id.desc())
            .limit(MESSAGES_SHOWN)
        ).all()
        for message in reversed(latest):
            is_inbound = message.direction == Direction.IN
            # What the worker wrote and staff replies are under the contact's key.
            body = message_text(cipher, message.direction, message.kind, message.body) or ""
            messages.append(
                MessageLine(
                    id=message.id,
                    is_inbound=is_inbound,
                    channel=message.channel,
                    created_at=message.created_at,
                    body=body,
                    has_media=message.media_url is not None,
                    status=message.status,
                    kind=message.kind,
                    urgent_topic=message.urgent_topic if message.is_urgent else None,
                )
            )
    return ContactDetails(
        id=contact.id,
        masked=masked,
        language=contact.language,
        profile=dict(contact.profile or {}),
        has_consented=contact.has_consented,
        consented_at=contact.consented_at,
        consent_source=contact.consent_source,
        is_opted_out=contact.is_opted_out,
        opted_out_at=contact.opted_out_at,
        timezone=contact.timezone,
        created_at=contact.created_at,
        erased_at=contact.erased_at,
        channels=tuple(sorted(channels.get(contact_id, ()))),
        last_activity_at=activity.get(contact_id),
        conversations=conversations,
        messages=messages,
        message_count=message_count or 0,
    )


# -- what staff do to a contact, each audited ---------------------------------------------------


def record_contact_action(
    session: Session,
    *,
    user: User,
    action: str,
    contact_id: int | None,
    now: datetime,
    **parameters: str,
) -> AuditEntry:
    """One line of the audit trail about a contact: its pseudonym (never its number)."""
    entry = AuditEntry(
        user_id=user.id,
        actor=user.email,
        action=action,
        survey_id=None,
        parameters={
            "contact": pseudonym(contact_id) if contact_id is not None else NONE_FOUND,
            **parameters,
        },
        created_at=now,
    )
    session.add(entry)
    session.flush()
    return entry


def live_contact(session: Session, contact_id: int, *, lock: bool = False) -> Contact | None:
    """A contact staff may act on: one that exists, is not simulated and is not erased."""
    contact = session.get(Contact, contact_id, with_for_update=lock)
    if contact is None or contact.is_simulated or contact.erased_at is not None:
        return None
    return contact


@dataclass(frozen=True)
class Reveal:
    """A reveal's answer: the number (None when refused), how many more today, and when the
    next one is possible once refused."""

    e164: str | None
    remaining: int
    next_at: datetime | None = None


def reveals_left(session: Session, user_id: int, now: datetime) -> tuple[int, datetime | None]:
    """How many numbers this person may still see now, and (at none) when the next one."""
    times = list(
        session.scalars(
            select(AuditEntry.created_at)
            .where(
                AuditEntry.user_id == user_id,
                AuditEntry.action == "reveal",
                AuditEntry.created_at > now - REVEAL_WINDOW,
            )
            .order_by(AuditEntry.created_at)
        )
    )
    left = max(REVEALS_PER_DAY - len(times), 0)
    return left, (times[-REVEALS_PER_DAY] + REVEAL_WINDOW if not left else None)


def reveal_number(
    session: Session, vault: Vault, contact: Contact, *, user: User, reason: str, now: datetime
) -> Reveal:
    """The contact's full number for a call, audited with its reason; refused (and the refusal
    audited) after REVEALS_PER_DAY in 24 hours. The caller checks that a reason was given."""
    if not reason.strip():
        raise ValueError("a reveal needs a reason")
    # One reveal at a time per person, so two at once cannot both be the tenth (SQLite's
    # transactions take the write lock at BEGIN anyway).
    session.execute(select(User.id).where(User.id == user.id).with_for_update())
    left, next_at = reveals_left(session, user.id, now)
    if not left:
        record_contact_action(
            session,
            user=user,
            action="reveal_refused",
            contact_id=contact.id,
            now=now,
            reason=reason.strip(),
        )
        return Reveal(None, 0, next_at)
    record_contact_action(
        session, user=user, action="reveal", contact_id=contact.id, now=now, reason=reason.strip()
    )
    e164 = vault.contact_cipher(contact.key_encrypted).decrypt(contact.phone_encrypted)
    return Reveal(e164, left - 1)


def find_by_number(
    session: Session, vault: Vault, e164: str, *, user: User, now: datetime
) -> int | None:
    """The id of the live contact with this number (by its keyed hash), audited whether or not
    anyone was found: asking is itself a look-up of a number."""
    contact_id = session.scalar(
        select(Contact.id).where(
            Contact.phone_hash == vault.phone_hash(e164),
            Contact.is_simulated.is_(False),
            Contact.erased_at.is_(None),
        )
    )
    record_contact_action(session, user=user, action="find", contact_id=contact_id, now=now)
    return contact_id


def record_opt_choice(
    session: Session,
    contact: Contact,
    *,
    is_opted_out: bool,
    user: User,
    reason: str,
    now: datetime,
) -> bool:
    """An opt-out or opt-in the worker gave another way (a call, a visit), audited; False when
    the contact was in that state already (nothing changes, nothing is recorded).

    An opt-out does what STOP does: nothing more is sent (pending sends are cancelled when
    their turn comes, services/outbox.py) and an open conversation ends as opted out.
    """
    if contact.is_opted_out == is_opted_out:
        return False
    contact.is_opted_out = is_opted_out
    if is_opted_out:
        contact.opted_out_at = now
        contact.is_menu_open = False
        session.execute(
            update(Conversation)
            .where(Conversation.contact_id == contact.id, Conversation.status == "active")
            .values(status="opted_out", ended_at=now)
        )
    contact.updated_at = now
    session.flush()
    parameters = {"reason": reason.strip()} if reason.strip() else {}
    record_contact_action(
        session,
        user=user,
        action="opt_out" if is_opted_out else "opt_in",
        contact_id=contact.id,
        now=now,
        **parameters,
    )
    return True
