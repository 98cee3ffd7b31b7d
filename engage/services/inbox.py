"""The staff inbox: threads that need a person, one contact's thread, and what staff do there.

A thread is one contact's messages. It waits for staff while any message in it needs a person
and has not been handled: an urgent message, free text outside a conversation, a text answer,
a photo or other media, or a send whose outcome is unknown (`unconfirmed`). Marking the thread
handled stamps those messages (`messages.handled_at`, read through a small partial index) and
notes the time of the last one covered (`threads.handled_through_at`, against which text answers
are read from their answer rows); a new one arrives unstamped and later, so the thread opens
again by itself, and the webhook's path writes nothing for the inbox.

Replies are outbound rows on the `replies` queue, their text under the contact's own key
(outbox.STAFF_REPLY), sent by the reply sender like any reply. The rules of when a reply may go
live in `plan_reply`: never to an opted-out or erased contact; during the worker's quiet hours
it waits until they end unless the worker wrote in the last two hours; on WhatsApp outside the
24-hour window only the reply template. Every reply, note, assignment and handling is audited,
never with its text.
"""

from __future__ import annotations

import logging
import math
import re
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    CompoundSelect,
    Select,
    and_,
    case,
    distinct,
    exists,
    func,
    literal,
    or_,
    select,
    union_all,
    update,
)
from sqlalchemy.orm import Session

from engage.channels import channel_named, written_reply_channel
from engage.db import insert_ignoring_conflicts, table_of
from engage.models import (
    Answer,
    AuditEntry,
    Contact,
    Message,
    SurveyVersion,
    Thread,
    ThreadNote,
    User,
)
from engage.models.messages import is_waiting_for_staff
from engage.privacy import ContactCipher, ContactErasedError, Vault
from engage.services.outbox import STAFF_REPLY
from engage.services.quiet_hours import next_allowed
from engage.services.rows import message_row
from engage.services.surveys import DatabaseCatalog
from engage.states import Direction, MessageStatus, QueueName

log = logging.getLogger(__name__)

# Why a thread waits, most pressing first: the inbox lists threads in this order.
CATEGORIES = ("urgent", "free_text", "text_answer", "media", "unconfirmed")
URGENT, FREE_TEXT, TEXT_ANSWER, MEDIA, UNCONFIRMED = range(len(CATEGORIES))
# The inbox's views: threads waiting for a person, those of them assigned to me, handled ones.
OPEN, MINE, HANDLED = "open", "mine", "handled"
VIEWS = (OPEN, MINE, HANDLED)
PAGE_SIZE = 25
# A thread page shows this many of the latest messages.
THREAD_MESSAGES = 200
PREVIEW_CHARS = 160
MAX_REPLY = 1600  # Twilio refuses a longer body (21617)
MAX_NOTE = 4000
# A worker who wrote this recently is awake: a reply goes even in their quiet hours.
WROTE_RECENTLY = timedelta(hours=2)
STAFF_ROLES = ("admin", "staff")

_messages = table_of(Message)
_contacts = table_of(Contact)
_threads = table_of(Thread)
_answers = table_of(Answer)
_users = table_of(User)
_notes = table_of(ThreadNote)


class ContactNotFoundError(LookupError):
    """No such contact in the inbox (none with that id, or a simulated one)."""


class InboxError(ValueError):
    """What staff asked cannot be done; `reason` says why, for the page to put in words."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def mask_number(e164: str) -> str:
    """A number as staff see it: its last four digits only."""
    return "•••• " + re.sub(r"\D", "", e164)[-4:]


def _cipher(vault: Vault, key_encrypted: str | None) -> ContactCipher | None:
    try:
        return vault.contact_cipher(key_encrypted)
    except ContactErasedError:
        return None


def _masked(cipher: ContactCipher | None, phone_encrypted: str) -> str | None:
    """The contact's masked number; None once erased (the number is gone)."""
    if cipher is None or not phone_encrypted:
        return None
    return mask_number(cipher.decrypt(phone_encrypted))


def message_text(
    cipher: ContactCipher | None, direction: str, kind: str | None, body: str
) -> str | None:
    """A message's text as written: what a worker wrote and staff replies are stored under the
    contact's key, Engage's own texts as they are. None when it can no longer be read."""
    if direction == Direction.OUT and kind != STAFF_REPLY:
        return body
    if not body:
        return "" if cipher is not None else None
    return cipher.decrypt(body) if cipher is not None else None


# -- which messages wait for a person -------------------------------------------------------------


