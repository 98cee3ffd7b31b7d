"""A voice campaign's calls: one `calls` row per contact invited (purpose `campaign`, written by
the fan-out beside its invitation conversation), placed one at a time in id order by the
campaign's placer (engage/jobs/calls.py), never in the contact's quiet hours; dropped when the
campaign is cancelled.

A call is due when it is `queued`, its campaign is running and its `call_after` has come. Its
number is read from the contact when it is placed (services/voice.py `claim_call_to_place`),
and its status callbacks say what became of it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Select,
    and_,
    exists,
    func,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.orm import Session

from engage.db import rows_matched, table_of
from engage.messaging import OutboundCall
from engage.models import Call, Campaign, Contact
from engage.privacy import Vault
from engage.services import voice
from engage.services.maintenance import idle_from
from engage.services.quiet_hours import next_allowed
from engage.states import CallPurpose, CallStatus, CampaignState
from engage.survey.definition import Survey

log = logging.getLogger(__name__)

_calls = table_of(Call)
_campaigns = table_of(Campaign)
_contacts = table_of(Contact)


def call_language(survey: Survey, language: str | None) -> str:
    """The language a contact is called in: theirs when the survey is offered by phone in it,
    else the first language it is offered in by phone."""
    return language if language in survey.voice else survey.voice[0]


def is_due(now: datetime) -> ColumnElement[bool]:
    return and_(
        Call.status == CallStatus.QUEUED,
        or_(Call.call_after.is_(None), Call.call_after <= now),
    )


def is_machine() -> ColumnElement[bool]:
    """Answered by a machine (hung up on before it heard anything): answering-machine
    detection's `machine_*`, or a fax."""
    answered_by = func.coalesce(Call.answered_by, "")
    return or_(answered_by.like(f"{voice.MACHINE_PREFIX}%"), answered_by == voice.FAX)


# -- placing -------------------------------------------------------------------------------------


def claim_next_call(
    connection: Connection,
    vault: Vault,
    campaign_id: int,
    *,
    base_url: str,
    from_: str,
    quiet_hours: tuple[int, int],
    now: datetime,
) -> OutboundCall | None:
    """The campaign's next due call, in id order, claimed for placing (`dialing`); None when
    none is due or the campaign is not running.

    Quiet hours are checked again now, not only when the calls were written: at one call a
    second a campaign takes hours, and a call written for the afternoon may come up at night.
    Such a call, and every other queued call of the campaign in the same time zone, waits for
    the morning.
    """
    c = _calls.c
    tried: list[int] = []
    while True:
        row = connection.execute(
            select(c.id, _contacts.c.timezone)
            .join(_campaigns, _campaigns.c.id == c.campaign_id)
            .outerjoin(_contacts, _contacts.c.id == c.contact_id)
            .where(
                c.campaign_id == campaign_id,
                is_due(now),
                _campaigns.c.state == CampaignState.RUNNING,
                c.id.not_in(tried) if tried else true(),
            )
            .order_by(c.id)
            .limit(1)
            # Another placer of this campaign may hold the first: take the next one.
            .with_for_update(skip_locked=True, of=_calls)
        ).first()
        if row is None:
            return None
        allowed = next_allowed(now, row.timezone, quiet_hours)
        if allowed > now:
            _hold_zone(connection, campaign_id, row.timezone, allowed)
            tried.append(row.id)
            continue
        call = voice.claim_call_to_place(
            connection, vault, row.id, base_url=base_url, from_=from_, now=now
        )
        if call is None:  # opted out or erased meanwhile (now canceled), or taken
            tried.append(row.id)
            continue
        # The invitation goes now: the conversation is idle from now, not from when it was written.
        idle_from(connection, select(c.conversation_id).where(c.id == row.id), now)
        return call


def _hold_zone(connection: Connection, campaign_id: int, zone: str | None, until: datetime) -> None:
    """The campaign's queued calls to contacts in this time zone wait until `until`."""
    c = _calls.c
    same_zone = _contacts.c.timezone.is_(None) if zone is None else _contacts.c.timezone == zone
    held = rows_matched(
        connection.execute(
            update(_calls)
            .where(
                c.campaign_id == campaign_id,
                c.status == CallStatus.QUEUED,
                or_(c.call_after.is_(None), c.call_after < until),
                exists().where(_contacts.c.id == c.contact_id, same_zone),
            )
            .values(call_after=until)
        )
    )
    log.info("campaign %s: %d call(s) wait for quiet hours to end (%s)", campaign_id, held, zone)


def campaigns_with_due_calls(session: Session, *, now: datetime) -> list[int]:
    """Running campaigns with a call due now (their placer may have stopped: quiet hours
    ended, a resume, a lost job)."""
    return list(
        session.scalars(
            select(Campaign.id)
            .where(
                Campaign.state == CampaignState.RUNNING,
                exists().where(Call.campaign_id == Campaign.id, is_due(now)),
            )
            .order_by(Campaign.id)
        )
    )


def has_queued_calls(session: Session, campaign_id: int) -> bool:
    return bool(
        session.scalar(
            select(
                exists().where(Call.campaign_id == campaign_id, Call.status == CallStatus.QUEUED)
            )
        )
    )


def count_due(session: Session, campaign_id: int, *, now: datetime) -> int:
    return int(
        session.scalar(select(func.count()).where(Call.campaign_id == campaign_id, is_due(now)))
        or 0
    )


# -- resume and cancel ---------------------------------------------------------------------------


def refresh_waiting(session: Session, campaign_id: int, *, now: datetime) -> None:
    """A resumed campaign: invitations whose call waited through the pause are idle from now."""
    waiting = select(Call.conversation_id).where(
        Call.campaign_id == campaign_id, Call.status == CallStatus.QUEUED
    )
    idle_from(session, waiting, now)


def never_placed(campaign_id: int) -> Select[Any]:
    """The invitation conversations of a campaign's calls that never reached Twilio (queued,
    or canceled before they were placed)."""
    return select(Call.conversation_id).where(
        Call.campaign_id == campaign_id,
        Call.status.in_((CallStatus.QUEUED, CallStatus.CANCELED)),
        Call.sid.is_(None),
    )


def cancel_queued_calls(session: Session, campaign_id: int, *, now: datetime) -> int:
    """A cancelled campaign's calls not yet placed are canceled; how many (their invitations
    are undone with the texts', services/campaigns.py `drop_unsent`)."""
    return rows_matched(
        session.execute(
            update(Call)
            .where(Call.campaign_id == campaign_id, Call.status == CallStatus.QUEUED)
            .values(status=CallStatus.CANCELED, ended_at=now)
        )
    )


# -- counting ------------------------------------------------------------------------------------


def is_placed() -> ColumnElement[bool]:
    """Handed to Twilio: it has a CallSid, or it is being placed (`dialing`)."""
    return or_(Call.sid.is_not(None), Call.status == CallStatus.DIALING)


def placed_counts(session: Session, campaign_ids: Sequence[int]) -> dict[int, int]:
    """How many calls were placed, per campaign: one grouped count for a whole list."""
    if not campaign_ids:
        return {}
    rows = session.execute(
        select(Call.campaign_id, func.count())
        .where(
            Call.campaign_id.in_(list(campaign_ids)),
            Call.purpose == CallPurpose.CAMPAIGN,
            is_placed(),
        )
        .group_by(Call.campaign_id)
    )
    return {campaign_id: int(n) for campaign_id, n in rows if campaign_id is not None}
