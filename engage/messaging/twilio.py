"""The real sender: Twilio's Messages API through the twilio package, errors sorted by what is safe.

Twilio has no idempotency key for creating a message (docs/twilio.md §5), so every failure is
sorted three ways (docs/twilio.md §4): permanent (Twilio said no for good), transient (the
message surely does not exist: safe to send again) and ambiguous (it may exist: `lookup` before
anything else).
"""

from __future__ import annotations

import json
import logging
import re
import ssl
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

from twilio.base.exceptions import TwilioException, TwilioRestException, TwilioServiceException
from twilio.rest import Client
from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError,
    LocationValueError,
    ProxyError,
    SSLError,
)

from engage.channels import split_address
from engage.messaging import (
    AmbiguousSendError,
    OutboundCall,
    OutboundMessage,
    PermanentSendError,
    SendError,
    SendResult,
    TransientSendError,
)
from engage.messaging.twilio_http import TwilioApiHttpClient

log = logging.getLogger(__name__)

# Twilio's error codes that say "not now, later": the request was refused before a
# message was created, so sending again is safe.
TRANSIENT_CODES = frozenset(
    {
        20429,  # too many concurrent requests: "never processed and is always safe to retry"
        21611,  # the sender's queue holds 10 h already: slow down
        30001,  # queue overflow (Messaging Service)
        63017,  # account over 2000 MPS
        63018,  # WhatsApp rate / messaging limit: retry in hours
    }
)
# Codes that retrying the same request never fixes, whatever the HTTP status. Any other 4xx is
# permanent too.
PERMANENT_CODES = frozenset(
    {
        20003,  # authentication: wrong SID or token (configuration)
        20404,  # no such account or resource (configuration)
        21211,  # invalid To
        21408,  # sending to that region is not enabled
        21602,  # no body
        21603,  # no From / Messaging Service
        21604,  # no To
        21608,  # trial account, unverified number
        21610,  # the worker opted out (STOP)
        21612,  # To not reachable from this From
        21614,  # To is not a mobile number
        21617,  # body over 1600 characters
        21619,  # no body, media or content
        21635,  # To is a landline
        21654,  # ContentVariables without ContentSid
        30005,  # unknown handset
        30006,  # landline or unreachable carrier
        30007,  # filtered as spam
        63003,  # not a WhatsApp user
        63014,  # the worker blocked us on WhatsApp
        63016,  # outside the WhatsApp 24 h window without a template
    }
)
# DELETE of a message Twilio has not finished with: try again later (docs/twilio.md §10).
NOT_FINAL_CODE = 20009
STATUS_CALLBACK_PATH = "/twilio/status"  # docs/twilio.md §3
# How long a call we place rings before it counts as not answered.
CALL_RING_SECONDS = 25
# How far before the attempt `lookup` searches: Twilio's clock and ours may disagree a little.
LOOKUP_SLACK = timedelta(minutes=2)
LOOKUP_LIMIT = 50

_PHONE_LIKE = re.compile(r"\+?\d[\d\s().-]{5,}\d")