def _text_questions(session: Session) -> dict[str, list[str]]:
    """The text questions of every published survey, by survey: a question keeps its type in
    every version (publishing refuses a change), so survey and question id say it is text."""
    catalog = DatabaseCatalog(session)
    found: dict[str, set[str]] = defaultdict(set)
    versions = session.execute(select(SurveyVersion.survey_id, SurveyVersion.version)).all()
    for survey_id, version in versions:
        for question in catalog.get(survey_id, version).questions:
            if question.type == "text":
                found[survey_id].add(question.id)
    return {survey_id: sorted(ids) for survey_id, ids in sorted(found.items())}


def _is_text_question(session: Session) -> ColumnElement[bool] | None:
    """Whether an answer row answers a text question (None: no survey has one)."""
    questions = _text_questions(session)
    if not questions:
        return None
    a = _answers.c
    return or_(
        *(
            and_(a.survey_id == survey_id, a.question_id.in_(ids))
            for survey_id, ids in questions.items()
        )
    )


def _waiting_text_answers(session: Session, contact_ids: Sequence[int] = ()) -> Select[Any] | None:
    """(contact_id, created_at, rank) of text answers nobody has handled: given after the last
    message the thread was marked handled through. Read from the answers alone (their index by
    survey and question), never joined to every message."""
    is_text = _is_text_question(session)
    if is_text is None:
        return None
    a, t = _answers.c, _threads.c
    query = (
        select(a.contact_id, a.answered_at.label("created_at"), literal(TEXT_ANSWER).label("rank"))
        .select_from(_answers.outerjoin(_threads, t.contact_id == a.contact_id))
        .where(
            is_text,
            a.status == "answered",
            or_(t.handled_through_at.is_(None), a.answered_at > t.handled_through_at),
        )
    )
    if contact_ids:
        query = query.where(a.contact_id.in_(list(contact_ids)))
    return query


def _text_answer_messages(session: Session, contact_ids: Sequence[int]) -> Select[Any] | None:
    """(contact_id, id, handled_at) of the inbound messages of these contacts that answered a
    text question: the answer row is written in the same step as its message, at its instant."""
    is_text = _is_text_question(session)
    if is_text is None:
        return None
    a, m = _answers.c, _messages.c
    return (
        select(m.contact_id, m.id, m.handled_at)
        .select_from(
            _answers.join(
                _messages, and_(m.contact_id == a.contact_id, m.created_at == a.answered_at)
            )
        )
        .where(
            is_text,
            a.status == "answered",
            a.contact_id.in_(list(contact_ids)),
            m.direction == Direction.IN,
            m.kind == "answer",
        )
    )


def _rank() -> ColumnElement[int]:
    m = _messages.c
    return case(
        (m.is_urgent.is_(True), URGENT),
        (m.is_free_text.is_(True), FREE_TEXT),
        (m.media_url.is_not(None), MEDIA),
        else_=UNCONFIRMED,
    )


def _waiting(
    session: Session, contact_ids: Sequence[int] = ()
) -> CompoundSelect[Any] | Select[Any]:
    """Everything that waits for a person: (contact_id, created_at, rank)."""
    m = _messages.c
    flagged = select(m.contact_id, m.created_at, _rank().label("rank")).where(
        is_waiting_for_staff(m)
    )
    if contact_ids:
        flagged = flagged.where(m.contact_id.in_(list(contact_ids)))
    answers = _waiting_text_answers(session, contact_ids)
    return flagged if answers is None else union_all(flagged, answers)


def _open_threads(session: Session) -> Any:
    """One row per thread that waits: its most pressing reason, when the latest of what waits
    came, and how many steps of the worker's wait (a message and its answer count once)."""
    waiting = _waiting(session).subquery("waiting")
    return (
        select(
            waiting.c.contact_id,
            func.min(waiting.c.rank).label("rank"),
            func.max(waiting.c.created_at).label("latest_at"),
            func.count(distinct(waiting.c.created_at)).label("waiting"),
        )
        .group_by(waiting.c.contact_id)
        .subquery("open_threads")
    )


def _latest_waiting_messages(session: Session, contact_ids: list[int]) -> dict[int, int]:
    """The latest message that waits for a person, per contact (for a page of threads)."""
    if not contact_ids:
        return {}
    m = _messages.c
    latest = {
        row.contact_id: row.id
        for row in session.execute(
            select(m.contact_id, func.max(m.id).label("id"))
            .where(is_waiting_for_staff(m), m.contact_id.in_(contact_ids))
            .group_by(m.contact_id)
        )
    }
    answers = _text_answer_messages(session, contact_ids)
    if answers is not None:
        for row in session.execute(answers):
            if row.handled_at is None and row.id > latest.get(row.contact_id, 0):
                latest[row.contact_id] = row.id
    return latest


