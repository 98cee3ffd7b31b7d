"""Starting a campaign: rows written in batches, each batch handed to `bulk` after its commit."""

from __future__ import annotations

import logging
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime

from flask import current_app

from engage import db
from engage.channels import channel_named
from engage.jobs import BULK, dispatch_sends
from engage.models import Campaign
from engage.services.campaigns import (
    BATCH,
    Batch,
    CampaignError,
    batches,
    create_campaign,
    invite_batch,
    matching_contact_ids,
)
from engage.services.conversations import settings_from
from engage.services.surveys import DatabaseCatalog

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CampaignSummary:
    campaign_id: int
    invited: int
    sent_now: int
    scheduled: int


def start_campaign(
    survey_id: str,
    where: dict[str, str],
    channel: str,
    at: datetime | None,
    *,
    batch_size: int = BATCH,
) -> CampaignSummary:
    """Create the campaign and invite every matching contact."""
    config = current_app.config
    described = channel_named(channel)
    sender = config[described.sender_setting]
    if not sender:
        if config["IS_PRODUCTION"]:
            raise CampaignError(f"{described.sender_setting} is not set: no number to send from")
        sender = described.development_sender
    settings = settings_from(config, current_app.extensions["engage.vault"])
    with db.transaction() as session:
        campaign = create_campaign(session, survey_id, where=where, channel=channel, start_at=at)
        survey = DatabaseCatalog(session).get(campaign.survey_id, campaign.version)
        ids = matching_contact_ids(session, campaign, repeat=survey.repeat)
        campaign_id = campaign.id
    # The app's own method, not the proxy's: the threads below have no context to look it up in.
    app_context = current_app.app_context

    def invite(chunk: list[int]) -> Batch:
        """One batch in its own transaction; its due rows handed to `bulk` after the commit."""
        with app_context():
            with db.transaction() as session:
                batch = invite_batch(
                    session,
                    settings,
                    session.get_one(Campaign, campaign_id),
                    chunk,
                    sender=sender,
                    quiet_hours=config["ENGAGE_QUIET_HOURS"],
                )
            dispatch_sends(batch.send_now, queue_name=BULK)
        return batch

    # On PostgreSQL two batches are in flight: while one waits for the server (the foreign-key
    # checks at the end of each COPY, the commit), the other builds its rows. SQLite has one
    # writer at a time anyway.
    in_flight = 2 if db.engine().dialect.name == "postgresql" else 1
    done: list[Batch] = []
    with ThreadPoolExecutor(max_workers=in_flight, thread_name_prefix="campaign") as pool:
        running: deque[Future[Batch]] = deque()
        for chunk in batches(ids, batch_size):
            if len(running) == in_flight:
                done.append(running.popleft().result())
            running.append(pool.submit(invite, chunk))
        done.extend(future.result() for future in running)
    sent_now = sum(len(batch.send_now) for batch in done)
    scheduled = sum(batch.scheduled for batch in done)
    log.info("campaign %s: %d invited", campaign_id, len(ids))
    return CampaignSummary(campaign_id, len(ids), sent_now, scheduled)
