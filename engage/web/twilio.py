"""Twilio's webhooks: inbound messages and delivery status."""

from __future__ import annotations

import logging

from flask import Blueprint, Response, abort, request

from engage import db
from engage.intake import InboundForm, MalformedWebhookError, accept
from engage.services.delivery import record_callback
from engage.web.decorators import twilio_signed

log = logging.getLogger(__name__)

bp = Blueprint("twilio", __name__, url_prefix="/twilio")

EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>'


def twiml() -> Response:
    # text/xml, never text/plain: Twilio would send a plain-text body to the worker as an SMS
    # (docs/twilio.md §2).
    return Response(EMPTY_TWIML, status=200, mimetype="text/xml")


@bp.post("/messages")
@twilio_signed
def inbound_message() -> Response:
    try:
        form = InboundForm.parse(request.form)
    except MalformedWebhookError as exc:
        log.warning("webhook /twilio/messages: malformed: %s", exc)
        abort(400)
    accept(form)
    return twiml()


@bp.post("/status")
@twilio_signed
def delivery_status() -> tuple[str, int]:
    sid = request.form.get("MessageSid") or request.form.get("SmsSid")
    status = request.form.get("MessageStatus") or request.form.get("SmsStatus")
    if not sid or not status:
        abort(400)
    raw_code = request.form.get("ErrorCode") or None
    raw_id = request.args.get("m")
    try:
        error_code = int(raw_code) if raw_code else None
        message_id = int(raw_id) if raw_id else None
    except ValueError:
        abort(400)
    with db.transaction() as session:
        record_callback(
            session, sid=sid, status=status, error_code=error_code, message_id=message_id
        )
    return "", 204