def count_urgent_open_threads(session: Session) -> int:
    """How many threads wait for a person with an urgent message in them (simulated contacts
    never count)."""
    m = _messages.c
    return int(
        session.scalar(
            select(func.count(distinct(m.contact_id)))
            .select_from(_messages.join(_contacts, _contacts.c.id == m.contact_id))
            .where(
                is_waiting_for_staff(m),
                m.is_urgent.is_(True),
                _contacts.c.is_simulated.is_(False),
            )
        )
        or 0
    )


# -- the inbox ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ThreadSummary:
    """One line of the inbox: never a full number."""

    contact_id: int
    masked_number: str | None  # None: the contact was erased
    language: str | None
    category: str | None  # why it waits (CATEGORIES); None for a handled thread
    topics: tuple[str, ...]  # the safety topics of its waiting urgent messages
    latest_at: datetime | None
    waiting: int
    preview: str | None
    assigned_to: str | None
    handled_at: datetime | None
    handled_by: str | None


@dataclass(frozen=True)
class InboxPage:
    view: str
    threads: list[ThreadSummary]
    total: int
    page: int
    pages: int


def inbox_page(
    session: Session, vault: Vault, *, view: str, user_id: int, page: int = 1
) -> InboxPage:
    """A page of the inbox: waiting threads most pressing first (urgent, then free text, text
    answers, media, unconfirmed sends; newest first within each), or handled ones."""
    if view not in VIEWS:
        raise InboxError("view")
    opened = _open_threads(session)
    assigned, handled_by = _users.alias("assigned"), _users.alias("handled_by")
    t, c = _threads.c, _contacts.c
    columns = [
        c.id.label("contact_id"),
        c.phone_encrypted,
        c.key_encrypted,
        c.language,
        assigned.c.email.label("assigned_to"),
        t.handled_at,
        handled_by.c.email.label("handled_by"),
    ]
    joined = _contacts.outerjoin(_threads, t.contact_id == c.id)
    joined = joined.outerjoin(assigned, assigned.c.id == t.assigned_to_id)
    joined = joined.outerjoin(handled_by, handled_by.c.id == t.handled_by_id)
    if view == HANDLED:
        query = (
            select(*columns)
            .select_from(joined)
            .where(
                c.is_simulated.is_(False),
                t.handled_at.is_not(None),
                c.id.not_in(select(opened.c.contact_id)),
            )
            .order_by(t.handled_at.desc(), c.id.desc())
        )
    else:
        query = (
            select(*columns, opened.c.rank, opened.c.latest_at, opened.c.waiting)
            .select_from(opened.join(joined, c.id == opened.c.contact_id))
            .where(c.is_simulated.is_(False))
            .order_by(opened.c.rank, opened.c.latest_at.desc(), c.id.desc())
        )
        if view == MINE:
            query = query.where(t.assigned_to_id == user_id)
    # The total rides on each row (one pass over what waits); a page past the end asks again.
    counted = query.add_columns(func.count().over().label("total"))
    page = max(page, 1)
    rows = session.execute(counted.limit(PAGE_SIZE).offset((page - 1) * PAGE_SIZE)).all()
    if rows:
        total = rows[0].total
    else:
        total = int(session.scalar(select(func.count()).select_from(query.subquery())) or 0)
        if total:
            page = math.ceil(total / PAGE_SIZE)
            rows = session.execute(counted.limit(PAGE_SIZE).offset((page - 1) * PAGE_SIZE)).all()
    pages = max(1, math.ceil(total / PAGE_SIZE))
    contact_ids = [row.contact_id for row in rows]
    topics = _waiting_topics(session, contact_ids)
    latest = _latest_inbound(session, contact_ids)
    if view != HANDLED:
        latest.update(_latest_waiting_messages(session, contact_ids))
    previews = _previews(session, vault, latest, rows)
    threads = []
    for row in rows:
        cipher = _cipher(vault, row.key_encrypted)
        is_open = view != HANDLED
        threads.append(
            ThreadSummary(
                contact_id=row.contact_id,
                masked_number=_masked(cipher, row.phone_encrypted),
                language=row.language,
                category=CATEGORIES[row.rank] if is_open else None,
                topics=tuple(topics.get(row.contact_id, ())),
                latest_at=row.latest_at if is_open else None,
                waiting=row.waiting if is_open else 0,
                preview=previews.get(row.contact_id),
                assigned_to=row.assigned_to,
                handled_at=row.handled_at,
                handled_by=row.handled_by,
            )
        )
    return InboxPage(view=view, threads=threads, total=total, page=page, pages=pages)


