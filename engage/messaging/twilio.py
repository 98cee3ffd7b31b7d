"""The real sender: Twilio's Messages API through the twilio package, errors sorted by what is safe.

Twilio has no idempotency key for creating a message (docs/twilio.md §4.3), so every failure is
sorted three ways: permanent (Twilio said no for good), transient (the message surely does not
exist: safe to send again) and ambiguous (it may exist: `lookup` before anything else).
"""

from __future__ import annotations

import json
import logging
import re
import threading
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests
from twilio.base.exceptions import TwilioException, TwilioRestException, TwilioServiceException
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client
from urllib3.exceptions import NewConnectionError

from engage.messaging import (
    AmbiguousSendError,
    OutboundMessage,
    PermanentSendError,
    SendError,
    SendResult,
    TransientSendError,
)

log = logging.getLogger(__name__)

# docs/twilio.md §4.3. Codes that say "not now, later": the request was refused before a
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
TWILIO_API = "https://api.twilio.com"
STATUS_CALLBACK_PATH = "/twilio/status"  # DESIGN.md: POST /twilio/status
# How far before the attempt `lookup` searches: Twilio's clock and ours may disagree a little.
LOOKUP_SLACK = timedelta(minutes=2)
LOOKUP_LIMIT = 50

_PHONE_LIKE = re.compile(r"\+?\d[\d\s().-]{5,}\d")

# twilio's HttpClient logs each request's URL and query at INFO; a lookup's query holds the
# worker's phone number. This logger is outside the logging tree and drops everything below
# WARNING, so numbers never reach the application's logs.
_quiet_twilio_logger = logging.Logger("engage.messaging.twilio.http", level=logging.WARNING)


class RedirectingHttpClient(TwilioHttpClient):
    """twilio's own HTTP client (requests Session, Basic auth, form encoding), sent elsewhere."""

    # docs/twilio.md §8.2 (option A, verified there) rewrites every *.twilio.com URL to the base
    # URL. We take it over §8.3 (setting `client.api.base_url`, also verified) because it covers
    # every Twilio domain (api, content, messaging, …) through the http_client hook the library
    # documents, not an undocumented attribute per domain, and still works if an edge/region
    # rewrote the host first. Production's code path (requests Session, auth, encoding) is kept.

    def __init__(self, base_url: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._base = urlsplit(base_url.rstrip("/"))

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Response:
        """Send to the base URL instead of Twilio, keeping path and query."""
        parts = urlsplit(url)
        if parts.hostname and parts.hostname.endswith("twilio.com"):
            url = urlunsplit(
                (
                    self._base.scheme,
                    self._base.netloc,
                    self._base.path + parts.path,
                    parts.query,
                    "",
                )
            )
        return super().request(method, url, *args, **kwargs)


class TwilioSender:
    """Sends through Twilio's Messages API; safe to call from several threads at once.

    twilio's client is not thread-safe (its HttpClient keeps the last request and response, and
    shares one requests Session: twilio/twilio-python#580), so each thread gets a client of its
    own, with its own kept-alive connection.
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
            if self._api_url:
                http_client: TwilioHttpClient = RedirectingHttpClient(
                    self._api_url, timeout=self._timeout, logger=_quiet_twilio_logger
                )
            else:
                http_client = TwilioHttpClient(timeout=self._timeout, logger=_quiet_twilio_logger)
            _read_environment_once(http_client, self._api_url or TWILIO_API)
            # environment={}: no TWILIO_EDGE/TWILIO_REGION from the process environment; Engage
            # reads its configuration once, in create_app (STYLE.md).
            client = Client(
                self.account_sid, self._auth_token, http_client=http_client, environment={}
            )
            self._local.client = client
        return client

    def send(self, message: OutboundMessage) -> SendResult:
        """Create the message at Twilio; raises a SendError subclass saying what is safe next."""
        try:
            created = self.client.messages.create(**self.create_params(message))
        except (TwilioException, requests.RequestException) as exc:
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
            if message.to.startswith("whatsapp:") and not sender.startswith("whatsapp:"):
                sender = "whatsapp:" + sender  # a WhatsApp sender configured as a bare number
            params["from_"] = sender
        if message.content_sid:
            # Outside the WhatsApp window Twilio refuses a Body sent with the template (63016,
            # docs/twilio.md §4.2): the template alone, its variables as a JSON string.
            params["content_sid"] = message.content_sid
            if message.content_variables:
                params["content_variables"] = json.dumps(
                    message.content_variables, ensure_ascii=False, separators=(",", ":")
                )
        else:
            params["body"] = message.body
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
        except (TwilioException, requests.RequestException) as exc:
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

    def fetch_status(self, sid: str) -> str:
        """The message's current status at Twilio (queued, sent, delivered, …)."""
        try:
            return self.client.messages(sid).fetch().status or ""
        except (TwilioException, requests.RequestException) as exc:
            error = classify_send_error(exc)
            if not isinstance(error, PermanentSendError):
                error = TransientSendError(error.code, error.message, status=error.status)
            raise error from exc


def _read_environment_once(http_client: TwilioHttpClient, url: str) -> None:
    """Take the proxy and CA-bundle settings from the environment now, not on every request.

    requests looks them up on each request (it walks the whole environment for *_proxy
    variables), which was about a fifth of a send's CPU. They are read once, when the client
    is made, as all configuration is (STYLE.md); HTTPS_PROXY and NO_PROXY still apply.
    """
    session = http_client.session
    if session is None:
        return
    settings = session.merge_environment_settings(url, {}, None, None, None)
    session.proxies.update(settings["proxies"])
    session.verify = settings["verify"]
    session.trust_env = False


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
            # may have been created (docs/twilio.md §0 rule 2, §4.3 "5xx … → ambiguous").
            return AmbiguousSendError(code, text, status=status)
        if 400 <= status < 500:
            return PermanentSendError(code, text, status=status)
        return AmbiguousSendError(code, text, status=status)
    if isinstance(exc, requests.RequestException):
        if _never_reached_twilio(exc):
            return TransientSendError(None, f"no connection to Twilio: {type(exc).__name__}")
        if isinstance(exc, requests.exceptions.InvalidURL | requests.exceptions.InvalidSchema):
            return PermanentSendError(None, f"bad Twilio API URL: {type(exc).__name__}")
        # A read timeout, a connection dropped or reset after the request went out, a broken
        # answer: Twilio may have created the message.
        return AmbiguousSendError(None, f"answer lost: {type(exc).__name__}")
    if isinstance(exc, TwilioException):
        return AmbiguousSendError(None, _redact(str(exc)))
    raise TypeError(f"not a Twilio or requests error: {exc!r}")


def _never_reached_twilio(exc: requests.RequestException) -> bool:
    """True when the request surely never left: no TCP connection, or no TLS session."""
    if isinstance(exc, requests.exceptions.ConnectTimeout | requests.exceptions.SSLError):
        return True
    if isinstance(exc, requests.exceptions.ProxyError):
        return False  # the proxy may have forwarded it
    if isinstance(exc, requests.ConnectionError):
        # requests wraps urllib3's MaxRetryError, whose reason says how the attempt failed;
        # NewConnectionError (refused, unreachable, DNS) comes before anything is sent.
        reason = getattr(exc.args[0], "reason", None) if exc.args else None
        return isinstance(reason, NewConnectionError)
    return False


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
