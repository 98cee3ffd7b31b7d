"""Simulated messages: `engage simulate`, `engage chat` and the staff simulator share this path.

One inbound message goes through the webhook's service with the console sender, never Twilio.
Like the webhook and the send job, it owns its transactions: one for the step, two per reply.
"""

from __future__ import annotations

import io
from dataclasses import replace

from flask import Flask
from sqlalchemy import Connection
from sqlalchemy.orm import Session

from engage import db
from engage.channels import channel_named
from engage.intake import strip_control_characters
from engage.jobs.alerts import dispatch_alerts
from engage.messaging.console import ConsoleSender
from engage.privacy import parse_sender
from engage.services import outbox
from engage.services.conversations import Settings, handle_inbound, settings_from
from engage.services.simulator import DraftCatalog
from engage.services.voice import Pressed, VoiceSettings, simulated_step
from engage.survey.definition import Survey
from engage.survey.voice import Screen

SIMULATED_TO = "+15550000000"


def simulate_message(
    app: Flask, phone: str, text: str, *, channel: str = "sms", draft: Survey | None = None
) -> list[str]:
    """One inbound message from PHONE; returns the texts actually delivered to it, in order.

    With `draft`, the engine runs that survey (a draft, checked) instead of the published ones:
    its keywords start it and no other survey's do. Raises LookupError when the contact's open
    conversation is on a version the engine cannot find (a draft changed since it began).
    """
    vault = app.extensions["engage.vault"]
    described = channel_named(channel)
    address = described.address(phone)
    settings = _settings(app, draft)
    with db.engine().begin() as connection:
        result = handle_inbound(
            connection,
            settings,
            sender=parse_sender(address),
            to=described.address(SIMULATED_TO),
            body=strip_control_characters(text),
            is_simulated=True,
        )
    # Staff see a simulated urgent message as any other (the alert says it is simulated).
    if result.urgent_message_id is not None:
        dispatch_alerts([result.urgent_message_id])
    # Always the console sender, never Twilio: a simulation reaches nobody's phone. Each reply
    # goes through the same claim and record as any other send.
    sender = ConsoleSender(stream=io.StringIO())
    for message_id in result.outbound_ids:
        with db.transaction() as session:
            claimed = outbox.claim_chunk(session, vault, [message_id])
        sent = [(m.message_id, sender.send(m)) for m in claimed]
        with db.transaction() as session:
            outbox.record_chunk(session, sent=sent)
    return [m.body for m in sender.sent]


def simulate_call(
    app: Flask,
    phone: str,
    *,
    token: str | None,
    pressed: Pressed | None = None,
    draft: Survey | None = None,
) -> tuple[str, Screen] | None:
    """One step of a simulated phone call from PHONE (a new call without `token`): the call's
    token and what the caller hears, as the staff simulator's phone shows it. Nobody is
    called, and the help line is never dialled. None for a token that is not a simulated
    call's."""
    settings = VoiceSettings(
        conversations=_settings(app, draft),
        hotline=app.config["ENGAGE_HOTLINE_NUMBER"],
        base_url="",  # recordings as /media/<name>, for the page to play
    )
    with db.engine().begin() as connection:
        return simulated_step(
            connection, settings, token=token, caller=phone, to=SIMULATED_TO, pressed=pressed
        )


def _settings(app: Flask, draft: Survey | None) -> Settings:
    """The conversation settings; with `draft`, the engine runs that survey only."""
    settings = settings_from(app.config, app.extensions["engage.vault"])
    if draft is None:
        return settings

    def draft_catalog(session: Session | Connection) -> DraftCatalog:
        return DraftCatalog(session, draft)

    return replace(settings, catalog=draft_catalog)