def _waiting_topics(session: Session, contact_ids: list[int]) -> dict[int, list[str]]:
    if not contact_ids:
        return {}
    m = _messages.c
    rows = session.execute(
        select(m.contact_id, m.urgent_topic)
        .where(
            is_waiting_for_staff(m),
            m.is_urgent.is_(True),
            m.contact_id.in_(contact_ids),
            m.urgent_topic.is_not(None),
        )
        .distinct()
        .order_by(m.contact_id, m.urgent_topic)
    ).all()
    found: dict[int, list[str]] = defaultdict(list)
    for contact_id, topic in rows:
        found[contact_id].append(topic)
    return found


def _latest_inbound(session: Session, contact_ids: list[int]) -> dict[int, int]:
    if not contact_ids:
        return {}
    m = _messages.c
    rows = session.execute(
        select(m.contact_id, func.max(m.id))
        .where(m.contact_id.in_(contact_ids), m.direction == Direction.IN)
        .group_by(m.contact_id)
    ).all()
    return {contact_id: message_id for contact_id, message_id in rows}


def _previews(
    session: Session, vault: Vault, message_ids: dict[int, int], contacts: Sequence[Any]
) -> dict[int, str | None]:
    """The start of each thread's message, as text (the page escapes it like any text)."""
    if not message_ids:
        return {}
    keys = {row.contact_id: row.key_encrypted for row in contacts}
    m = _messages.c
    rows = session.execute(
        select(m.id, m.contact_id, m.direction, m.kind, m.body, m.media_url).where(
            m.id.in_(list(message_ids.values()))
        )
    ).all()
    previews: dict[int, str | None] = {}
    for row in rows:
        text = message_text(
            _cipher(vault, keys.get(row.contact_id)), row.direction, row.kind, row.body
        )
        if text is not None and len(text) > PREVIEW_CHARS:
            text = text[: PREVIEW_CHARS - 1].rstrip() + "…"
        previews[row.contact_id] = text
    return previews


# -- one thread -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReplyPlan:
    """What a reply written now would do, for the page to say before staff write it."""

    refusal: str | None  # erased | opted_out | no_address | no_template; None: a reply can go
    channel: str | None
    timezone: str | None
    in_quiet_hours: bool
    wrote_recently: bool
    held_until: datetime | None  # quiet hours: the reply waits until then
    is_template_only: bool  # WhatsApp outside the 24-hour window: only the reply template
    window_closes_at: datetime | None  # WhatsApp inside the window: when it closes


@dataclass(frozen=True)
class ThreadMessage:
    id: int
    direction: str
    at: datetime
    channel: str
    text: str | None  # None: erased, nothing can be read
    media_url: str | None  # an https link only, never embedded
    has_media: bool
    category: str | None  # why it needs a person (CATEGORIES), None when it does not
    is_waiting: bool
    topic: str | None
    kind: str | None
    status: str
    error_code: int | None
    sent_by: str | None
    send_after: datetime | None
    is_template: bool
    is_note: bool = field(default=False, init=False)


@dataclass(frozen=True)
class ThreadNoteView:
    id: int
    at: datetime
    kind: str  # note | erased_urgent
    topic: str | None
    text: str | None  # None: erased with the contact
    author: str | None
    is_note: bool = field(default=True, init=False)


@dataclass(frozen=True)
class ThreadView:
    contact_id: int
    masked_number: str | None
    language: str | None
    is_opted_out: bool
    is_erased: bool
    entries: list[ThreadMessage | ThreadNoteView]
    earlier: int  # older messages not shown
    first_message_id: int | None  # the oldest shown: the older page is the one before it
    is_older_page: bool  # the page shows older messages, not the latest
    last_message_id: int | None
    is_open: bool
    assigned_to_id: int | None
    assigned_to: str | None
    handled_at: datetime | None
    handled_by: str | None
    plan: ReplyPlan


@dataclass(frozen=True)
class _Address:
    channel: str
    our_address: str | None
    their_address_encrypted: str


def _contact(session: Session, contact_id: int, *, for_update: bool = False) -> Contact:
    query = select(Contact).where(Contact.id == contact_id, Contact.is_simulated.is_(False))
    if for_update:
        query = query.with_for_update()
    contact = session.scalar(query)
    if contact is None:
        raise ContactNotFoundError(contact_id)
    return contact


