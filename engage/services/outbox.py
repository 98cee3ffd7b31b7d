"""The outbox: outbound rows become at most one Twilio message each.

Every send takes three steps, each its own transaction, owned by the job, a chunk of rows at a
time (a single row is a chunk of one): `claim_chunk` checks and claims the rows that are due
(status `dispatching`, with the time of the attempt) in set-based statements, the job sends
them outside any transaction, and `record_chunk` writes what Twilio answered. The rules (opted
out or erased, the WhatsApp window, not yet due, the order of a step's rows and of a contact's
replies) live in `claim_chunk` and the statements it runs, nowhere else.

A row found still `dispatching` means an earlier answer was lost (a timeout, a killed worker):
it is never claimed again; the clock looks it up at Twilio instead (`lost_message`,
`record_found`, `record_unconfirmed`).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    Update,
    and_,
    bindparam,
    case,
    false,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.orm import Session

from engage.channels import channel_named
from engage.db import table_of, utcnow
from engage.messaging import OutboundMessage, SendResult
from engage.models import Campaign, Contact, Message
from engage.privacy import Vault
from engage.services.delivery import (
    OPTED_OUT_CODE,
    RANK,
    lower_statuses,
    mark_opted_out,
)
from engage.states import UNSENT, CampaignState, Direction, MessageStatus, QueueName

log = logging.getLogger(__name__)

# Replies that still go to an opted-out contact: the opt-out confirmation, and the help text
# for one who writes a help or distress word (they wrote to us).
SENT_WHEN_OPTED_OUT = frozenset({"opt_out", "help"})
OUTSIDE_WINDOW_CODE = 63016
# A reply staff wrote in the inbox: their words may quote the worker, so, like what the worker
# wrote, its body is kept under the contact's own key (and goes with it at erasure).
STAFF_REPLY = "staff_reply"


def is_cancelled_for(is_opted_out: bool, erased_at: datetime | None, kind: str | None) -> bool:
    """Whether a pending row is cancelled rather than sent: its contact was erased, or opted
    out (but for the replies that still go to an opted-out contact)."""
    return erased_at is not None or (is_opted_out and kind not in SENT_WHEN_OPTED_OUT)


def address_of(vault: Vault, token: str | None, key_encrypted: str | None, *, linked: bool) -> str:
    """A row's address: under its contact's own key, or under the PII key for a row linked to
    nobody (the confirmation sent after an erasure)."""
    if not linked:
        return vault.decrypt(token or "")
    return vault.contact_cipher(key_encrypted).decrypt(token or "")


def body_of(vault: Vault, body: str, kind: str | None, key_encrypted: str | None) -> str:
    """A row's text as sent: a staff reply's is stored under its contact's own key."""
    if kind != STAFF_REPLY or not body:
        return body
    return vault.contact_cipher(key_encrypted).decrypt(body)


def media_of(
    vault: Vault, token: str | None, key_encrypted: str | None, public_url: str | None
) -> str | None:
    """A reply's recording as Twilio fetches it: our public URL and its /media path (none
    without a public URL: nothing outside could fetch it)."""
    if not token or not public_url or key_encrypted is None:
        return None
    return public_url + vault.contact_cipher(key_encrypted).decrypt(token)


