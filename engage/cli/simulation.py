"""`engage simulate` and `engage chat`: the webhook's service, the console sender, no Twilio.

Like the webhook and the send job, it owns its transactions: one for the step, two per reply.
"""

from __future__ import annotations

import io

from flask import Flask

from engage import db
from engage.channels import channel_named
from engage.intake import strip_control_characters
from engage.jobs.alerts import dispatch_alerts
from engage.messaging.console import ConsoleSender
from engage.privacy import parse_sender
from engage.services import outbox
from engage.services.conversations import handle_inbound, settings_from

SIMULATED_TO = "+15550000000"


def simulate_message(app: Flask, phone: str, text: str, *, channel: str = "sms") -> list[str]:
    """One inbound message from PHONE; returns the texts actually delivered to it, in order."""
    vault = app.extensions["engage.vault"]
    described = channel_named(channel)
    address = described.address(phone)
    settings = settings_from(app.config, vault)
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