def _reply_address(session: Session, contact_id: int) -> tuple[_Address | None, datetime | None]:
    """Where a reply goes (the channel, our number and the worker's address of their latest
    message, else of our latest one to them), and when the worker last wrote."""
    m = _messages.c
    base = select(m.channel, m.our_address, m.their_address_encrypted, m.created_at).where(
        m.contact_id == contact_id, m.their_address_encrypted.is_not(None)
    )
    inbound = session.execute(
        base.where(m.direction == Direction.IN).order_by(m.id.desc()).limit(1)
    ).first()
    row = inbound or session.execute(base.order_by(m.id.desc()).limit(1)).first()
    address = _Address(row.channel, row.our_address, row.their_address_encrypted) if row else None
    return address, inbound.created_at if inbound else None


def plan_reply(
    contact: Contact,
    address: _Address | None,
    last_wrote_at: datetime | None,
    *,
    now: datetime,
    quiet_hours: tuple[int, int],
    template_sid: str,
) -> ReplyPlan:
    """The rules of a staff reply, in one place: who may get one, when, and in what form."""
    # A caller is answered by text, from the number they called.
    channel = written_reply_channel(channel_named(address.channel)) if address else None
    wrote_recently = last_wrote_at is not None and now - last_wrote_at <= WROTE_RECENTLY
    allowed = next_allowed(now, contact.timezone, quiet_hours)
    in_quiet_hours = allowed > now
    held_until = allowed if in_quiet_hours and not wrote_recently else None
    is_template_only, closes_at = False, None
    if channel is not None and channel.window is not None:
        # The window must still be open when the reply goes, not only now.
        goes_at = held_until or now
        if channel.is_window_open(contact.last_whatsapp_inbound_at, goes_at):
            assert contact.last_whatsapp_inbound_at is not None
            closes_at = contact.last_whatsapp_inbound_at + channel.window
        else:
            is_template_only = True
    refusal = None
    if contact.erased_at is not None:
        refusal = "erased"
    elif contact.is_opted_out:
        refusal = "opted_out"
    elif address is None:
        refusal = "no_address"
    elif is_template_only and not template_sid:
        refusal = "no_template"
    return ReplyPlan(
        refusal=refusal,
        channel=channel.name if channel else None,
        timezone=contact.timezone,
        in_quiet_hours=in_quiet_hours,
        wrote_recently=wrote_recently,
        held_until=held_until,
        is_template_only=is_template_only,
        window_closes_at=closes_at,
    )