class TwilioSender:
    """Sends through Twilio's Messages API; safe to call from several threads at once.

    twilio's client is not thread-safe (twilio/twilio-python#580), so each thread gets a client
    of its own, with its own kept-alive connection (`TwilioApiHttpClient`).
    """

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        api_url: str | None = None,
        timeout: float = 10.0,
        status_callback_base: str | None = None,
    ) -> None:
        self.account_sid = account_sid
        self._auth_token = auth_token
        self._api_url = api_url
        self._timeout = timeout
        self._local = threading.local()
        self.status_callback_base = (
            status_callback_base.rstrip("/") if status_callback_base else None
        )

    @property
    def client(self) -> Client:
        """This thread's twilio client (made on first use)."""
        client = getattr(self._local, "client", None)
        if client is None:
            http_client = TwilioApiHttpClient(timeout=self._timeout, base_url=self._api_url)
            # environment={}: no TWILIO_EDGE/TWILIO_REGION from the process environment; Engage
            # reads its configuration once, in create_app (docs/architecture.md §7).
            client = Client(
                self.account_sid, self._auth_token, http_client=http_client, environment={}
            )
            self._local.client = client
        return client

    def send(self, message: OutboundMessage) -> SendResult:
        """Create the message at Twilio; raises a SendError subclass saying what is safe next."""
        try:
            created = self.client.messages.create(**self.create_params(message))
        except (TwilioException, HTTPError) as exc:
            error = classify_send_error(exc)
            log.info(
                "message %s: %s to %s, code=%s",
                message.message_id,
                type(error).__name__,
                message.contact,
                error.code,
            )
            raise error from exc
        log.info(
            "message %s: sent sid=%s status=%s", message.message_id, created.sid, created.status
        )
        return SendResult(sid=created.sid or "", status=created.status or "queued")

    def create_params(self, message: OutboundMessage) -> dict[str, Any]:
        """The keyword arguments of messages.create for this message."""
        params: dict[str, Any] = {"to": message.to}
        sender = message.from_
        if sender and sender.startswith("MG"):
            params["messaging_service_sid"] = sender
        elif sender:
            channel, _number = split_address(message.to)
            if channel.prefix and not sender.startswith(channel.prefix):
                sender = channel.prefix + sender  # a sender configured as a bare number
            params["from_"] = sender
        if message.content_sid:
            # Outside the WhatsApp window Twilio refuses a Body sent with the template (63016):
            # the template alone, its variables as a JSON string.
            params["content_sid"] = message.content_sid
            if message.content_variables:
                params["content_variables"] = json.dumps(
                    message.content_variables, ensure_ascii=False, separators=(",", ":")
                )
        else:
            params["body"] = message.body
            if message.media_url:
                params["media_url"] = [message.media_url]
        callback = message.status_callback
        if callback is None and self.status_callback_base:
            callback = self.status_callback_base + STATUS_CALLBACK_PATH
        if callback:
            params["status_callback"] = callback
        return params

    def lookup(self, message: OutboundMessage, since: datetime) -> SendResult | None:
        """The message as Twilio has it when an earlier attempt's answer was lost, else None."""
        after = _as_utc(since) - LOOKUP_SLACK
        # No DateSent filter: a message still queued at Twilio has no date_sent yet, and would
        # be missed. Our attempt is recent, so it is on the first page, newest first.
        filters: dict[str, Any] = {"to": message.to}
        service = message.from_ if message.from_ and message.from_.startswith("MG") else None
        if message.from_ and service is None:
            filters["from_"] = self.create_params(message)["from_"]
        try:
            candidates = self.client.messages.list(limit=LOOKUP_LIMIT, **filters)
        except (TwilioException, HTTPError) as exc:
            error = classify_send_error(exc)
            if not isinstance(error, PermanentSendError):
                # A GET creates nothing: whatever went wrong, asking again is safe.
                error = TransientSendError(error.code, error.message, status=error.status)
            raise error from exc
        matches = [
            found
            for found in candidates
            if (found.direction or "").startswith("outbound")
            and (service is None or found.messaging_service_sid == service)
            and (found.date_created is None or found.date_created >= after)
            # A template's body at Twilio is the rendered text, which we cannot predict.
            and (message.content_sid or _same_text(found.body, message.body))
        ]
        if not matches:
            log.info("message %s: not found at Twilio", message.message_id)
            return None
        # Twilio lists newest first; the earliest match after the attempt is ours.
        found = matches[-1]
        if len(matches) > 1:
            log.warning(
                "message %s: %s matches at Twilio, taking the earliest sid=%s",
                message.message_id,
                len(matches),
                found.sid,
            )
        log.info("message %s: found at Twilio sid=%s", message.message_id, found.sid)
        return SendResult(sid=found.sid or "", status=found.status or "queued")

    def place_call(self, call: OutboundCall) -> str:
        """Create the call at Twilio (docs/voice.md §3): answering-machine detection on, so a
        machine is hung up on before it hears anything."""
        try:
            created = self.client.calls.create(
                to=call.to,
                from_=call.from_,
                url=call.url,
                method="POST",
                status_callback=call.status_callback,
                # Only the call's end (Twilio's default event): its status says answered
                # (completed), busy, no-answer or failed.
                status_callback_method="POST",
                machine_detection="Enable",
                timeout=CALL_RING_SECONDS,
            )
        except (TwilioException, HTTPError) as exc:
            error = classify_send_error(exc)
            log.info(
                "call %s: %s to %s, code=%s",
                call.call_id,
                type(error).__name__,
                call.contact,
                error.code,
            )
            raise error from exc
        log.info("call %s: placed sid=%s", call.call_id, created.sid)
        return created.sid or ""

    def delete(self, sid: str) -> bool:
        """Delete a message, a recording (RE…) or a call's record (CA…) at Twilio (erasure; a
        message's media go with it): True once it is gone, also when Twilio no longer has it;
        False while it is not final (20009: try later)."""
        try:
            if sid.startswith("RE"):
                self.client.recordings(sid).delete()
            elif sid.startswith("CA"):
                self.client.calls(sid).delete()
            else:
                self.client.messages(sid).delete()
        except TwilioRestException as exc:
            if exc.status == 404:
                return True
            if exc.code == NOT_FINAL_CODE:
                return False
            raise classify_send_error(exc) from exc
        except (TwilioException, HTTPError) as exc:
            raise classify_send_error(exc) from exc
        return True


