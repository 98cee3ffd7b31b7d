"""The call job: place one call Engage makes (a missed call's call back) through the sender."""

from __future__ import annotations

import logging

from flask import current_app

from engage import db
from engage.jobs.send import message_sender
from engage.messaging import AmbiguousSendError, SendError, TransientSendError
from engage.services import voice

log = logging.getLogger(__name__)


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
    try:
        sid = message_sender().place_call(call)
    except AmbiguousSendError as exc:
        log.warning(
            "call-%s: Twilio's answer was lost (%s); its callbacks will tell", call_id, exc.code
        )
        return
    except TransientSendError as exc:
        log.info("call-%s: Twilio asks to try later (%s); the clock will", call_id, exc.code)
        with db.engine().begin() as connection:
            voice.record_try_later(connection, call_id)
        return
    except SendError as exc:
        with db.engine().begin() as connection:
            voice.record_not_placed(connection, call_id, exc.code)
        return
    with db.engine().begin() as connection:
        voice.record_placed(connection, call_id, sid)
