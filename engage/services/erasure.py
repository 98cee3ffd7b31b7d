"""Erasure: a contact's texts and number made unreadable for good, what is linked to nobody kept.

One path for every way in (docs/architecture.md §4.3): the BORRAR keyword confirmed (the step calls
`erase_contact` in its own transaction), an admin, `engage contacts erase PHONE` and the clock
for contacts inactive longer than `ENGAGE_RETENTION_DAYS`.

The contact's texts and every copy of its number were only ever stored under the contact's own
key (privacy.ContactCipher), so destroying that key leaves every copy (WAL files, replicas,
backups) unreadable with the live database's keys; the columns are cleared as well. Kept, linked
to nobody: the contact row (a random hash instead of the number's; no key, no number, no
profile), MessageSid claims, choice and number answers and profile values with their record
key (published counts do not move), and the number's keyed hash on the do-not-contact list.
"""

from __future__ import annotations

import logging
import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Select,
    delete,
    exists,
    false,
    func,
    insert,
    null,
    or_,
    select,
    update,
)

from engage.db import insert_ignoring_conflicts, table_of, utcnow
from engage.models import (
    Answer,
    Call,
    Contact,
    Conversation,
    DoNotContact,
    Message,
    ThreadNote,
    TwilioDeletion,
    VoiceNote,
)
from engage.privacy import Vault
from engage.states import UNSENT, CallStatus, Direction, MessageStatus

log = logging.getLogger(__name__)

# BORRAR's confirmation lapses after this, or as soon as anything else is sent to the contact.
CONFIRMATION_TIME = timedelta(minutes=10)
# Who erased: the worker by keyword, an admin, the CLI, the clock (retention).
BY_SENDER, BY_STAFF, BY_CLI, BY_RETENTION = "sender", "staff", "cli", "retention"
# The kind of the one message sent after an erasure: linked to nobody, its address is
# forgotten once Twilio has answered for it.
ERASED_KIND = "erased"
# Only Twilio's SIDs are deleted at Twilio (not the console's or a simulation's): messages,
# voice notes (recordings) and calls, what Twilio keeps of a contact.
_TWILIO_SID = re.compile(r"^(SM|MM|RE|CA)[0-9a-fA-F]{32}$")
# How long the clock waits before trying a deletion again, doubling up to a day.
_FIRST_RETRY = timedelta(minutes=2)
_LAST_RETRY = timedelta(days=1)

_contacts = table_of(Contact)
_messages = table_of(Message)
_answers = table_of(Answer)
_conversations = table_of(Conversation)
_notes = table_of(ThreadNote)
_deletions = table_of(TwilioDeletion)
_do_not_contact = table_of(DoNotContact)
_voice_notes = table_of(VoiceNote)
_calls = table_of(Call)


@dataclass(frozen=True)
class Erased:
    """What an erasure did, for the caller's log and audit (nothing about the person)."""

    contact_id: int
    phone_hash: str  # the hash the contact had, for the spool's dead letters
    deletions: int  # messages queued for deletion at Twilio
    cancelled: int  # pending sends cancelled
    notes: list[int] = field(default_factory=list)


def is_confirmation_pending(
    requested_at: datetime | None, has_sent_since: bool, now: datetime
) -> bool:
    """Whether a BORRAR asked at `requested_at` still waits for its "1"."""
    return (
        requested_at is not None and not has_sent_since and now - requested_at <= CONFIRMATION_TIME
    )


def find_contact(connection: Connection, vault: Vault, e164: str) -> int | None:
    """The id of the live contact with this number, if any."""
    return connection.scalar(
        select(_contacts.c.id).where(_contacts.c.phone_hash == vault.phone_hash(e164))
    )


def is_on_do_not_contact_list(connection: Connection, phone_hash: str) -> bool | None:
    """None when the number was never erased; else whether it was opted out when it was."""
    was_opted_out: bool | None = connection.scalar(_opted_out_when_erased(phone_hash))
    return was_opted_out


def stays_opted_out(phone_hash: Any) -> ColumnElement[bool]:
    """SQL: whether a new contact for this number starts opted out (it was erased while opted
    out), false for a number never erased; for the statement that creates the contact."""
    return func.coalesce(_opted_out_when_erased(phone_hash).scalar_subquery(), false())