def classify_send_error(exc: Exception) -> SendError:
    """What a failed create means: permanent, transient (safe to resend) or ambiguous."""
    if isinstance(exc, TwilioRestException | TwilioServiceException):
        status = int(exc.status)
        code = int(exc.code) if exc.code is not None else None
        text = _redact(exc.msg if isinstance(exc, TwilioRestException) else exc.detail or exc.title)
        if status == 429 or code in TRANSIENT_CODES:
            return TransientSendError(code, text, status=status)
        if code in PERMANENT_CODES:
            return PermanentSendError(code, text, status=status)
        if status >= 500:
            # Twilio answered, but with a server error after the request arrived: the message
            # may have been created.
            return AmbiguousSendError(code, text, status=status)
        if 400 <= status < 500:
            return PermanentSendError(code, text, status=status)
        return AmbiguousSendError(code, text, status=status)
    if isinstance(exc, HTTPError):
        if _never_reached_twilio(exc):
            return TransientSendError(None, f"no connection to Twilio: {type(exc).__name__}")
        if isinstance(exc, LocationValueError):
            return PermanentSendError(None, f"bad Twilio API URL: {type(exc).__name__}")
        # A read timeout, a connection dropped or reset after the request went out, a broken
        # answer: Twilio may have created the message.
        return AmbiguousSendError(None, f"answer lost: {type(exc).__name__}")
    if isinstance(exc, TwilioException):
        return AmbiguousSendError(None, _redact(str(exc)))
    raise TypeError(f"not a Twilio or HTTP error: {exc!r}")


def _never_reached_twilio(exc: HTTPError) -> bool:
    """True when the request surely never left: no TCP connection, or no TLS session.

    The client does not retry, so urllib3 raises the error itself, not a MaxRetryError.
    ConnectTimeoutError covers NewConnectionError (refused, unreachable, DNS). A proxy may
    have forwarded the request before it failed. urllib3 raises SSLError for a TLS failure
    while reading the answer too; only a refused certificate is surely the handshake.
    """
    if isinstance(exc, ProxyError):
        return False
    if isinstance(exc, SSLError):
        return bool(exc.args) and isinstance(exc.args[0], ssl.SSLCertVerificationError)
    return isinstance(exc, ConnectTimeoutError)


def _same_text(theirs: str | None, ours: str) -> bool:
    if theirs is None:
        return False
    return (
        theirs == ours or theirs.replace("\r\n", "\n").strip() == ours.replace("\r\n", "\n").strip()
    )


def _as_utc(when: datetime) -> datetime:
    # SQLite gives back naive datetimes; Engage stores UTC.
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def _redact(text: str) -> str:
    """Twilio's error messages may quote the number (21211): keep numbers out of our logs."""
    return _PHONE_LIKE.sub("<number>", text or "")
