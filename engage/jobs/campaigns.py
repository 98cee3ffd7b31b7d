"""Campaigns: writing the invitations (on `bulk` for the pages, in-process for the CLI), pause,
resume and cancel, and the clock's part (reminders, a scheduled start, calls that became due,
the end). A voice campaign's calls are placed by their own job (engage/jobs/calls.py)."""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime

from flask import current_app
from redis.exceptions import RedisError
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus
from sqlalchemy.orm import Session

from engage import db
from engage.channels import VOICE, channel_named
from engage.db import utcnow
from engage.jobs import BULK, dispatch_campaign_calls, dispatch_sends, queue, redis_connection
from engage.models import Campaign
from engage.services import campaign_calls
from engage.services import campaigns as service
from engage.services import reminders as reminding
from engage.services.campaigns import (
    BATCH,
    NO_REMINDERS,
    Batch,
    CampaignError,
    Reminders,
    batches,
    create_campaign,
    invite_batch,
    matching_contact_ids,
)
from engage.services.contact_filters import ContactFilter
from engage.services.conversations import Settings, settings_from
from engage.services.surveys import DatabaseCatalog
from engage.states import CampaignState

log = logging.getLogger(__name__)

FAN_OUT = "engage.jobs.campaigns.fan_out"
# A fan-out of a million contacts takes minutes; RQ's default timeout is 180 s.
FAN_OUT_TIMEOUT = 3600


@dataclass(frozen=True)
class CampaignSummary:
    campaign_id: int
    invited: int
    sent_now: int
    scheduled: int
    # A voice campaign: calls due now (the rest wait for quiet hours or the start).
    calls_now: int = 0


# Called after each batch with (contacts invited so far, contacts to invite): a progress bar.
Progress = Callable[[int, int], None]


def start_campaign(
    survey_id: str,
    where: dict[str, str] | ContactFilter,
    channel: str,
    at: datetime | None,
    *,
    reminders: Reminders = NO_REMINDERS,
    batch_size: int = BATCH,
    progress: Progress | None = None,
) -> CampaignSummary:
    """Create the campaign and invite every matching contact, in this process (the CLI)."""
    sender = _sender(channel)  # before anything is written: no number, no campaign
    with db.transaction() as session:
        campaign = create_campaign(
            session, survey_id, where=where, channel=channel, start_at=at, reminders=reminders
        )
        campaign_id = campaign.id
    return fan_out(campaign_id, batch_size=batch_size, progress=progress, sender=sender)


def create_for_page(
    survey_id: str,
    where: ContactFilter,
    channel: str,
    at: datetime | None,
    *,
    reminders: Reminders,
    user_id: int,
    actor: str,
) -> int:
    """Record a campaign started from the page and hand its invitations to `bulk`: the request
    returns at once, and the page follows the fan-out through its progress."""
    _sender(channel)
    with db.transaction() as session:
        campaign = create_campaign(
            session,
            survey_id,
            where=where,
            channel=channel,
            start_at=at,
            reminders=reminders,
            created_by=user_id,
        )
        survey = DatabaseCatalog(session).get(campaign.survey_id, campaign.version)
        # What the preview showed, until the fan-out knows exactly.
        campaign.contacts = service.count_matching(session, campaign, repeat=survey.repeat)
        service.record_action(
            session, campaign, action="campaign_start", actor=actor, user_id=user_id
        )
        campaign_id = campaign.id
    enqueue_fan_out(campaign_id)
    return campaign_id


def enqueue_fan_out(campaign_id: int, *, again: bool = False) -> None:
    """Write the invitations on `bulk` (ahead of the sends queued there), or here without Redis.

    `again` (the clock, for a fan-out that has not finished): only when its job is gone or
    failed, never beside one that is waiting or running.
    """
    connection = redis_connection()
    if connection is None:
        fan_out(campaign_id)
        return
    job_id = f"campaign-fan-out-{campaign_id}"
    try:
        if again:
            try:
                status = Job.fetch(job_id, connection=connection).get_status()
            except NoSuchJobError:
                status = None
            if status not in (None, JobStatus.FAILED, JobStatus.STOPPED, JobStatus.CANCELED):
                return
        queue(BULK).enqueue(
            FAN_OUT,
            campaign_id,
            job_id=job_id,
            job_timeout=FAN_OUT_TIMEOUT,
            result_ttl=0,
            failure_ttl=7 * 24 * 3600,
            at_front=True,
        )
    except RedisError as exc:
        # The clock enqueues it again (a campaign whose invitations are not all written).
        log.warning(
            "campaign %s: fan-out left for the clock, Redis unavailable: %s", campaign_id, exc
        )