def _opted_out_when_erased(phone_hash: Any) -> Select[Any]:
    return select(_do_not_contact.c.is_opted_out).where(_do_not_contact.c.phone_hash == phone_hash)


def erase_contact(
    connection: Connection, contact_id: int, *, by: str, now: datetime | None = None
) -> Erased | None:
    """Erase one contact in the caller's transaction; None when there is none or it is erased.

    Everything the contact wrote and every copy of its number become unreadable; its pending
    sends are cancelled; its messages are queued for deletion at Twilio (the clock deletes them);
    an urgent message its sender erased leaves staff a note with no content.
    """
    now = now or utcnow()
    contact = connection.execute(
        select(_contacts.c.id, _contacts.c.phone_hash, _contacts.c.is_opted_out)
        .where(_contacts.c.id == contact_id, _contacts.c.erased_at.is_(None))
        .with_for_update()
    ).first()
    if contact is None:
        return None
    mine = _messages.c.contact_id == contact_id
    sids = list(
        connection.scalars(select(_messages.c.sid).where(mine, _messages.c.sid.is_not(None)))
    )
    # Calls: their voice notes are the worker's voice; the call logs carry the number.
    sids += connection.scalars(
        select(_voice_notes.c.sid).where(_voice_notes.c.contact_id == contact_id)
    )
    sids += connection.scalars(
        select(_calls.c.sid).where(_calls.c.contact_id == contact_id, _calls.c.sid.is_not(None))
    )
    _queue_deletions(connection, sids, now)
    connection.execute(delete(_voice_notes).where(_voice_notes.c.contact_id == contact_id))
    # Its calls stay, linked to nobody; a call back not yet placed is not placed.
    theirs = or_(_calls.c.contact_id == contact_id, _calls.c.phone_hash == contact.phone_hash)
    connection.execute(
        update(_calls)
        .where(theirs, _calls.c.status == CallStatus.QUEUED)
        .values(status=CallStatus.CANCELED, ended_at=now)
    )
    connection.execute(
        update(_calls)
        .where(theirs)
        .values(contact_id=null(), phone_hash=null(), their_address_encrypted=null())
    )
    notes = []
    if by == BY_SENDER:
        urgent = connection.execute(
            select(_messages.c.urgent_topic)
            .where(mine, _messages.c.direction == Direction.IN, _messages.c.is_urgent.is_(True))
            .order_by(_messages.c.id)
        ).all()
        for (topic,) in urgent:
            notes.append(
                connection.execute(
                    insert(_notes)
                    .values(
                        contact_id=contact_id, kind="erased_urgent", topic=topic, created_at=now
                    )
                    .returning(_notes.c.id)
                ).scalar_one()
            )
    # Staff's own notes on the thread may quote the worker: their words go too.
    connection.execute(update(_notes).where(_notes.c.contact_id == contact_id).values(body=null()))
    cancelled = connection.execute(
        update(_messages)
        .where(
            mine,
            _messages.c.direction == Direction.OUT,
            _messages.c.status == MessageStatus.PENDING,
        )
        .values(status=MessageStatus.CANCELLED)
    ).rowcount
    connection.execute(
        update(_messages)
        .where(mine)
        .values(body="", media_url=None, their_address_encrypted=None, content_variables=None)
    )
    connection.execute(
        update(_answers).where(_answers.c.contact_id == contact_id).values(raw_text=None)
    )
    # Free-text answers (stored encrypted, as {"c": …}); choice and number answers stay.
    connection.execute(
        update(_answers)
        .where(_answers.c.contact_id == contact_id, _answers.c.value["c"].as_string().is_not(None))
        .values(value={"v": None})
    )
    connection.execute(
        update(_conversations)
        .where(_conversations.c.contact_id == contact_id)
        .values(misses={"texts": []})
    )
    _add_to_do_not_contact(connection, contact.phone_hash, contact.is_opted_out, now)
    connection.execute(
        update(_contacts)
        .where(_contacts.c.id == contact_id)
        .values(
            # Random, never a number's: the number's own hash is free for a new contact.
            phone_hash="erased-" + secrets.token_hex(24),
            phone_encrypted="",
            key_encrypted=None,
            language=None,
            consent_source=None,
            profile={},
            profile_updated_at={},
            timezone=None,
            is_menu_open=False,
            erase_requested_at=None,
            erased_at=now,
            updated_at=now,
        )
    )
    deletions = len([sid for sid in sids if _TWILIO_SID.match(sid)])
    log.info(
        "contact-%s: erased (%s); %d to delete at Twilio, %d sends cancelled",
        contact_id,
        by,
        deletions,
        cancelled,
    )
    return Erased(contact_id, contact.phone_hash, deletions, cancelled, notes)


