"""One inbound message through the conversation engine: the service the webhook and CLI share."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from engage.db import utcnow
from engage.models import Answer, Contact, Conversation, Message
from engage.privacy import Sender, Vault
from engage.services.surveys import DatabaseCatalog
from engage.survey.engine import (
    AnswerRecord,
    ContactState,
    ConversationState,
    Engine,
    Outcome,
)
from engage.survey.texts import SystemTexts

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Settings:
    """What the conversation service needs from the app's configuration."""

    vault: Vault
    locales_dir: Path
    org_name: str = "Engage"
    idle_hours: int = 72


@dataclass
class InboundResult:
    message_id: int | None
    contact_id: int | None = None
    is_duplicate: bool = False
    outbound_ids: list[int] = field(default_factory=list)
    replies: list[str] = field(default_factory=list)


def make_engine(session: Session, settings: Settings) -> Engine:
    texts: dict[str, SystemTexts] = {}

    def texts_for(lang: str) -> SystemTexts:
        # One per language for this engine: a campaign renders thousands of invitations.
        if lang not in texts:
            texts[lang] = SystemTexts(settings.locales_dir, lang, settings.org_name)
        return texts[lang]

    return Engine(
        DatabaseCatalog(session), texts=texts_for, idle=timedelta(hours=settings.idle_hours)
    )


def claim_message(session: Session, message: Message) -> bool:
    """Insert an inbound message under its unique SID; False when that SID was already claimed."""
    try:
        with session.begin_nested():
            session.add(message)
            session.flush()
    except IntegrityError:
        return False
    return True


def find_or_create_contact(
    session: Session, vault: Vault, e164: str, *, is_simulated: bool = False
) -> tuple[Contact, bool]:
    """The contact for a number, locked for this transaction; created when new."""
    phone_hash = vault.phone_hash(e164)
    query = select(Contact).where(Contact.phone_hash == phone_hash).with_for_update()
    contact = session.scalar(query)
    if contact is not None:
        return contact, False
    contact = Contact(
        phone_hash=phone_hash,
        phone_encrypted=vault.encrypt(e164),
        is_simulated=is_simulated,
        profile={},
    )
    try:
        with session.begin_nested():
            session.add(contact)
            session.flush()
    except IntegrityError:
        # Another step created it at the same instant: take theirs, locked.
        return session.scalars(query).one(), False
    return contact, True


