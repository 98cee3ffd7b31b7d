"""Starting a campaign: rows written in batches, each batch handed to `bulk` after its commit."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from flask import current_app

from engage import db
from engage.jobs import BULK, dispatch_sends
from engage.services.campaigns import (
    BATCH,
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
    sender = config["TWILIO_WHATSAPP_FROM"] if channel == "whatsapp" else config["TWILIO_SMS_FROM"]
    if not sender:
        if config["IS_PRODUCTION"]:
            name = "TWILIO_WHATSAPP_FROM" if channel == "whatsapp" else "TWILIO_SMS_FROM"
            raise CampaignError(f"{name} is not set: no number to send from")
        sender = "whatsapp:+15550000000" if channel == "whatsapp" else "+15550000000"
    settings = settings_from(config, current_app.extensions["engage.vault"])
    with db.transaction() as session:
        campaign = create_campaign(session, survey_id, where=where, channel=channel, start_at=at)
        survey = DatabaseCatalog(session).get(campaign.survey_id, campaign.version)
        ids = matching_contact_ids(session, campaign, repeat=survey.repeat)
        campaign_id = campaign.id
    sent_now = scheduled = 0
    for chunk in batches(ids, batch_size):
        with db.transaction() as session:
            campaign = session.get_one(type(campaign), campaign_id)
            batch = invite_batch(
                session,
                settings,
                campaign,
                chunk,
                sender=sender,
                quiet_hours=config["ENGAGE_QUIET_HOURS"],
            )
        dispatch_sends(batch.send_now, queue_name=BULK)
        sent_now += len(batch.send_now)
        scheduled += batch.scheduled
    log.info("campaign %s: %d invited", campaign_id, len(ids))
    return CampaignSummary(campaign_id, len(ids), sent_now, scheduled)