def lost_message(
    session: Session, vault: Vault, message_id: int
) -> tuple[OutboundMessage, datetime] | None:
    """A row still `dispatching` (its answer lost) as it was sent, and when: to look it up."""
    row = session.execute(
        select(
            _messages.c.id,
            _messages.c.contact_id,
            _messages.c.our_address,
            _messages.c.their_address_encrypted,
            _messages.c.body,
            _messages.c.kind,
            _messages.c.content_sid,
            _messages.c.content_variables,
            _messages.c.attempted_at,
            _contacts.c.key_encrypted,
        )
        .select_from(_messages.outerjoin(_contacts, _contacts.c.id == _messages.c.contact_id))
        .where(_messages.c.id == message_id, _messages.c.status == MessageStatus.DISPATCHING)
    ).first()
    if row is None or row.their_address_encrypted is None or row.attempted_at is None:
        return None  # sent, or erased meanwhile: nothing left to look up with
    message = OutboundMessage(
        message_id=row.id,
        contact=f"contact-{row.contact_id}",
        to=address_of(
            vault,
            row.their_address_encrypted,
            row.key_encrypted,
            linked=row.contact_id is not None,
        ),
        from_=row.our_address,
        body=body_of(vault, row.body, row.kind, row.key_encrypted),
        content_sid=row.content_sid,
        content_variables=row.content_variables if row.content_sid else None,
    )
    return message, row.attempted_at


def record_found(session: Session, message_id: int, result: SendResult) -> None:
    """A lost answer looked up: Twilio has the message. Its SID is kept, the status only moves
    forward (`record_chunk`'s rule for one row)."""
    session.execute(_record_sent(result.status or "queued", {message_id: result.sid}, utcnow()))
    log.info("message %s: found at Twilio as %s, not resent", message_id, result.sid)


def record_unconfirmed(session: Session, message_id: int) -> None:
    """An earlier attempt's answer was lost and Twilio shows no such message: staff decide."""
    session.execute(
        update(Message)
        .where(Message.id == message_id, Message.status == MessageStatus.DISPATCHING)
        .values(status=MessageStatus.UNCONFIRMED)
    )
    session.flush()
    log.warning(
        "message %s: outcome unknown and not found at Twilio; flagged, not resent", message_id
    )


def claim_chunk(
    session: Session,
    vault: Vault,
    message_ids: Sequence[int],
    *,
    status_callback: Callable[[int], str | None] | None = None,
    public_url: str | None = None,
    now: datetime | None = None,
) -> list[OutboundMessage]:
    """Claim the rows of a chunk that are due, in a few set-based statements; what to send.

    Every rule of sending lives here. A row is left as it is when it is not pending (already
    sent, or `dispatching`: only the clock looks those up, so a row another worker is sending
    right now is never looked up under it), when it is not due yet, when an earlier row of its
    step is unsent (it goes after that one: see `following_rows`), for a reply, when an
    earlier reply to the same contact is unsent, or when its campaign is paused (held until it
    resumes). Rows of opted-out or erased contacts, and of cancelled campaigns, are cancelled
    (but for SENT_WHEN_OPTED_OUT), WhatsApp free-form rows outside the 24 h window fail with
    63016.
    """
    if not message_ids:
        return []
    now = now or utcnow()
    rows = session.execute(_claim_select(), {"ids": list(message_ids)}).all()
    claimed: list[OutboundMessage] = []
    cancelled: list[int] = []
    outside_window: list[int] = []
    for row in rows:
        if row.direction != Direction.OUT or row.status != MessageStatus.PENDING:
            continue
        if row.send_after is not None and row.send_after > now:
            continue
        if row.is_after_unsent or row.campaign_state == CampaignState.PAUSED:
            continue
        contact = f"contact-{row.contact_id}"
        if row.contact_id is not None and is_cancelled_for(
            row.is_opted_out, row.erased_at, row.kind
        ):
            cancelled.append(row.id)
            log.info("message %s: cancelled, %s opted out or erased", row.id, contact)
            continue
        if row.campaign_state == CampaignState.CANCELLED:
            cancelled.append(row.id)
            log.info("message %s: cancelled with its campaign", row.id)
            continue
        content_sid = None
        if not channel_named(row.channel).is_window_open(row.last_whatsapp_inbound_at, now):
            if not row.content_sid:
                outside_window.append(row.id)
                log.warning("message %s: outside the WhatsApp 24 h window, no template", row.id)
                continue
            content_sid = row.content_sid
        claimed.append(
            OutboundMessage(
                message_id=row.id,
                contact=contact,
                to=address_of(
                    vault,
                    row.their_address_encrypted,
                    row.key_encrypted,
                    linked=row.contact_id is not None,
                ),
                from_=row.our_address,
                body=body_of(vault, row.body, row.kind, row.key_encrypted),
                content_sid=content_sid,
                content_variables=row.content_variables if content_sid else None,
                status_callback=status_callback(row.id) if status_callback else None,
                media_url=media_of(vault, row.media_url, row.key_encrypted, public_url),
            )
        )
    if cancelled:
        session.execute(
            _set_status(),
            {"ids": cancelled, "old": MessageStatus.PENDING, "new": MessageStatus.CANCELLED},
        )
    if outside_window:
        session.execute(
            _set_failed(),
            {"ids": outside_window, "old": MessageStatus.PENDING, "code": OUTSIDE_WINDOW_CODE},
        )
    if claimed:
        session.execute(
            _set_attempt(),
            {
                "ids": [m.message_id for m in claimed],
                "old": MessageStatus.PENDING,
                "new": MessageStatus.DISPATCHING,
                "attempted_at": now,
            },
        )
    return claimed