def thread_view(
    session: Session,
    vault: Vault,
    contact_id: int,
    *,
    now: datetime,
    quiet_hours: tuple[int, int],
    template_sid: str,
    before: int | None = None,
) -> ThreadView:
    """One contact's thread: its latest THREAD_MESSAGES messages in order (both directions, as
    text), or those before the message `before`, the notes written among them, and what a
    reply written now would do. ContactNotFoundError for no such (or a simulated) contact."""
    contact = _contact(session, contact_id)
    cipher = _cipher(vault, contact.key_encrypted)
    m = _messages.c
    newest = session.scalar(select(func.max(m.id)).where(m.contact_id == contact_id))
    sender = _users.alias("sender")
    rows = list(
        session.execute(
            select(
                m.id,
                m.direction,
                m.created_at,
                m.channel,
                m.body,
                m.media_url,
                m.kind,
                m.is_free_text,
                m.is_urgent,
                m.urgent_topic,
                m.status,
                m.error_code,
                m.send_after,
                m.content_sid,
                m.handled_at,
                sender.c.email.label("sent_by"),
            )
            .select_from(_messages.outerjoin(sender, sender.c.id == m.sent_by_id))
            .where(m.contact_id == contact_id, *([m.id < before] if before is not None else []))
            .order_by(m.id.desc())
            .limit(THREAD_MESSAGES)
        )
    )
    rows.reverse()
    earlier = 0
    if len(rows) == THREAD_MESSAGES:
        earlier = int(
            session.scalar(
                select(func.count()).where(m.contact_id == contact_id, m.id < rows[0].id)
            )
            or 0
        )
    # The notes written among the messages shown: each note on one page only.
    since = rows[0].created_at if earlier and rows else None
    until = None
    if before is not None:
        until = session.scalar(
            select(func.min(m.created_at)).where(m.contact_id == contact_id, m.id >= before)
        )
    text_answers = _text_answer_messages(session, [contact_id])
    text_answer_ids = (
        {row.id for row in session.execute(text_answers)} if text_answers is not None else set()
    )
    entries: list[ThreadMessage | ThreadNoteView] = []
    for row in rows:
        category = _category(row, text_answer_ids)
        media = None
        if row.media_url and cipher is not None:
            url = cipher.decrypt(row.media_url)
            media = url if url.startswith("https://") else None
        entries.append(
            ThreadMessage(
                id=row.id,
                direction=row.direction,
                at=row.created_at,
                channel=row.channel,
                text=message_text(cipher, row.direction, row.kind, row.body),
                media_url=media,
                has_media=row.media_url is not None,
                category=category,
                is_waiting=category is not None and row.handled_at is None,
                topic=row.urgent_topic,
                kind=row.kind,
                status=row.status,
                error_code=row.error_code,
                sent_by=row.sent_by,
                send_after=row.send_after,
                is_template=row.content_sid is not None and row.kind == STAFF_REPLY,
            )
        )
    entries.extend(
        note
        for note in _thread_notes(session, vault, cipher, contact_id)
        if (since is None or note.at >= since) and (until is None or note.at < until)
    )
    entries.sort(key=lambda entry: (entry.at, entry.is_note, entry.id))
    thread = session.get(Thread, contact_id)
    users = _emails(session, thread)
    address, last_wrote_at = _reply_address(session, contact_id)
    return ThreadView(
        contact_id=contact_id,
        masked_number=_masked(cipher, contact.phone_encrypted),
        language=contact.language,
        is_opted_out=contact.is_opted_out,
        is_erased=contact.erased_at is not None,
        entries=entries,
        earlier=earlier,
        first_message_id=rows[0].id if rows else None,
        is_older_page=before is not None,
        last_message_id=newest,
        is_open=is_thread_open(session, contact_id),
        assigned_to_id=thread.assigned_to_id if thread else None,
        assigned_to=users.get(thread.assigned_to_id or 0) if thread else None,
        handled_at=thread.handled_at if thread else None,
        handled_by=users.get(thread.handled_by_id or 0) if thread else None,
        plan=plan_reply(
            contact,
            address,
            last_wrote_at,
            now=now,
            quiet_hours=quiet_hours,
            template_sid=template_sid,
        ),
    )


def _category(row: Any, text_answer_ids: set[int]) -> str | None:
    if row.direction == Direction.OUT:
        return CATEGORIES[UNCONFIRMED] if row.status == MessageStatus.UNCONFIRMED else None
    if row.is_urgent:
        return CATEGORIES[URGENT]
    if row.is_free_text:
        return CATEGORIES[FREE_TEXT]
    if row.id in text_answer_ids:
        return CATEGORIES[TEXT_ANSWER]
    if row.media_url is not None and row.direction == Direction.IN:
        return CATEGORIES[MEDIA]
    return None


def is_thread_open(session: Session, contact_id: int) -> bool:
    """Whether anything in the contact's thread waits for a person."""
    waiting = _waiting(session, [contact_id]).subquery()
    return session.scalar(select(waiting.c.contact_id).limit(1)) is not None


def _thread_notes(
    session: Session, vault: Vault, cipher: ContactCipher | None, contact_id: int
) -> list[ThreadNoteView]:
    author = _users.alias("author")
    n = _notes.c
    rows = session.execute(
        select(n.id, n.created_at, n.kind, n.topic, n.body, author.c.email)
        .select_from(_notes.outerjoin(author, author.c.id == n.author_id))
        .where(n.contact_id == contact_id)
        .order_by(n.id)
    ).all()
    return [
        ThreadNoteView(
            id=row.id,
            at=row.created_at,
            kind=row.kind,
            topic=row.topic,
            text=cipher.decrypt(row.body) if row.body and cipher is not None else None,
            author=row.email,
        )
        for row in rows
    ]


def _emails(session: Session, thread: Thread | None) -> dict[int, str]:
    if thread is None:
        return {}
    ids = [i for i in (thread.assigned_to_id, thread.handled_by_id) if i is not None]
    if not ids:
        return {}
    rows = session.execute(select(User.id, User.email).where(User.id.in_(ids)))
    return {row.id: row.email for row in rows}


def staff_members(session: Session) -> list[tuple[int, str]]:
    """Who a thread can be assigned to: active staff and admins, by e-mail."""
    rows = session.execute(
        select(User.id, User.email)
        .where(User.is_active.is_(True), User.role.in_(STAFF_ROLES))
        .order_by(User.email)
    )
    return [(row.id, row.email) for row in rows]