def fan_out(
    campaign_id: int,
    *,
    batch_size: int = BATCH,
    progress: Progress | None = None,
    sender: str | None = None,
) -> CampaignSummary:
    """RQ entry point (`bulk`): write the campaign's invitations in batches, each handed to
    `bulk` after its commit. Idempotent: contacts it invited already are not invited again, and
    a cancelled campaign writes nothing more."""
    config = current_app.config
    with db.transaction() as session:
        campaign = session.get_one(Campaign, campaign_id)
        if campaign.fanned_out_at is not None or campaign.state == CampaignState.CANCELLED:
            return CampaignSummary(campaign_id, 0, 0, 0)
        sender = sender or _sender(campaign.channel)
        survey = DatabaseCatalog(session).get(campaign.survey_id, campaign.version)
        ids = matching_contact_ids(session, campaign, repeat=survey.repeat)
        campaign.contacts = campaign.invited + len(ids)
    settings = settings_from(config, current_app.extensions["engage.vault"])
    # The app's own method, not the proxy's: the threads below have no context to look it up in.
    app_context = current_app.app_context

    def invite(chunk: list[int]) -> Batch:
        """One batch in its own transaction; its due rows handed to `bulk` after the commit."""
        with app_context():
            return _invite(settings, campaign_id, chunk, sender=sender)

    # On PostgreSQL two batches are in flight: while one waits for the server (the foreign-key
    # checks at the end of each COPY, the commit), the other builds its rows. SQLite has one
    # writer at a time anyway.
    in_flight = 2 if db.engine().dialect.name == "postgresql" else 1
    done: list[Batch] = []
    invited = 0

    def collect(batch: Batch, size: int) -> None:
        nonlocal invited
        done.append(batch)
        invited += size
        if progress is not None:
            progress(invited, len(ids))

    with ThreadPoolExecutor(max_workers=in_flight, thread_name_prefix="campaign") as pool:
        running: deque[tuple[Future[Batch], int]] = deque()
        for chunk in batches(ids, batch_size):
            if len(running) == in_flight:
                future, size = running.popleft()
                collect(future.result(), size)
            running.append((pool.submit(invite, chunk), len(chunk)))
        for future, size in running:
            collect(future.result(), size)
    with db.transaction() as session:
        service.finish_fan_out(session, campaign_id)
        if service.is_cancelled(session, campaign_id):
            # Cancelled while the batches were written: what they wrote is dropped too.
            service.drop_unsent(session, campaign_id)
        campaign = session.get_one(Campaign, campaign_id)
        is_calling = campaign.channel == VOICE.name and campaign.state == CampaignState.RUNNING
    sent_now = sum(len(batch.send_now) for batch in done)
    scheduled = sum(batch.scheduled for batch in done)
    calls_now = sum(batch.calls_now for batch in done)
    log.info("campaign %s: %d invited", campaign_id, len(ids))
    if is_calling and calls_now:
        dispatch_campaign_calls(campaign_id)
    return CampaignSummary(campaign_id, len(ids), sent_now, scheduled, calls_now)


def _invite(settings: Settings, campaign_id: int, chunk: list[int], *, sender: str) -> Batch:
    config = current_app.config
    with db.transaction() as session:
        campaign = session.get_one(Campaign, campaign_id)
        if campaign.state == CampaignState.CANCELLED:
            return Batch([], 0)
        batch = invite_batch(
            session,
            settings,
            campaign,
            chunk,
            sender=sender,
            quiet_hours=config["ENGAGE_QUIET_HOURS"],
        )
        # Read in the batch's own transaction: a pause committed before it holds its rows.
        is_held = campaign.state == CampaignState.PAUSED
    if not is_held:
        dispatch_sends(batch.send_now, queue_name=BULK)
    return batch