# The bulk path's statements are built once: building a SELECT of this size costs more Python
# than running it. Core statements on the table, since no ORM object is loaded or kept.
_messages = table_of(Message)
_contacts = table_of(Contact)
_campaigns = table_of(Campaign)


@cache
def _claim_select() -> Select[Any]:
    earlier = _messages.alias("earlier")
    m = _messages.c
    is_after_unsent = case(
        (m.queue == QueueName.REPLIES, _earlier_reply_unsent()),
        # Only a step's later rows have an earlier one, and most rows are first: the CASE
        # spares them the sub-query.
        (
            m.sequence > 0,
            select(earlier.c.id)
            .where(
                earlier.c.direction == Direction.OUT,
                earlier.c.contact_id == m.contact_id,
                earlier.c.created_at == m.created_at,
                earlier.c.conversation_id.is_not_distinct_from(m.conversation_id),
                earlier.c.sequence == m.sequence - 1,
                earlier.c.status.in_(UNSENT),
            )
            .exists(),
        ),
        else_=false(),
    )
    return (
        select(
            m.id,
            m.direction,
            m.status,
            m.send_after,
            m.channel,
            m.kind,
            m.body,
            m.our_address,
            m.their_address_encrypted,
            m.content_sid,
            m.content_variables,
            m.media_url,
            m.contact_id,
            _contacts.c.is_opted_out,
            _contacts.c.erased_at,
            _contacts.c.key_encrypted,
            _contacts.c.last_whatsapp_inbound_at,
            _campaigns.c.state.label("campaign_state"),
            is_after_unsent.label("is_after_unsent"),
        )
        .select_from(
            _messages.outerjoin(_contacts, _contacts.c.id == m.contact_id).outerjoin(
                _campaigns, _campaigns.c.id == m.campaign_id
            )
        )
        # By primary key alone (direction is checked in Python): nothing else for the planner
        # to prefer, even before the table has statistics (a campaign's fresh rows).
        .where(m.id.in_(bindparam("ids", expanding=True)))
        .order_by(m.id)
        # The rows, not their contacts: two workers holding one id wait for each other's claim
        # here, and the second then finds the row `dispatching` or sent and leaves it.
        .with_for_update(of=_messages)
    )


def _earlier_reply_unsent() -> ColumnElement[bool]:
    """Replies go out one at a time per contact, in the order they were written: a reply waits
    while an earlier reply to the same contact is unsent (one scheduled for later excepted)."""
    earlier = _messages.alias("earlier_reply")
    m = _messages.c
    return (
        select(earlier.c.id)
        .where(
            earlier.c.contact_id == m.contact_id,
            earlier.c.direction == Direction.OUT,
            earlier.c.queue == QueueName.REPLIES,
            earlier.c.id < m.id,
            earlier.c.status.in_(UNSENT),
            earlier.c.send_after.is_(None),
        )
        .exists()
    )