# -- what staff do --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reply:
    message_id: int
    held_until: datetime | None
    is_template: bool
    send_now: list[int]  # rows to hand to the reply sender after the commit


def write_reply(
    session: Session,
    vault: Vault,
    contact_id: int,
    *,
    user_id: int,
    actor: str,
    text: str,
    use_template: bool,
    now: datetime,
    quiet_hours: tuple[int, int],
    template_sid: str,
    template_words: Callable[[str | None], str | None],
) -> Reply:
    """A staff reply as an outbound row on the `replies` queue, under the plan's rules;
    InboxError (with the reason) when it may not go. The caller commits, then hands
    `send_now` to the reply sender. `template_words(language)`: the reply template's words."""
    contact = _contact(session, contact_id, for_update=True)
    address, last_wrote_at = _reply_address(session, contact_id)
    plan = plan_reply(
        contact,
        address,
        last_wrote_at,
        now=now,
        quiet_hours=quiet_hours,
        template_sid=template_sid,
    )
    if plan.refusal is not None:
        raise InboxError(plan.refusal)
    assert address is not None
    if use_template and plan.channel != "whatsapp":
        raise InboxError("template_whatsapp_only")
    if plan.is_template_only and not use_template:
        raise InboxError("template_only")
    if use_template:
        # The template's own words, kept as the row's text: shown in the thread, and sent as
        # text if the worker writes (opening the window) before the row goes.
        text = template_words(contact.language) or ""
    else:
        text = text.strip()
        if not text:
            raise InboxError("empty")
        if len(text) > MAX_REPLY:
            raise InboxError("too_long")
    cipher = vault.contact_cipher(contact.key_encrypted)
    assert plan.channel is not None
    row = message_row(
        direction=Direction.OUT,
        channel=plan.channel,
        our_address=address.our_address,
        their_address_encrypted=address.their_address_encrypted,
        body=cipher.encrypt(text) if text else "",
        kind=STAFF_REPLY,
        created_at=now,
        contact_id=contact_id,
        queue=QueueName.REPLIES,
        content_sid=template_sid if use_template else None,
        send_after=plan.held_until,
    )
    released: list[int] = []
    if plan.held_until is None:
        # Replies held for quiet hours may go now too (the worker is awake, or the night is
        # over), before this one: a contact's replies go in the order they were written.
        released = _release_held(session, now, _messages.c.contact_id == contact_id)
    message = Message(**row, sent_by_id=user_id)
    session.add(message)
    session.flush()
    _audit(
        session,
        user_id=user_id,
        actor=actor,
        action="inbox_reply",
        contact_id=contact_id,
        message=str(message.id),
        channel=plan.channel,
        template="yes" if use_template else "no",
        held_until=plan.held_until.isoformat() if plan.held_until else "",
    )
    log.info(
        "contact-%s: staff reply %s by user %s%s%s",
        contact_id,
        message.id,
        user_id,
        ", the reply template" if use_template else "",
        f", held until {plan.held_until.isoformat()}" if plan.held_until else "",
    )
    return Reply(
        message_id=message.id,
        held_until=plan.held_until,
        is_template=use_template,
        send_now=[*released, message.id] if plan.held_until is None else [],
    )


def _release_held(session: Session, now: datetime, *where: ColumnElement[bool]) -> list[int]:
    """Let staff replies held for quiet hours (and matching `where`) go now, oldest first:
    their ids, for the reply sender once committed."""
    m = _messages.c
    held = list(
        session.scalars(
            select(m.id)
            .where(
                m.direction == Direction.OUT,
                m.status == MessageStatus.PENDING,
                m.kind == STAFF_REPLY,
                m.send_after > now,
                *where,
            )
            .order_by(m.id)
        )
    )
    if held:
        session.execute(update(Message).where(Message.id.in_(held)).values(send_after=None))
    return held


def release_held_replies(session: Session, *, now: datetime) -> list[int]:
    """Staff replies held for quiet hours whose worker has written since they were held, within
    WROTE_RECENTLY: a reply written now would go at once, so these go now too (the clock's
    round, which hands them to the sender). Their ids."""
    m = _messages.c
    inbound = _messages.alias("inbound")
    wrote = exists().where(
        inbound.c.contact_id == m.contact_id,
        inbound.c.direction == Direction.IN,
        inbound.c.created_at > m.created_at,
        inbound.c.created_at > now - WROTE_RECENTLY,
    )
    held = _release_held(session, now, wrote)
    if held:
        log.info(
            "inbox: %d held staff repl%s released: the worker wrote",
            len(held),
            "y" if len(held) == 1 else "ies",
        )
    return held


