"""The call jobs: place a call Engage makes through the sender, at most once: a missed call's
call back (`replies`), and a voice campaign's calls, one at a time at the caller ID's rate
(`bulk`)."""

from __future__ import annotations

import logging
import time
from datetime import timedelta

from flask import current_app

from engage import db
from engage.channels import VOICE
from engage.jobs import call_placer_busy, call_placer_done, dispatch_campaign_calls
from engage.jobs.send import message_sender
from engage.messaging import AmbiguousSendError, OutboundCall, SendError, TransientSendError
from engage.messaging.ratelimit import LocalRateLimiter, RateLimiter, RateLimitTimeoutError
from engage.services import campaign_calls, voice

log = logging.getLogger(__name__)

# A campaign's placer claims no new call after this long and hands the rest to a new job, as the
# bulk send job does (engage/jobs/send.py BATCH_SECONDS). Short: a placer spends its time waiting
# for the call rate, and a worker holding one takes no reply or call back (`replies`) meanwhile;
# between two placer jobs it does.
PLACER_SECONDS = 15.0
# Twilio asked us to try later: the campaign's call waits this long, and its placer stops (the
# clock starts one again once calls are due).
TRY_LATER = timedelta(minutes=1)


def call_limiter() -> RateLimiter | LocalRateLimiter:
    """The calls-per-second limit per caller ID (ENGAGE_CALL_RATE), made in create_app."""
    return current_app.extensions["engage.call_limiter"]


def place_call(call_id: int) -> None:
    """RQ entry point (`replies`): place the call, at most once.

    The row is marked `dialing` before Twilio is asked; a call Twilio may have created (no
    answer came back) is left so, and its status callbacks say what became of it.
    """
    config = current_app.config
    vault = current_app.extensions["engage.vault"]
    with db.engine().begin() as connection:
        call = voice.claim_call_to_place(
            connection,
            vault,
            call_id,
            base_url=config["ENGAGE_PUBLIC_URL"],
            from_=config["TWILIO_VOICE_FROM"],
        )
    if call is None:
        return
    if _hand_to_twilio(call) == "try_later":
        log.info("call-%s: Twilio asks to try later; the clock will", call_id)
        with db.engine().begin() as connection:
            voice.record_try_later(connection, call_id)


def place_campaign_calls(campaign_id: int) -> int:
    """RQ entry point (`bulk`): place a running campaign's due calls one at a time, in id order,
    at the caller ID's rate (ENGAGE_CALL_RATE, shared by every worker); how many were placed.

    Each call is claimed (`dialing`) before Twilio is asked, so two placers never place one
    call twice; one that gets no slot in time is queued again. It stops when no call is due
    (all placed, paused, cancelled, quiet hours), and after PLACER_SECONDS hands the rest to a
    new job. While it works, dispatches queue no other placer of the campaign.
    """
    deadline = time.monotonic() + PLACER_SECONDS
    try:
        placed, is_out_of_time = _place_due_calls(campaign_id, deadline)
    finally:
        call_placer_done(campaign_id)
    if is_out_of_time:
        log.info(
            "campaign %s: %d call(s) placed in %.0f s, the rest handed to a new job",
            campaign_id,
            placed,
            PLACER_SECONDS,
        )
        dispatch_campaign_calls(campaign_id)
    elif placed:
        log.info("campaign %s: %d call(s) placed, none due now", campaign_id, placed)
    return placed


def _place_due_calls(campaign_id: int, deadline: float) -> tuple[int, bool]:
    """Place due calls until none is due or the deadline: how many, and whether time ran out."""
    config = current_app.config
    vault = current_app.extensions["engage.vault"]
    caller_id = config["TWILIO_VOICE_FROM"] or VOICE.development_sender
    limiter = call_limiter()
    placed = 0
    while time.monotonic() < deadline:
        call_placer_busy(campaign_id)
        with db.engine().begin() as connection:
            call = campaign_calls.claim_next_call(
                connection,
                vault,
                campaign_id,
                base_url=config["ENGAGE_PUBLIC_URL"],
                from_=caller_id,
                quiet_hours=config["ENGAGE_QUIET_HOURS"],
                now=db.now(),
            )
        if call is None:
            return placed, False
        # The slot right before the request (not before the claim, whose transaction may wait
        # for a lock): Twilio sees the calls as far apart as the limit granted them.
        try:
            limiter.acquire(caller_id, timeout=max(deadline - time.monotonic(), 1.0))
        except RateLimitTimeoutError:
            with db.engine().begin() as connection:
                voice.record_try_later(connection, call.call_id)
            continue
        if _hand_to_twilio(call) == "try_later":
            log.info("campaign %s: Twilio asks to try later; the clock will", campaign_id)
            with db.engine().begin() as connection:
                voice.record_try_later(connection, call.call_id, not_before=db.now() + TRY_LATER)
            return placed, False
        placed += 1
    return placed, True


def _hand_to_twilio(call: OutboundCall) -> str:
    """Place a claimed call and record what Twilio answered: `placed`, `lost` (the answer was
    lost: left `dialing`, its status callbacks will tell), `refused` (it ends failed) or
    `try_later` (it surely was not placed; the caller queues it again)."""
    try:
        sid = message_sender().place_call(call)
    except AmbiguousSendError as exc:
        log.warning(
            "call-%s: Twilio's answer was lost (%s); its callbacks will tell",
            call.call_id,
            exc.code,
        )
        return "lost"
    except TransientSendError as exc:
        log.info("call-%s: Twilio asks to try later (%s)", call.call_id, exc.code)
        return "try_later"
    except SendError as exc:
        with db.engine().begin() as connection:
            voice.record_not_placed(connection, call.call_id, exc.code)
        return "refused"
    with db.engine().begin() as connection:
        voice.record_placed(connection, call.call_id, sid)
    return "placed"