def due_replies(
    session: Session, *, limit: int, now: datetime | None = None, exclude: Sequence[int] = ()
) -> list[int]:
    """Reply rows to send now, oldest first, each only after the contact's earlier replies.

    On PostgreSQL the rows are locked, skipping those another worker holds: two workers
    draining replies at once take different rows. `exclude`: rows this worker leaves for the
    sweep (a transient error).
    """
    now = now or utcnow()
    m = _messages.c
    query = (
        select(m.id)
        .where(
            m.direction == Direction.OUT,
            m.queue == QueueName.REPLIES,
            m.status == MessageStatus.PENDING,
            or_(m.send_after.is_(None), m.send_after <= now),
            ~_earlier_reply_unsent(),
        )
        .order_by(m.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    if exclude:
        query = query.where(m.id.not_in(list(exclude)))
    return list(session.scalars(query))


def _where_ids_in_state() -> ColumnElement[bool]:
    return and_(
        _messages.c.id.in_(bindparam("ids", expanding=True)),
        _messages.c.status == bindparam("old"),
    )


@cache
def _set_attempt() -> Update:
    """Status and attempt time of the rows still in the `old` state: claimed (`dispatching`,
    now) or put back (`pending`, none)."""
    return (
        update(_messages)
        .where(_where_ids_in_state())
        .values(status=bindparam("new"), attempted_at=bindparam("attempted_at"))
    )


@cache
def _set_status() -> Update:
    return update(_messages).where(_where_ids_in_state()).values(status=bindparam("new"))


@cache
def _set_failed() -> Update:
    return (
        update(_messages)
        .where(_where_ids_in_state())
        .values(status=MessageStatus.FAILED, error_code=bindparam("code"))
    )


def _record_sent(status: str, sids: dict[int, str], now: datetime) -> Update:
    """One UPDATE for every row Twilio accepted with this status: keep each row's SID, and move
    its status only forward (`advance_status`'s rule)."""
    m = _messages.c
    # Each row's SID by its id, in the statement itself: one round trip for the whole chunk.
    new_sid = case(sids, value=m.id)
    values: dict[str, object] = {"sid": func.coalesce(m.sid, new_sid), "sent_at": now}
    replaced = lower_statuses(status) if status in RANK else []  # unknown: keep ours
    if replaced:
        # SET reads the row as it was: the SID test sees the old SID, not the one set here.
        moves = and_(m.status.in_(replaced), or_(m.sid.is_(None), m.sid == new_sid))
        values["status"] = case((moves, status), else_=m.status)
    return update(_messages).where(m.id.in_(list(sids))).values(values)


def record_chunk(
    session: Session,
    *,
    sent: Sequence[tuple[int, SendResult]] = (),
    failed: Sequence[tuple[int, int | None]] = (),
    retry: Sequence[int] = (),
) -> None:
    """Write what Twilio answered for a claimed chunk, in a few set-based statements.

    `sent` rows keep their SID, and their status only moves forward: a status callback may have
    reached the row first (`record_found` applies the same rule to one row). `failed` rows
    (permanent errors, with the code) fail, and 21610 opts their contacts out. `retry` rows
    (transient errors) are pending again.
    Rows whose answer was lost are not passed: they stay `dispatching`, for the clock to look up.
    """
    now = utcnow()
    by_status: dict[str, dict[int, str]] = defaultdict(dict)
    for message_id, result in sent:
        by_status[result.status or "queued"][message_id] = result.sid
        # The sender logged the send already (INFO, with the SID); this is for tracing only.
        log.debug("message %s: recorded sid=%s", message_id, result.sid)
    for status, sids in by_status.items():
        # One statement per status Twilio answered: nearly always one for the whole chunk.
        session.execute(_record_sent(status, sids, now))
    by_code: dict[int | None, list[int]] = defaultdict(list)
    for message_id, code in failed:
        by_code[code].append(message_id)
        log.warning("message %s: failed, Twilio error %s", message_id, code)
    for code, ids in by_code.items():
        session.execute(_set_failed(), {"ids": ids, "old": MessageStatus.DISPATCHING, "code": code})
    if OPTED_OUT_CODE in by_code:
        opted_out = select(Message.contact_id).where(Message.id.in_(by_code[OPTED_OUT_CODE]))
        mark_opted_out(session, *session.scalars(opted_out))
    if retry:
        session.execute(
            _set_attempt(),
            {
                "ids": list(retry),
                "old": MessageStatus.DISPATCHING,
                "new": MessageStatus.PENDING,
                "attempted_at": None,
            },
        )
        for message_id in retry:
            log.info("message %s: transient error, left for the sweep", message_id)


@cache
def _later_rows_of_contacts() -> Select[Any]:
    m = _messages.c
    return (
        select(m.id, m.contact_id, m.created_at, m.conversation_id, m.sequence)
        .where(
            m.contact_id.in_(
                select(_messages.c.contact_id)
                .where(_messages.c.id.in_(bindparam("ids", expanding=True)))
                .scalar_subquery()
            ),
            m.direction == Direction.OUT,
            m.status == MessageStatus.PENDING,
            m.sequence > 0,
        )
        .order_by(m.id)
    )


@cache
def _step_keys() -> Select[Any]:
    m = _messages.c
    return select(m.contact_id, m.created_at, m.conversation_id, m.sequence).where(
        m.id.in_(bindparam("ids", expanding=True))
    )


def following_rows(session: Session, message_ids: Sequence[int]) -> list[int]:
    """The pending rows that come right after these in their steps."""
    if not message_ids:
        return []
    # Most steps are one row: first ask whether any later row of these contacts waits at all.
    later = session.execute(_later_rows_of_contacts(), {"ids": list(message_ids)}).all()
    if not later:
        return []
    after = {
        (row.contact_id, row.created_at, row.conversation_id, row.sequence + 1)
        for row in session.execute(_step_keys(), {"ids": list(message_ids)})
    }
    return [
        row.id
        for row in later
        if (row.contact_id, row.created_at, row.conversation_id, row.sequence) in after
    ]


def stale_pending_ids(
    session: Session, *, older_than: timedelta, limit: int = 1000, after_id: int = 0
) -> list[tuple[int, str]]:
    """(id, queue) of outbound rows still pending long after they were written, or due now."""
    now = utcnow()
    rows = session.execute(
        select(Message.id, Message.send_after, Message.queue)
        .where(
            Message.direction == Direction.OUT,
            Message.status == MessageStatus.PENDING,
            # A simulated reply goes to the console sender at once, never to Twilio.
            Message.is_simulated.is_(False),
            Message.created_at < now - older_than,
            or_(Message.send_after.is_(None), Message.send_after <= now),
            Message.id > after_id,
            # A paused campaign's rows wait for its resume, which hands them over itself.
            or_(
                Message.campaign_id.is_(None),
                Message.campaign_id.not_in(
                    select(Campaign.id).where(Campaign.state == CampaignState.PAUSED)
                ),
            ),
        )
        .order_by(Message.id)
        .limit(limit)
    ).all()
    return [(row.id, row.queue) for row in rows]


def stale_dispatching_ids(
    session: Session, *, older_than: timedelta, limit: int = 1000
) -> list[int]:
    """Rows whose send began long ago and never finished (a killed worker): to reconcile."""
    return list(
        session.scalars(
            select(Message.id)
            .where(
                Message.direction == Direction.OUT,
                Message.status == MessageStatus.DISPATCHING,
                Message.is_simulated.is_(False),
                Message.attempted_at < utcnow() - older_than,
            )
            .order_by(Message.id)
            .limit(limit)
        )
    )