def add_note(
    session: Session,
    vault: Vault,
    contact_id: int,
    *,
    user_id: int,
    actor: str,
    text: str,
    now: datetime,
) -> int:
    """An internal note on the thread (workers never see notes), under the contact's key."""
    contact = _contact(session, contact_id)
    cipher = _cipher(vault, contact.key_encrypted)
    if cipher is None:
        raise InboxError("erased")
    text = text.strip()
    if not text:
        raise InboxError("empty")
    if len(text) > MAX_NOTE:
        raise InboxError("too_long")
    note = ThreadNote(
        contact_id=contact_id,
        kind="note",
        body=cipher.encrypt(text),
        author_id=user_id,
        created_at=now,
    )
    session.add(note)
    session.flush()
    _audit(
        session,
        user_id=user_id,
        actor=actor,
        action="inbox_note",
        contact_id=contact_id,
        note=str(note.id),
    )
    log.info("contact-%s: note %s by user %s", contact_id, note.id, user_id)
    return note.id


def _thread_for_update(session: Session, contact_id: int) -> Thread:
    """The contact's thread row, made when missing (two at once: one is made, both use it)."""
    dialect = session.get_bind().dialect.name
    session.execute(
        insert_ignoring_conflicts(dialect, _threads, "contact_id").values(contact_id=contact_id)
    )
    thread = session.get(Thread, contact_id, with_for_update=True, populate_existing=True)
    assert thread is not None
    return thread


def assign_thread(
    session: Session,
    contact_id: int,
    *,
    assignee_id: int | None,
    user_id: int,
    actor: str,
    now: datetime,
) -> str | None:
    """Give the thread to a staff member (None: to nobody); their e-mail."""
    _contact(session, contact_id)
    email = None
    if assignee_id is not None:
        assignee = session.get(User, assignee_id)
        if assignee is None or not assignee.is_active or assignee.role not in STAFF_ROLES:
            raise InboxError("assignee")
        email = assignee.email
    thread = _thread_for_update(session, contact_id)
    thread.assigned_to_id = assignee_id
    thread.assigned_at = now if assignee_id is not None else None
    session.flush()
    _audit(
        session,
        user_id=user_id,
        actor=actor,
        action="inbox_assign",
        contact_id=contact_id,
        assigned_to=email or "nobody",
    )
    log.info("contact-%s: thread assigned to user %s by user %s", contact_id, assignee_id, user_id)
    return email


def mark_handled(
    session: Session,
    contact_id: int,
    *,
    through: int | None,
    user_id: int,
    actor: str,
    now: datetime,
) -> int:
    """Mark handled what the person saw: the thread's messages up to `through` (the last one
    their page showed; all of them when None). One that arrived since keeps the thread open,
    and so does a send that is still on its way and later turns out unconfirmed. Returns the
    last message id covered."""
    _contact(session, contact_id)
    m = _messages.c
    last = session.scalar(select(func.max(m.id)).where(m.contact_id == contact_id)) or 0
    covered = min(through, last) if through is not None else last
    covered_at = session.scalar(
        select(func.max(m.created_at)).where(m.contact_id == contact_id, m.id <= covered)
    )
    session.execute(
        update(Message)
        .where(
            Message.contact_id == contact_id,
            Message.id <= covered,
            Message.handled_at.is_(None),
            or_(
                Message.direction == Direction.IN,
                Message.status == MessageStatus.UNCONFIRMED,
            ),
        )
        .values(handled_at=now)
    )
    thread = _thread_for_update(session, contact_id)
    thread.handled_at = now
    thread.handled_by_id = user_id
    # Text answers are read from their answer rows: those given up to here are handled.
    thread.handled_through_at = covered_at
    session.flush()
    _audit(
        session,
        user_id=user_id,
        actor=actor,
        action="inbox_handled",
        contact_id=contact_id,
        through=str(covered),
    )
    log.info("contact-%s: handled through message %s by user %s", contact_id, covered, user_id)
    return covered


def _audit(
    session: Session,
    *,
    user_id: int,
    actor: str,
    action: str,
    contact_id: int,
    **parameters: str,
) -> None:
    """One line of the audit trail (as services/accounts.py writes them): who did what to
    which thread; never the text of a reply or a note."""
    session.add(
        AuditEntry(
            user_id=user_id,
            actor=actor,
            action=action,
            survey_id=None,
            parameters={"contact": f"contact-{contact_id}", **parameters},
        )
    )
    session.flush()