def _sender(channel: str) -> str:
    """Our number on this channel (a placeholder in development)."""
    config = current_app.config
    described = channel_named(channel)
    sender = config[described.sender_setting]
    if not sender:
        if config["IS_PRODUCTION"]:
            raise CampaignError(f"{described.sender_setting} is not set: no number to send from")
        sender = described.development_sender
    return str(sender)


# -- control -------------------------------------------------------------------------------------


def pause(campaign_id: int, *, actor: str, user_id: int | None = None) -> None:
    with db.transaction() as session:
        campaign = _get(session, campaign_id)
        service.pause_campaign(session, campaign)
        service.record_action(
            session, campaign, action="campaign_pause", actor=actor, user_id=user_id
        )


def resume(campaign_id: int, *, actor: str, user_id: int | None = None) -> int:
    """Resume; its due rows go to `bulk` after the commit (a voice campaign's placer starts
    again). How many rows (or calls) are due."""
    with db.transaction() as session:
        campaign = _get(session, campaign_id)
        due = service.resume_campaign(session, campaign)
        service.record_action(
            session, campaign, action="campaign_resume", actor=actor, user_id=user_id
        )
        is_calling = campaign.channel == VOICE.name and campaign.state == CampaignState.RUNNING
        calls_due = (
            campaign_calls.count_due(session, campaign_id, now=db.now()) if is_calling else 0
        )
    if calls_due:
        dispatch_campaign_calls(campaign_id)
        return calls_due
    return dispatch_sends(due, queue_name=BULK)


def cancel(campaign_id: int, *, actor: str, user_id: int | None = None) -> int:
    """Cancel; how many unsent rows were dropped."""
    with db.transaction() as session:
        campaign = _get(session, campaign_id)
        dropped = service.cancel_campaign(session, campaign)
        service.record_action(
            session, campaign, action="campaign_cancel", actor=actor, user_id=user_id
        )
    return dropped


def _get(session: Session, campaign_id: int) -> Campaign:
    campaign = session.get(Campaign, campaign_id)
    if campaign is None:
        raise CampaignError(f"no campaign {campaign_id}")
    return campaign


# -- the clock's part ----------------------------------------------------------------------------


def run_campaign_clock(now: datetime | None = None) -> dict[str, int]:
    """Scheduled campaigns start, due reminders are written and handed over, fan-outs that did
    not finish are handed over again, voice campaigns with calls due get their placer, and
    campaigns with nothing left to send finish."""
    now = now or utcnow()
    counts = {"reminders": 0, "campaigns_calling": 0, "campaigns_finished": 0}
    config = current_app.config
    settings = settings_from(config, current_app.extensions["engage.vault"])
    with db.transaction() as session:
        service.start_scheduled(session, now=now)
        unfinished = service.unfinished_fan_outs(session, now=now)
        remindable = [c.id for c in reminding.remindable_campaigns(session)]
        calling = campaign_calls.campaigns_with_due_calls(session, now=now)
    for campaign_id in unfinished:
        enqueue_fan_out(campaign_id, again=True)
    for campaign_id in calling:
        # Not beside a placer queued or at work already (engage.jobs.CALL_PLACER).
        counts["campaigns_calling"] += dispatch_campaign_calls(campaign_id)
    for campaign_id in remindable:
        after = 0
        while True:
            with db.transaction() as session:
                campaign = session.get_one(Campaign, campaign_id)
                written = reminding.write_reminders(
                    session,
                    settings,
                    campaign,
                    quiet_hours=config["ENGAGE_QUIET_HOURS"],
                    now=now,
                    after_id=after,
                )
            dispatch_sends(written.message_ids, queue_name=BULK)
            counts["reminders"] += len(written.message_ids)
            if written.last_invitation_id is None:
                break
            after = written.last_invitation_id
    with db.transaction() as session:
        counts["campaigns_finished"] = finish_done(session, now=now)
    return counts


def finish_done(session: Session, *, now: datetime) -> int:
    """Running campaigns whose invitations are all written and sent (or dropped), with no
    reminder to come, finish; how many."""
    finished = 0
    for campaign in service.running_fanned_out(session):
        if service.has_unsent(session, campaign.id):
            continue
        if reminding.has_reminders_to_come(session, campaign):
            continue
        campaign.state = CampaignState.FINISHED
        campaign.ended_at = now
        finished += 1
        log.info("campaign %s: finished", campaign.id)
    session.flush()
    return finished
