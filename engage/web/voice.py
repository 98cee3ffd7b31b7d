"""Twilio's voice webhooks: a call comes in, each step's keys, and the call's status; and the
recorded prompts Twilio plays (`/media/<name>`)."""

from __future__ import annotations

import logging
import re

from flask import Blueprint, Response, abort, current_app, request

from engage import db
from engage.jobs import dispatch_call
from engage.privacy import parse_sender
from engage.services import media as media_files
from engage.services.conversations import settings_from
from engage.services.voice import (
    Pressed,
    VoiceSettings,
    answer_call,
    hang_up,
    is_answering_machine,
    record_call_status,
    reject_busy,
    request_callback,
    take_step,
)
from engage.web.decorators import twilio_signed

log = logging.getLogger(__name__)

bp = Blueprint("voice", __name__)

_CALL_SID = re.compile(r"^CA[0-9a-fA-F]{32}$")
_RECORDING_SID = re.compile(r"^RE[0-9a-fA-F]{32}$")
_MEDIA_NAME = re.compile(r"^[0-9a-f]{64}\.(wav|mp3)$")
# A recording never changes under its name: Twilio (and phones) may keep it a year.
_MEDIA_CACHE = "public, max-age=31536000, immutable"


def _twiml(text: str) -> Response:
    return Response(text, status=200, mimetype="text/xml")


def _settings() -> VoiceSettings:
    app = current_app
    return VoiceSettings(
        conversations=settings_from(app.config, app.extensions["engage.vault"]),
        hotline=app.config["ENGAGE_HOTLINE_NUMBER"],
        base_url=app.config["ENGAGE_PUBLIC_URL"] or request.host_url.rstrip("/"),
    )


def _call_form() -> tuple[str, str, str]:
    """CallSid, the caller and our number; 400 unless they are Twilio's."""
    sid = request.form.get("CallSid", "")
    direction = request.form.get("Direction", "inbound")
    # On a call we placed, the worker is `To`.
    caller, ours = ("To", "From") if direction.startswith("outbound") else ("From", "To")
    number, our_number = request.form.get(caller, ""), request.form.get(ours, "")
    if not _CALL_SID.match(sid) or not our_number:
        abort(400)
    return sid, number, our_number


@bp.post("/twilio/voice")
@twilio_signed
def incoming_call() -> Response:
    sid, caller, ours = _call_form()
    token = request.args.get("c") or None
    answered_by = request.form.get("AnsweredBy", "")
    if not parse_sender(caller).is_phone:
        # A withheld or non-phone caller ID: no contact can be kept for it.
        log.info("call %s: caller is not a phone number; hung up", sid)
        return _twiml(hang_up())
    if token and answered_by:
        # Who answered a call we placed: a person (or "unknown") counts as answered.
        with db.engine().begin() as connection:
            record_call_status(
                connection,
                token=token,
                sid=sid,
                status="in-progress",
                sequence=None,
                answered_by=answered_by,
            )
        if is_answering_machine(answered_by):
            log.info("call %s: answered by %s; hung up", sid, answered_by)
            return _twiml(hang_up())
    if token is None and current_app.config["ENGAGE_VOICE_CALLBACK"]:
        # Rejected before it is answered: the worker pays nothing, and we call back.
        vault = current_app.extensions["engage.vault"]
        with db.engine().begin() as connection:
            call_id = request_callback(
                connection,
                vault,
                caller=caller,
                to=ours,
                attestation=request.form.get("StirVerstat", ""),
            )
        if call_id is not None:
            dispatch_call(call_id)
        return _twiml(reject_busy())
    with db.engine().begin() as connection:
        twiml = answer_call(
            connection,
            _settings(),
            sid=sid,
            caller=caller,
            to=ours,
            token=token,
        )
    return _twiml(twiml)


@bp.post("/twilio/voice/step")
@twilio_signed
def call_step() -> Response:
    sid, caller, _ours = _call_form()
    token = request.args.get("c", "")
    try:
        step = int(request.args.get("s", ""))
    except ValueError:
        abort(400)
    recording_sid = request.form.get("RecordingSid") or None
    recording_url = request.form.get("RecordingUrl") or None
    if recording_url and not recording_sid:
        # The action request may carry only the URL; the SID is its last part.
        recording_sid = recording_url.rstrip("/").rpartition("/")[2] or None
    if recording_sid and not _RECORDING_SID.match(recording_sid):
        abort(400)
    try:
        seconds = int(request.form.get("RecordingDuration") or 0) or None
    except ValueError:
        abort(400)
    pressed = Pressed(
        digits=request.form.get("Digits", "")[:40],
        finished_on_key=request.form.get("FinishedOnKey", ""),
        recording_sid=recording_sid,
        recording_url=recording_url,
        recording_seconds=seconds,
        after=request.args.get("a") or None,
    )
    with db.engine().begin() as connection:
        twiml = take_step(
            connection, _settings(), token=token, step=step, caller=caller, pressed=pressed
        )
    if twiml is None:
        log.warning("call %s: step for an unknown call", sid)
        abort(404)
    return _twiml(twiml)


@bp.post("/twilio/voice/status")
@twilio_signed
def call_status() -> tuple[str, int]:
    """A call's progress (the calls we place): 204, also for an unknown call (logged)."""
    sid = request.form.get("CallSid", "")
    status = request.form.get("CallStatus", "")
    if not _CALL_SID.match(sid) or not status:
        abort(400)
    try:
        raw_sequence = request.form.get("SequenceNumber")
        sequence = int(raw_sequence) if raw_sequence else None
        duration = int(request.form.get("CallDuration") or 0) or None
    except ValueError:
        abort(400)
    with db.engine().begin() as connection:
        known = record_call_status(
            connection,
            token=request.args.get("c") or None,
            sid=sid,
            status=status,
            sequence=sequence,
            duration=duration,
            answered_by=request.form.get("AnsweredBy") or None,
        )
    if not known:
        log.info("call %s: status %s for an unknown call", sid, status)
    return "", 204


@bp.get("/media/<name>")
def media(name: str) -> Response:
    """A system prompt or a published survey's recording, by its content; 404 for anything
    else."""
    if not _MEDIA_NAME.match(name):
        abort(404)
    with db.engine().connect() as connection:
        found = media_files.find_media(connection, current_app.config["ENGAGE_LOCALES_DIR"], name)
    if found is None:
        abort(404)
    data, mimetype = found
    response = Response(data, mimetype=mimetype)
    response.headers["Cache-Control"] = _MEDIA_CACHE
    response.set_etag(name.partition(".")[0])
    response.make_conditional(request)
    return response
