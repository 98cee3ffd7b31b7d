"""One inbound message through the conversation engine: the service the webhook and CLI share."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    Connection,
    Insert,
    Row,
    Select,
    Table,
    bindparam,
    case,
    exists,
    false,
    func,
    insert,
    literal,
    literal_column,
    select,
    type_coerce,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB, aggregate_order_by
from sqlalchemy.orm import Session

from engage.channels import channel_named
from engage.db import insert_ignoring_conflicts, table_of, utcnow
from engage.models import Answer, Contact, Conversation, Message
from engage.models.contacts import new_record_key
from engage.privacy import ContactCipher, Sender, Vault, has_one_form
from engage.services import erasure
from engage.services.rows import conversation_row, message_row
from engage.services.surveys import DatabaseCatalog
from engage.sql import StepStatement
from engage.states import Direction, MessageStatus
from engage.survey.engine import (
    AnswerRecord,
    ContactState,
    ConversationState,
    Engine,
    Outcome,
    SurveyCatalog,
)
from engage.survey.safety import safety_words
from engage.survey.texts import SystemTexts

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Settings:
    """What the conversation service needs from the app's configuration."""

    vault: Vault
    locales_dir: Path
    org_name: str = "Engage"
    idle_hours: int = 72
    # The surveys the engine may run; None: the published ones (the simulator runs a draft).
    catalog: Callable[[Session | Connection], SurveyCatalog] | None = None


@dataclass
class InboundResult:
    message_id: int | None
    contact_id: int | None = None
    is_duplicate: bool = False
    outbound_ids: list[int] = field(default_factory=list)
    replies: list[str] = field(default_factory=list)
    # The inbound message when it was flagged urgent: its alert goes out after the commit.
    urgent_message_id: int | None = None
    # The contact erased itself (BORRAR): the number's hash, for the spool's dead letters.
    erased: erasure.Erased | None = None
    # What the step decided and the contact after it (a call says it: services/voice.py).
    outcome: Outcome | None = None
    contact: ContactState | None = None


# Texts never change while a process runs: one SystemTexts per catalog, language and name.
_system_texts = lru_cache(maxsize=64)(SystemTexts)


def make_engine(session: Session | Connection, settings: Settings) -> Engine:
    def texts_for(lang: str) -> SystemTexts:
        return _system_texts(settings.locales_dir, lang, settings.org_name)

    return Engine(
        (settings.catalog or DatabaseCatalog)(session),
        texts=texts_for,
        idle=timedelta(hours=settings.idle_hours),
        safety=safety_words(settings.locales_dir),
    )


class RepeatedMessageError(RuntimeError):
    """Another step stored this MessageSid first, at the same instant: roll this one back."""


_contacts = table_of(Contact)
_conversations = table_of(Conversation)
_answers = table_of(Answer)
_messages = table_of(Message)