def handle_inbound(
    session: Session,
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
    """Store one inbound message, run the conversation step, write answers, state and outbox."""
    now = now or utcnow()
    inbound = Message(
        direction="in",
        sid=sid,
        channel=sender.channel,
        our_address=to,
        their_address_encrypted=settings.vault.encrypt(sender.address),
        body=body,
        media_url=media_url,
        status="received",
        is_simulated=is_simulated,
        created_at=now,
    )
    if sid is not None and not claim_message(session, inbound):
        log.info("inbound %s: repeat, ignored", sid)
        return InboundResult(message_id=None, is_duplicate=True)
    if sid is None:
        session.add(inbound)
    if not sender.is_phone:
        inbound.kind = "not_a_phone"
        session.flush()
        log.info("message %s: sender is not a phone number; stored, no reply", inbound.id)
        return InboundResult(message_id=inbound.id)

    contact, is_new = find_or_create_contact(
        session, settings.vault, sender.e164 or "", is_simulated=is_simulated
    )
    inbound.contact_id = contact.id
    if sender.channel == "whatsapp":
        contact.last_whatsapp_inbound_at = now
    conversation = session.scalar(
        select(Conversation)
        .where(Conversation.contact_id == contact.id, Conversation.status == "active")
        .order_by(Conversation.id.desc())
        .limit(1)
    )
    state = _contact_state(session, contact, is_new)
    conv_state = _conversation_state(session, conversation) if conversation else None
    outcome = make_engine(session, settings).step(
        state,
        conv_state,
        body,
        now=now,
        channel=sender.channel,
        has_media=media_url is not None,
        twilio_confirmed=twilio_confirmed,
    )
    current = _apply(session, contact, state, conversation, outcome, sender.channel, now)
    inbound.conversation_id = current.id if current else (conversation.id if conversation else None)
    inbound.kind = outcome.kind
    inbound.is_free_text = outcome.is_free_text

    outbound = [
        Message(
            direction="out",
            contact_id=contact.id,
            conversation_id=inbound.conversation_id,
            channel=sender.channel,
            our_address=to,
            their_address_encrypted=inbound.their_address_encrypted,
            body=text,
            kind=outcome.kind,
            status="pending",
            sequence=index,
            is_simulated=is_simulated,
            created_at=now,
        )
        for index, text in enumerate(outcome.replies)
    ]
    session.add_all(outbound)
    session.flush()
    log.info(
        "message %s: %s from %s, %d repl%s",
        inbound.id,
        outcome.kind,
        contact.pseudonym,
        len(outbound),
        "y" if len(outbound) == 1 else "ies",
    )
    return InboundResult(
        message_id=inbound.id,
        contact_id=contact.id,
        outbound_ids=[m.id for m in outbound],
        replies=list(outcome.replies),
    )


def _contact_state(session: Session, contact: Contact, is_new: bool) -> ContactState:
    completed = set(
        session.scalars(
            select(Conversation.survey_id).where(
                Conversation.contact_id == contact.id, Conversation.status == "completed"
            )
        ).all()
    )
    return ContactState(
        language=contact.language,
        has_consented=contact.has_consented,
        is_opted_out=contact.is_opted_out,
        is_menu_open=contact.is_menu_open,
        is_new=is_new,
        profile=dict(contact.profile or {}),
        completed_surveys=completed,
        last_nudged_at=contact.last_nudged_at,
    )


def _conversation_state(session: Session, conversation: Conversation) -> ConversationState:
    values = {
        a.question_id: a.value.get("v")
        for a in session.scalars(
            select(Answer).where(Answer.conversation_id == conversation.id).order_by(Answer.id)
        )
    }
    return ConversationState(
        survey_id=conversation.survey_id,
        version=conversation.version,
        language=conversation.language,
        started_at=conversation.started_at,
        last_activity_at=conversation.last_activity_at,
        status=conversation.status,
        pending=conversation.pending,
        misses=list((conversation.misses or {}).get("texts", [])),
        consent_tries=conversation.consent_tries,
        values=values,
        key=conversation.id,
    )


def _apply(
    session: Session,
    contact: Contact,
    state: ContactState,
    conversation: Conversation | None,
    outcome: Outcome,
    channel: str,
    now: datetime,
) -> Conversation | None:
    """Write the engine's decisions back to rows; returns the conversation still open."""
    if state.has_consented and not contact.has_consented:
        contact.consented_at = now
    if state.is_opted_out and not contact.is_opted_out:
        contact.opted_out_at = now
    contact.language = state.language
    contact.has_consented = state.has_consented
    contact.is_opted_out = state.is_opted_out
    contact.is_menu_open = state.is_menu_open
    contact.profile = dict(state.profile)
    contact.last_nudged_at = state.last_nudged_at

    rows: dict[int, Conversation] = {}

    def row_for(conv_state: ConversationState) -> Conversation:
        row = rows.get(id(conv_state))
        if row is None and conversation is not None and conv_state.key == conversation.id:
            row = conversation
        if row is None:
            row = Conversation(
                contact_id=contact.id,
                survey_id=conv_state.survey_id,
                version=conv_state.version,
                language=conv_state.language,
                # The profile it starts with: results group it so before any answer.
                last_profile=dict(state.profile),
                channel=channel,
                is_simulated=contact.is_simulated,
                started_at=conv_state.started_at,
            )
            session.add(row)
            session.flush()
        rows[id(conv_state)] = row
        row.language = conv_state.language
        row.status = conv_state.status
        row.pending = conv_state.pending
        row.misses = {"texts": list(conv_state.misses)}
        row.consent_tries = conv_state.consent_tries
        row.last_activity_at = conv_state.last_activity_at
        if not conv_state.is_open and row.ended_at is None:
            row.ended_at = now
        return row

    for conv_state in outcome.ended:
        row_for(conv_state)
    current = row_for(outcome.conversation) if outcome.conversation else None
    records = [(row_for(record.conversation), record) for record in outcome.answers]
    _supersede(session, contact.id, [record for _row, record in records])
    # A question answered twice in one step (a conversation ended, another started): the row
    # written last is the latest.
    last_index = {(r.survey_id, r.question_id): i for i, (_row, r) in enumerate(records)}
    for index, (row, record) in enumerate(records):
        row.last_question_id = record.question_id
        row.last_profile = dict(state.profile)
        session.add(
            Answer(
                conversation_id=row.id,
                contact_id=contact.id,
                survey_id=record.survey_id,
                version=record.version,
                question_id=record.question_id,
                status=record.status,
                value={"v": record.value},
                raw_text=record.raw_text,
                language=record.language,
                profile=dict(state.profile),
                is_simulated=contact.is_simulated,
                is_latest=last_index[(record.survey_id, record.question_id)] == index,
                answered_at=now,
            )
        )
    return current


def _supersede(session: Session, contact_id: int, records: Sequence[AnswerRecord]) -> None:
    """Mark the contact's earlier rows for the questions answered now as no longer the latest.

    One UPDATE per survey (a step rarely touches more than one), through the contact's index.
    """
    by_survey: dict[str, set[str]] = {}
    for record in records:
        by_survey.setdefault(record.survey_id, set()).add(record.question_id)
    for survey_id, question_ids in by_survey.items():
        session.execute(
            update(Answer)
            .where(
                Answer.contact_id == contact_id,
                Answer.survey_id == survey_id,
                Answer.question_id.in_(sorted(question_ids)),
                Answer.is_latest.is_(True),
            )
            .values(is_latest=False)
        )


def settings_from(app_config: dict, vault: Vault) -> Settings:
    """The service's settings from a Flask config mapping."""
    return Settings(
        vault=vault,
        locales_dir=Path(app_config["ENGAGE_LOCALES_DIR"]),
        org_name=app_config["ENGAGE_ORG_NAME"],
        idle_hours=app_config["ENGAGE_IDLE_HOURS"],
    )