def _add_to_do_not_contact(
    connection: Connection, phone_hash: str, is_opted_out: bool, now: datetime
) -> None:
    """The number's hash on the list; an opt-out once recorded there stays."""
    connection.execute(
        insert_ignoring_conflicts(connection.dialect.name, _do_not_contact, "phone_hash"),
        {"phone_hash": phone_hash, "is_opted_out": is_opted_out, "created_at": now},
    )
    if is_opted_out:
        connection.execute(
            update(_do_not_contact)
            .where(_do_not_contact.c.phone_hash == phone_hash)
            .values(is_opted_out=True)
        )


def inactive_contacts(connection: Connection, *, days: int, now: datetime) -> list[int]:
    """Contacts with nothing from them, no import and no change for `days` days."""
    cutoff = now - timedelta(days=days)
    recent_inbound = exists().where(
        _messages.c.contact_id == _contacts.c.id,
        _messages.c.direction == Direction.IN,
        _messages.c.created_at > cutoff,
    )
    return list(
        connection.scalars(
            select(_contacts.c.id)
            .where(
                _contacts.c.erased_at.is_(None),
                _contacts.c.is_simulated.is_(False),
                _contacts.c.created_at <= cutoff,
                _contacts.c.updated_at <= cutoff,
                ~recent_inbound,
            )
            .order_by(_contacts.c.id)
        )
    )


def forget_erasure_confirmations(connection: Connection, *, now: datetime) -> int:
    """The clock's part for the message sent after an erasure: once Twilio has answered for it
    (sent, delivered, failed…), its address and body go and it is queued for deletion at
    Twilio like the contact's other messages. How many were forgotten."""
    done = connection.execute(
        select(_messages.c.id, _messages.c.sid).where(
            _messages.c.kind == ERASED_KIND,
            _messages.c.their_address_encrypted.is_not(None),
            _messages.c.status.not_in(UNSENT),
        )
    ).all()
    if not done:
        return 0
    connection.execute(
        update(_messages)
        .where(_messages.c.id.in_([row.id for row in done]))
        .values(their_address_encrypted=None, body="")
    )
    _queue_deletions(connection, [row.sid for row in done if row.sid], now)
    return len(done)


def _queue_deletions(connection: Connection, sids: list[str], now: datetime) -> None:
    """Messages for the clock to delete at Twilio (Twilio's own SIDs only)."""
    rows = [
        {"sid": sid, "attempts": 0, "next_attempt_at": now, "created_at": now}
        for sid in sids
        if _TWILIO_SID.match(sid)
    ]
    if rows:
        connection.execute(
            insert_ignoring_conflicts(connection.dialect.name, _deletions, "sid"), rows
        )


def due_deletions(connection: Connection, *, now: datetime, limit: int = 200) -> list[str]:
    """SIDs whose deletion at Twilio is due, oldest first."""
    return list(
        connection.scalars(
            select(_deletions.c.sid)
            .where(_deletions.c.next_attempt_at <= now)
            .order_by(_deletions.c.next_attempt_at)
            .limit(limit)
        )
    )


def record_deletions(
    connection: Connection, *, gone: list[str], waiting: list[str], now: datetime
) -> None:
    """What Twilio answered the clock's deletions: those gone are done, the others wait longer
    each time (up to a day)."""
    if gone:
        connection.execute(delete(_deletions).where(_deletions.c.sid.in_(gone)))
    for sid, attempts in connection.execute(
        select(_deletions.c.sid, _deletions.c.attempts).where(_deletions.c.sid.in_(waiting))
    ).all():
        connection.execute(
            update(_deletions)
            .where(_deletions.c.sid == sid)
            .values(
                attempts=attempts + 1,
                next_attempt_at=now + min(_FIRST_RETRY * 2**attempts, _LAST_RETRY),
            )
        )
    if gone or waiting:
        log.info("deletions at Twilio: %d done, %d waiting", len(gone), len(waiting))