# The step runs on every message: its statements are built once per dialect (engage/sql.py).
_CONTACT_STATE = (
    _contacts.c.id,
    _contacts.c.language,
    _contacts.c.has_consented,
    _contacts.c.is_opted_out,
    _contacts.c.is_menu_open,
    _contacts.c.is_simulated,
    _contacts.c.profile,
    _contacts.c.profile_updated_at,
    _contacts.c.last_nudged_at,
    _contacts.c.last_safety_help_at,
    _contacts.c.phone_encrypted,
    _contacts.c.key_encrypted,
    _contacts.c.record_key,
    _contacts.c.erase_requested_at,
)
_LOCK_CONTACT = StepStatement(
    select(
        *_CONTACT_STATE,
        exists().where(_messages.c.sid == bindparam("sid")).label("is_repeat"),
        # Anything sent to the contact since BORRAR asked for confirmation lapses it (a row
        # still waiting for its time is not sent yet). Asked only while BORRAR waits: a CASE
        # branch not taken is not evaluated.
        case(
            (
                _contacts.c.erase_requested_at.is_not(None),
                exists().where(
                    _messages.c.contact_id == _contacts.c.id,
                    _messages.c.direction == Direction.OUT,
                    _messages.c.created_at > _contacts.c.erase_requested_at,
                    _messages.c.status.not_in((MessageStatus.PENDING, MessageStatus.CANCELLED)),
                ),
            ),
            else_=false(),
        ).label("has_sent_since_erase_request"),
    )
    .where(_contacts.c.phone_hash == bindparam("phone_hash"))
    .with_for_update(of=_contacts)
)
# A number erased before makes a new contact; one that had opted out stays opted out.
_CREATE_CONTACT = StepStatement(
    lambda dialect: (
        insert_ignoring_conflicts(dialect, _contacts, "phone_hash")
        .values(is_opted_out=erasure.stays_opted_out(bindparam("b_phone_hash")))
        .returning(
            *_CONTACT_STATE,
            literal(False).label("is_repeat"),
            literal(False).label("has_sent_since_erase_request"),
        )
    ),
)
# What the step reads after the lock: the contact's conversations, newest first, each with its
# latest answers (question, value) as one JSON array: the open conversation's values, and what a
# question answered again must mark as no longer latest. A statement of its own, after the
# lock's, so that it sees what the contact's previous step committed.
_CONTACT_ID = (
    select(_contacts.c.id).where(_contacts.c.phone_hash == bindparam("phone_hash"))
).scalar_subquery()


def _conversations_with_answers(dialect_name: str) -> Select[Any]:
    if dialect_name == "postgresql":
        pairs = func.json_agg(func.json_build_array(_answers.c.question_id, _answers.c.value))
    else:
        pairs = func.json_group_array(
            func.json_array(_answers.c.question_id, func.json(_answers.c.value))
        )
    latest = (
        select(pairs)
        .where(_answers.c.conversation_id == _conversations.c.id, _answers.c.is_latest.is_(True))
        .scalar_subquery()
    )
    return (
        select(
            _conversations.c.id,
            _conversations.c.survey_id,
            _conversations.c.version,
            _conversations.c.language,
            _conversations.c.status,
            _conversations.c.pending,
            _conversations.c.misses,
            _conversations.c.consent_tries,
            _conversations.c.started_at,
            _conversations.c.last_activity_at,
            type_coerce(latest, JSON).label("latest_answers"),
        )
        .where(_conversations.c.contact_id == _CONTACT_ID)
        .order_by(_conversations.c.id.desc())
    )


_CONVERSATIONS = StepStatement(_conversations_with_answers)
_SUPERSEDE = StepStatement(
    update(_answers)
    .where(
        _answers.c.contact_id == bindparam("b_contact_id"),
        _answers.c.survey_id == bindparam("b_survey_id"),
        _answers.c.question_id == bindparam("b_question_id"),
        _answers.c.is_latest.is_(True),
    )
    .values(is_latest=False)
)
_ANSWER_COLUMNS = (
    "conversation_id",
    "contact_id",
    "survey_id",
    "version",
    "question_id",
    "status",
    "value",
    "raw_text",
    "language",
    "profile",
    "is_simulated",
    "is_latest",
    "record_key",
    "answered_at",
)
_INSERT_ANSWER = StepStatement(insert(_answers))
# UPDATE table SET (the columns given) WHERE id = :b_row_id, per table.
_UPDATES = {
    table: StepStatement(update(table).where(table.c.id == bindparam("b_row_id")))
    for table in (_contacts, _conversations)
}
_INSERT_CONVERSATION = StepStatement(insert(_conversations).returning(_conversations.c.id))


# The inbound row claims its MessageSid: skipped (nothing returned) when the SID is stored.
_INSERT_INBOUND = StepStatement(
    lambda dialect: insert_ignoring_conflicts(dialect, _messages, "sid").returning(_messages.c.id)
)
# The replies, one parameter set each: SQLAlchemy sends them as one multi-row INSERT
# ("insertmanyvalues"), its statement compiled once and cached.
_INSERT_REPLIES = insert(_messages).returning(_messages.c.id, sort_by_parameter_order=True)


def _replies_from_json(columns: tuple[str, ...]) -> Insert:
    """PostgreSQL: INSERT the replies given as one JSON array (`:replies`), in its order,
    returning their ids and places. One parameter for any number of replies keeps the step's
    statement one shape, and small enough for the driver's prepared-statement cache."""
    rows = func.jsonb_populate_recordset(
        literal_column(f"NULL::{_messages.name}"), bindparam("replies", type_=JSONB)
    ).table_valued(*columns, with_ordinality="ordinality")
    return (
        insert(_messages)
        .from_select(
            list(columns),
            select(*(rows.c[c] for c in columns)).order_by(rows.c.ordinality),
            include_defaults=False,  # every column is in the rows (services/rows.py)
        )
        .returning(_messages.c.id, _messages.c.sequence)
    )


def _replies_as_json(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Reply rows as `_replies_from_json` reads them (times as ISO 8601)."""
    return [
        {
            name: value.isoformat() if isinstance(value, datetime) else value
            for name, value in row.items()
        }
        for row in rows
    ]


@lru_cache(maxsize=256)
def _writes_then_inbound(
    updates: tuple[tuple[Table, tuple[str, ...]], ...],
    supersedes: int,
    answers: int,
    message_columns: tuple[str, ...],
    reply_columns: tuple[str, ...] | None,
) -> StepStatement:
    """PostgreSQL: the step's updates, superseded answers, new answers and replies as
    data-modifying CTEs of the inbound row's INSERT: the writes in one statement instead of one
    each.

    They all run on the statement's snapshot, on different rows: a superseded answer is one
    the step read, never one it inserts. Each CTE writes one row (the replies' one JSON
    parameter, any number), so the statement is cached once per shape. Parameters:
    `u{i}_{column}` (and `u{i}_row_id`), `s{i}_{contact_id|survey_id|question_id}`,
    `a{i}_{column}`, `m_{column}`, `replies`. It returns the inbound row's id and, as
    `reply_ids`, the replies' ids in their order; nothing when the MessageSid is already stored
    (the caller then rolls back).
    """

    def build(dialect_name: str) -> Insert:
        ctes = [
            update(table)
            .where(table.c.id == bindparam(f"u{i}_row_id"))
            .values({c: bindparam(f"u{i}_{c}") for c in columns})
            .cte(f"u{i}")
            for i, (table, columns) in enumerate(updates)
        ]
        ctes += [
            update(_answers)
            .where(
                _answers.c.contact_id == bindparam(f"s{i}_contact_id"),
                _answers.c.survey_id == bindparam(f"s{i}_survey_id"),
                _answers.c.question_id == bindparam(f"s{i}_question_id"),
                _answers.c.is_latest.is_(True),
            )
            .values(is_latest=False)
            .cte(f"s{i}")
            for i in range(supersedes)
        ]
        ctes += [
            insert(_answers)
            .values({c: bindparam(f"a{i}_{c}", type_=_answers.c[c].type) for c in _ANSWER_COLUMNS})
            .cte(f"a{i}")
            for i in range(answers)
        ]
        reply_ids: Any = literal(None)
        if reply_columns is not None:
            replies = _replies_from_json(reply_columns).cte("r")
            ctes.append(replies)
            reply_ids = select(
                func.json_agg(aggregate_order_by(replies.c.id, replies.c.sequence))
            ).scalar_subquery()
        return (
            insert_ignoring_conflicts(dialect_name, _messages, "sid")
            .values({c: bindparam(f"m_{c}", type_=_messages.c[c].type) for c in message_columns})
            .returning(_messages.c.id, type_coerce(reply_ids, JSON).label("reply_ids"))
            .add_cte(*ctes)
        )

    return StepStatement(build)


class _Writes:
    """What the step writes besides new conversations: one statement each as it comes, or, on
    PostgreSQL, all in the inbound row's INSERT (`_writes_then_inbound`)."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.is_merged = connection.dialect.name == "postgresql"
        self.updates: list[tuple[Table, tuple[str, ...], dict[str, Any]]] = []
        self.supersedes: list[dict[str, Any]] = []
        self.answers: list[dict[str, Any]] = []

    def update(self, table: Table, row_id: int, values: dict[str, Any]) -> None:
        columns = tuple(sorted(values))
        if not self.is_merged:
            _UPDATES[table].rows(self.connection, {**values, "b_row_id": row_id})
            return
        self.updates.append((table, columns, {**values, "row_id": row_id}))

    def supersede(self, contact_id: int, survey_id: str, question_id: str) -> None:
        if not self.is_merged:
            _SUPERSEDE.rows(
                self.connection,
                {
                    "b_contact_id": contact_id,
                    "b_survey_id": survey_id,
                    "b_question_id": question_id,
                },
            )
            return
        self.supersedes.append(
            {"contact_id": contact_id, "survey_id": survey_id, "question_id": question_id}
        )

    def answer(self, row: dict[str, Any]) -> None:
        if not self.is_merged:
            _INSERT_ANSWER.rows(self.connection, row)
            return
        self.answers.append(row)

    def inbound(
        self, row: dict[str, Any], replies: list[dict[str, Any]]
    ) -> tuple[int | None, list[int]]:
        """Insert the inbound row (with everything held back), then its replies: the inbound
        id, or None when its MessageSid is already stored, and the replies' ids in order."""
        if not (self.is_merged and (self.updates or self.supersedes or self.answers or replies)):
            found = _INSERT_INBOUND.first(self.connection, row)
            if found is None:
                return None, []
            return found.id, self.replies(replies)
        params = {f"m_{name}": value for name, value in row.items()}
        for i, (_table, _columns, values) in enumerate(self.updates):
            params.update({f"u{i}_{name}": value for name, value in values.items()})
        for i, values in enumerate(self.supersedes):
            params.update({f"s{i}_{name}": value for name, value in values.items()})
        for i, values in enumerate(self.answers):
            params.update({f"a{i}_{name}": value for name, value in values.items()})
        if replies:
            params["replies"] = _replies_as_json(replies)
        statement = _writes_then_inbound(
            tuple((table, cols) for table, cols, _values in self.updates),
            len(self.supersedes),
            len(self.answers),
            tuple(row),
            tuple(replies[0]) if replies else None,
        )
        found = statement.first(self.connection, params)
        if found is None:
            return None, []
        return found.id, list(found.reply_ids or ())

    def replies(self, rows: list[dict[str, Any]]) -> list[int]:
        """Insert the replies: their ids, in order."""
        if not rows:
            return []
        result = self.connection.execute(_INSERT_REPLIES, rows)
        return list(result.scalars())


# The contact fields the engine may change, written back only when they did.
_CONTACT_FIELDS = (
    "language",
    "has_consented",
    "is_opted_out",
    "is_menu_open",
    "profile",
    "profile_updated_at",
    "last_nudged_at",
    "last_safety_help_at",
)


def handle_inbound(
    connection: Connection,
    settings: Settings,
    *,
    sender: Sender,
    to: str,
    body: str,
    sid: str | None = None,
    media_url: str | None = None,
    now: datetime | None = None,
    is_simulated: bool = False,
    twilio_confirmed: bool = False,
) -> InboundResult:
    """Store one inbound message, run the conversation step, write answers, state and outbox.

    The step runs on every message, so it is written in SQL statements, not ORM objects: lock
    (or create) the contact, read its conversations and latest answers, run the engine, write
    what changed. A repeated MessageSid is seen when the contact is locked; two copies posted at
    the same instant meet at the inbound row's unique SID, and the later raises
    RepeatedMessageError (its transaction rolls back). The caller begins and commits the
    transaction (a Core one: the step needs no ORM session).
    """
    now = now or utcnow()
    vault = settings.vault
    inbound = message_row(
        direction=Direction.IN,
        sid=sid,
        channel=sender.channel,
        our_address=to,
        their_address_encrypted=None,
        body=body,
        media_url=media_url,
        is_simulated=is_simulated,
        created_at=now,
        kind="not_a_phone",
    )
    if not sender.is_phone:
        inbound["their_address_encrypted"] = vault.encrypt(sender.address)
        message_id, _ = _insert_messages(_Writes(connection), inbound, [])
        if message_id is None:
            log.info("inbound %s: repeat, ignored", sid)
            return InboundResult(message_id=None, is_duplicate=True)
        log.info("message %s: sender is not a phone number; stored, no reply", message_id)
        return InboundResult(message_id=message_id)

    contact, is_new, is_repeat, history = _lock_contact(
        connection, vault, sender.e164 or "", sid=sid, is_simulated=is_simulated, now=now
    )
    if is_repeat:
        log.info("inbound %s: repeat, ignored", sid)
        return InboundResult(message_id=None, is_duplicate=True)
    # What the worker wrote and every copy of its number: under the contact's own key.
    cipher = vault.contact_cipher(contact.key_encrypted)
    history.decrypt(cipher)
    # An SMS sender's address is the contact's number: its ciphertext serves (as for campaigns)
    # unless the number has two forms and the contact may have been stored with the other.
    inbound["their_address_encrypted"] = (
        contact.phone_encrypted
        if sender.address == sender.e164 and has_one_form(sender.address)
        else cipher.encrypt(sender.address)
    )
    inbound["body"] = cipher.encrypt(body)
    inbound["media_url"] = cipher.encrypt_optional(media_url)
    state = ContactState(
        language=contact.language,
        has_consented=contact.has_consented,
        is_opted_out=contact.is_opted_out,
        is_menu_open=contact.is_menu_open,
        is_new=is_new,
        profile=dict(contact.profile or {}),
        profile_updated_at=dict(contact.profile_updated_at or {}),
        completed_surveys=history.completed_surveys,
        last_nudged_at=contact.last_nudged_at,
        last_safety_help_at=contact.last_safety_help_at,
        erase_requested=erasure.is_confirmation_pending(
            contact.erase_requested_at, contact.has_sent_since_erase_request, now
        ),
    )
    active = history.active
    conv_state = history.conversation_state()
    outcome = make_engine(connection, settings).step(
        state,
        conv_state,
        body,
        now=now,
        channel=sender.channel,
        has_media=media_url is not None,
        twilio_confirmed=twilio_confirmed,
    )
    writes = _Writes(connection)
    _write_contact(
        writes, contact, state, now, opens_window=channel_named(sender.channel).window is not None
    )
    ids = _write_conversations(writes, contact, state, outcome, sender.channel, now, cipher)
    if outcome.answers:
        _write_answers(writes, contact, state, outcome.answers, ids, history.latest, now, cipher)
    current = ids[id(outcome.conversation)] if outcome.conversation else None
    inbound.update(
        contact_id=contact.id,
        conversation_id=current or (active.id if active is not None else None),
        kind=outcome.kind,
        is_free_text=outcome.is_free_text,
        is_urgent=outcome.urgent_topic is not None,
        urgent_topic=outcome.urgent_topic,
    )
    described = channel_named(sender.channel)
    spoken = described.is_spoken
    replies = [
        message_row(
            direction=Direction.OUT,
            channel=sender.channel,
            our_address=to,
            their_address_encrypted=inbound["their_address_encrypted"],
            body=text,
            kind=outcome.kind,
            created_at=now,
            contact_id=contact.id,
            conversation_id=inbound["conversation_id"],
            is_simulated=is_simulated,
            sequence=index,
        )
        for index, text in enumerate(outcome.replies)
        if not spoken
    ]
    if replies and outcome.audio:
        # The last reply asks what the recording says: it carries it (encrypted as any media).
        replies[-1]["media_url"] = cipher.encrypt(f"/media/{outcome.audio}")
    if outcome.erase:
        return _erase_by_sender(writes, settings, inbound, replies, sender, contact.id, now)
    message_id, outbound_ids = _insert_messages(writes, inbound, replies)
    if message_id is None:
        raise RepeatedMessageError(f"inbound {sid}: stored by another step meanwhile")
    # Never the words that raised a flag: the kind and whether it is urgent.
    log.info(
        "message %s: %s from contact-%s, %d repl%s%s",
        message_id,
        outcome.kind,
        contact.id,
        len(outbound_ids),
        "y" if len(outbound_ids) == 1 else "ies",
        ", urgent" if outcome.urgent_topic else "",
    )
    return InboundResult(
        message_id=message_id,
        contact_id=contact.id,
        outbound_ids=outbound_ids,
        replies=list(outcome.replies),
        urgent_message_id=message_id if outcome.urgent_topic else None,
        outcome=outcome,
        contact=state,
    )


def _erase_by_sender(
    writes: _Writes,
    settings: Settings,
    inbound: dict[str, Any],
    replies: list[dict[str, Any]],
    sender: Sender,
    contact_id: int,
    now: datetime,
) -> InboundResult:
    """BORRAR confirmed (or sent while opted out): store the message, erase the contact, and
    send the last confirmation, if any, to the address the request came from, linked to
    nobody (its address is forgotten once Twilio has answered for it)."""
    message_id, _ = _insert_messages(writes, inbound, [])
    if message_id is None:
        raise RepeatedMessageError(f"inbound {inbound['sid']}: stored by another step meanwhile")
    connection = writes.connection
    erased = erasure.erase_contact(connection, contact_id, by=erasure.BY_SENDER, now=now)
    outbound_ids: list[int] = []
    if replies:
        confirmation = [
            {
                **reply,
                "contact_id": None,
                "conversation_id": None,
                "kind": erasure.ERASED_KIND,
                "their_address_encrypted": settings.vault.encrypt(sender.address),
            }
            for reply in replies
        ]
        _, outbound_ids = _insert_messages(_Writes(connection), None, confirmation)
    log.info("message %s: erase from contact-%s", message_id, contact_id)
    return InboundResult(
        message_id=message_id, contact_id=contact_id, outbound_ids=outbound_ids, erased=erased
    )


def _lock_contact(
    connection: Connection,
    vault: Vault,
    e164: str,
    *,
    sid: str | None,
    is_simulated: bool,
    now: datetime,
) -> tuple[Any, bool, bool, _History]:
    """The contact for a number, locked for this transaction (created when new); whether it
    is new; whether this MessageSid is already stored; and its conversations and answers."""
    phone_hash = vault.phone_hash(e164)
    row = _LOCK_CONTACT.first(connection, {"phone_hash": phone_hash, "sid": sid})
    if row is not None and row.is_repeat:
        return row, False, True, _History([])  # nothing more is read: the step ends here
    if row is not None:
        history = _History(_CONVERSATIONS.rows(connection, {"phone_hash": phone_hash}))
        return row, False, False, history
    key_encrypted, cipher = vault.new_contact_key()
    created = _CREATE_CONTACT.first(
        connection,
        {
            "phone_hash": phone_hash,
            "b_phone_hash": phone_hash,
            "phone_encrypted": cipher.encrypt(e164),
            "key_encrypted": key_encrypted,
            "has_consented": False,
            "is_menu_open": False,
            "is_simulated": is_simulated,
            "profile": {},
            "profile_updated_at": {},
            "record_key": new_record_key(),
            "created_at": now,
            "updated_at": now,
        },
    )
    if created is not None:
        return created, True, False, _History([])  # a contact of this step's: nothing yet
    # Another step created it at the same instant (and has committed): take theirs, locked,
    # with what that step wrote.
    return _lock_contact(connection, vault, e164, sid=sid, is_simulated=is_simulated, now=now)


class _History:
    """A contact's conversations and latest answers, as the step's reads found them."""

    def __init__(self, conversations: list[Any]) -> None:
        self.active = next((c for c in conversations if c.status == "active"), None)
        self.completed_surveys = {c.survey_id for c in conversations if c.status == "completed"}
        # (survey, question) -> value of the contact's latest answer rows
        self.latest: dict[tuple[str, str], Any] = {}
        self.values: dict[str, Any] = {}
        for conversation in conversations:
            for question_id, stored in conversation.latest_answers or ():
                value = (stored or {}).get("v")
                self.latest[(conversation.survey_id, question_id)] = value
                if conversation is self.active:
                    # A free-text value stays as stored ({"c": …}) until decrypt().
                    self.values[question_id] = stored if _is_encrypted(stored) else value
        self.misses = list((self.active.misses or {}).get("texts", [])) if self.active else []

    def decrypt(self, cipher: ContactCipher) -> None:
        """The worker's own words in what was read: the open conversation's free-text values
        and misses are stored under the contact's key."""
        self.values = {
            question_id: cipher.decrypt(value["c"]) if _is_encrypted(value) else value
            for question_id, value in self.values.items()
        }
        self.misses = [cipher.decrypt(text) for text in self.misses]

    def conversation_state(self) -> ConversationState | None:
        row = self.active
        if row is None:
            return None
        return ConversationState(
            survey_id=row.survey_id,
            version=row.version,
            language=row.language,
            started_at=row.started_at,
            last_activity_at=row.last_activity_at,
            status=row.status,
            pending=row.pending,
            misses=list(self.misses),
            consent_tries=row.consent_tries,
            values=self.values,
            key=row.id,
        )


def _write_contact(
    writes: _Writes, contact: Row[Any], state: ContactState, now: datetime, *, opens_window: bool
) -> None:
    """Write back what the step changed in the contact, if anything."""
    changes: dict[str, Any] = {
        name: getattr(state, name)
        for name in _CONTACT_FIELDS
        if getattr(state, name) != getattr(contact, name)
    }
    for name in ("profile", "profile_updated_at"):
        if name in changes:
            changes[name] = dict(getattr(state, name))
    if state.has_consented and not contact.has_consented:
        changes["consented_at"] = now
    if state.is_opted_out and not contact.is_opted_out:
        changes["opted_out_at"] = now
    if state.erase_requested:
        changes["erase_requested_at"] = now  # asked in this very step
    elif contact.erase_requested_at is not None:
        changes["erase_requested_at"] = None  # answered, or lapsed
    if opens_window:
        changes["last_whatsapp_inbound_at"] = now  # the window opens again
    if changes:
        changes["updated_at"] = now
        writes.update(_contacts, contact.id, changes)


def _write_conversations(
    writes: _Writes,
    contact: Row[Any],
    state: ContactState,
    outcome: Outcome,
    channel: str,
    now: datetime,
    cipher: ContactCipher,
) -> dict[int, int]:
    """Insert or update every conversation the step touched; their row ids by state object."""
    touched: dict[int, ConversationState] = {}
    for conv_state in [
        *outcome.ended,
        *([outcome.conversation] if outcome.conversation else []),
        *(record.conversation for record in outcome.answers),
    ]:
        touched.setdefault(id(conv_state), conv_state)
    # The last question answered in each, with the profile written beside it.
    last_question = {id(record.conversation): record.question_id for record in outcome.answers}
    ids: dict[int, int] = {}
    for key, conv_state in touched.items():
        values: dict[str, Any] = {
            "language": conv_state.language,
            "status": conv_state.status,
            "pending": conv_state.pending,
            "misses": {"texts": [cipher.encrypt(text) for text in conv_state.misses]},
            "consent_tries": conv_state.consent_tries,
            "last_activity_at": conv_state.last_activity_at,
        }
        if not conv_state.is_open:
            values["ended_at"] = now
        if key in last_question:
            values["last_question_id"] = last_question[key]
            values["last_profile"] = dict(state.profile)
        if conv_state.key is not None:  # the open conversation the step began with
            writes.update(_conversations, conv_state.key, values)
            ids[key] = conv_state.key
            continue
        row = conversation_row(
            contact_id=contact.id,
            survey_id=conv_state.survey_id,
            version=conv_state.version,
            language=conv_state.language,
            channel=channel,
            status=conv_state.status,
            pending=conv_state.pending,
            misses=values["misses"]["texts"],
            consent_tries=conv_state.consent_tries,
            is_simulated=contact.is_simulated,
            record_key=contact.record_key,
            started_at=conv_state.started_at,
            last_activity_at=conv_state.last_activity_at,
            ended_at=values.get("ended_at"),
            last_question_id=values.get("last_question_id"),
            last_profile=values.get("last_profile", dict(state.profile)),
        )
        # Now, not with the other writes: the rows written after it need its id.
        [inserted] = _INSERT_CONVERSATION.rows(writes.connection, row)
        ids[key] = inserted.id
    return ids


def _write_answers(
    writes: _Writes,
    contact: Row[Any],
    state: ContactState,
    records: Sequence[AnswerRecord],
    ids: dict[int, int],
    latest: dict[tuple[str, str], Any],
    now: datetime,
    cipher: ContactCipher,
) -> None:
    """Answer rows, each the latest for its question; earlier latest rows marked as not."""
    answered = {(r.survey_id, r.question_id) for r in records}
    earlier = answered & latest.keys()
    for survey_id, question_id in sorted(earlier):
        writes.supersede(contact.id, survey_id, question_id)
    # A question answered twice in one step (a conversation ended, another started): the row
    # written last is the latest.
    last_index = {(r.survey_id, r.question_id): i for i, r in enumerate(records)}
    for row in (
        {
            "conversation_id": ids[id(record.conversation)],
            "contact_id": contact.id,
            "survey_id": record.survey_id,
            "version": record.version,
            "question_id": record.question_id,
            "status": record.status,
            "value": _stored_value(record, cipher),
            "raw_text": cipher.encrypt_optional(record.raw_text),
            "language": record.language,
            "profile": dict(state.profile),
            "is_simulated": contact.is_simulated,
            "is_latest": last_index[(record.survey_id, record.question_id)] == index,
            "record_key": contact.record_key,
            "answered_at": now,
        }
        for index, record in enumerate(records)
    ):
        writes.answer(row)


def _stored_value(record: AnswerRecord, cipher: ContactCipher) -> dict[str, Any]:
    """An answer's value as stored: a text question's, the worker's own words, encrypted."""
    if record.question_type == "text" and isinstance(record.value, str):
        return {"c": cipher.encrypt(record.value)}
    return {"v": record.value}


def _is_encrypted(stored: Any) -> bool:
    return isinstance(stored, dict) and "c" in stored


def _insert_messages(
    writes: _Writes, inbound: dict[str, Any] | None, replies: list[dict[str, Any]]
) -> tuple[int | None, list[int]]:
    """Store the inbound message, then, once it has claimed its MessageSid, its replies.

    The inbound id is None when its MessageSid is already stored (nothing else is written).
    """
    if inbound is None:
        return None, writes.replies(replies)
    return writes.inbound(inbound, replies)


def settings_from(app_config: Mapping[str, Any], vault: Vault) -> Settings:
    """The service's settings from a Flask config mapping."""
    return Settings(
        vault=vault,
        locales_dir=Path(app_config["ENGAGE_LOCALES_DIR"]),
        org_name=app_config["ENGAGE_ORG_NAME"],
        idle_hours=app_config["ENGAGE_IDLE_HOURS"],
    )
