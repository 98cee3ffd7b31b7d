"""A recording fake of Twilio's Messages API (and of placing calls and deleting call records and
recordings): an HTTP server on 127.0.0.1 for tests and benchmarks.

In a test::

    with FakeTwilio() as fake:
        sender = TwilioSender(fake.account_sid, fake.auth_token, api_url=fake.base_url)
        fake.fail_next(1, status=429)
        ...
        assert fake.requests[0].form["To"] == ["+15551230000"]

Standalone, for benchmarks: ``python tests/fake_twilio.py --port 8999`` serves until killed and
prints its base URL and credentials.

It answers like Twilio's 2010 Messages API: basic auth (401, code 20003),
Twilio's JSON error shape, the create checks Twilio makes (21604, 21603, 21602, 21617, 21654),
a 201 Message resource, fetch by SID (404, code 20404), and a filtered list newest first. Every
create request is also checked against the CreateMessage schema of Twilio's OpenAPI description
(shared/twilio-openapi) and any mismatch is kept in ``violations``.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import json
import os
import re
import secrets
import signal
import socket
import socketserver
import threading
import time
from collections import deque
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

ACCOUNT_SID = "AC" + "a" * 32
AUTH_TOKEN = "fake-twilio-auth-token"
API_VERSION = "2010-04-01"
MESSAGES_PATH = "/2010-04-01/Accounts/{AccountSid}/Messages.json"
OPENAPI_PATH = Path(__file__).resolve().parents[2] / "shared/twilio-openapi/twilio_api_v2010.json"

_ROUTE = re.compile(r"/2010-04-01/Accounts/([^/]+)/(Messages|Calls|Recordings)(?:/([^/]+))?\.json")
_DEFAULT_CODES = {429: 20429, 500: 20500, 502: 20500, 503: 20503, 504: 20504}
_MESSAGES = {
    20003: "Authenticate",
    20404: "The requested resource was not found",
    20429: "Too Many Requests",
    20500: "Internal Server Error",
    20503: "Service Unavailable",
    20504: "Gateway Timeout",
    21211: "Invalid 'To' Phone Number",
    20009: "Cannot delete this resource before it is complete",
    21408: "Permission to send an SMS has not been enabled for the region indicated by the 'To'",
    21602: "Message body is required.",
    21603: "A 'From' phone number is required.",
    21604: "A 'To' phone number is required.",
    21610: "Attempt to send to unsubscribed recipient",
    21612: "The 'To' phone number is not currently reachable using the 'From' phone number",
    21614: "'To' number is not a valid mobile number",
    21617: "The concatenated message body exceeds the 1600 character limit.",
    21654: "ContentSid Required",
    63016: (
        "Failed to send freeform message because you are outside the allowed window. "
        "If you are using WhatsApp, please use a Message Template."
    ),
}


@dataclass(frozen=True)
class RecordedRequest:
    """One request the fake received, as parsed, with the status it answered."""

    method: str
    path: str  # without the query string
    form: dict[str, list[str]]  # POST body fields, or GET query parameters
    auth: tuple[str, str] | None  # HTTP basic (user, password)
    headers: dict[str, str]
    time: float  # time.time() when it arrived
    status: int
    connection: int  # which accepted TCP connection carried it (1, 2, …)

    def get(self, name: str) -> str | None:
        """The first value of a form field, or None."""
        values = self.form.get(name)
        return values[0] if values else None


@dataclass
class _Failure:
    status: int
    code: int | None
    message: str
    created: bool  # the message exists at Twilio although the answer is an error


@dataclass
class _Stored:
    resource: dict[str, Any]
    created_at: datetime


class FakeTwilio:
    """Twilio's Messages API on 127.0.0.1, recording what it is sent; behaviours set per test."""

    def __init__(
        self,
        account_sid: str = ACCOUNT_SID,
        auth_token: str = AUTH_TOKEN,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        validate_schema: bool = True,
        openapi_path: str | Path | None = None,
    ) -> None:
        self.account_sid = account_sid
        self.auth_token = auth_token
        self._address = (host, port)
        self._validate_schema = validate_schema
        self._openapi_path = Path(
            openapi_path or os.environ.get("ENGAGE_TWILIO_OPENAPI") or OPENAPI_PATH
        )
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._schema: dict[str, Any] | None = None
        self._reset_state()

    def _reset_state(self) -> None:
        self._requests: list[RecordedRequest] = []
        self._reads: list[RecordedRequest] = []
        self._stored: list[_Stored] = []
        self._by_sid: dict[str, _Stored] = {}
        self._violations: list[str] = []
        self._failures: deque[_Failure] = deque()
        self._hangs: deque[float] = deque()
        self._drops = 0
        self._rejections: dict[str, tuple[int, int, str]] = {}
        self._delay = 0.0
        self._connections = 0
        self._deleted: list[str] = []
        self._unfinished = 0
        self._known: set[str] = set()
        self._calls: list[dict[str, Any]] = []

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> FakeTwilio:
        """Bind (a free port unless one was given) and serve in a daemon thread."""
        if self._validate_schema:
            self._schema = _create_message_schema(self._openapi_path)
        self._server = _Server(self._address, _Handler, self)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, wake hanging requests and close every open connection."""
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.close_connections()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FakeTwilio:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._server is not None, "start() the fake first"
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        """What to use instead of https://api.twilio.com."""
        return f"http://{self._address[0]}:{self.port}"

    @property
    def schema_loaded(self) -> bool:
        """Whether create requests are checked against Twilio's OpenAPI schema."""
        return self._schema is not None

    # -- what happened -----------------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every POST (create) received, answered or not, oldest first."""
        with self._lock:
            return list(self._requests)

    @property
    def reads(self) -> list[RecordedRequest]:
        """Every GET (fetch, list) received, oldest first."""
        with self._lock:
            return list(self._reads)

    @property
    def messages(self) -> list[dict[str, Any]]:
        """The Message resources created, oldest first."""
        with self._lock:
            return [stored.resource for stored in self._stored]

    @property
    def violations(self) -> list[str]:
        """Create requests that break Twilio's OpenAPI schema for CreateMessage."""
        with self._lock:
            return list(self._violations)

    @property
    def connections(self) -> int:
        """How many TCP connections were accepted."""
        with self._lock:
            return self._connections

    @property
    def deleted(self) -> list[str]:
        """The SIDs of the messages deleted, in order."""
        with self._lock:
            return list(self._deleted)

    @property
    def calls(self) -> list[dict[str, Any]]:
        """The calls placed (Calls create): each its resource and the form it was created
        with (repeated keys kept as lists), oldest first."""
        with self._lock:
            return list(self._calls)

    def know(self, *sids: str) -> None:
        """Hold these SIDs as existing messages (inbound ones, which the fake never created)."""
        with self._lock:
            self._known.update(sids)

    def message(self, sid: str) -> dict[str, Any] | None:
        """A created Message resource by SID."""
        with self._lock:
            stored = self._by_sid.get(sid)
            return stored.resource if stored else None

    # -- behaviours --------------------------------------------------------------------------

    def fail_next(
        self,
        n: int = 1,
        status: int = 500,
        code: int | None = None,
        message: str | None = None,
        *,
        created: bool = False,
    ) -> None:
        """Answer the next n creates with this error, before validating them (as a 429 is)."""
        # created=True: the message is created all the same (a 5xx after Twilio stored it).
        code = code if code is not None else _DEFAULT_CODES.get(status, status)
        text = message or _MESSAGES.get(code, "Error")
        with self._lock:
            self._failures.extend(_Failure(status, code, text, created) for _ in range(n))

    def reject(
        self, to: str, code: int = 21610, status: int = 400, message: str | None = None
    ) -> None:
        """Refuse every valid create to this address with a permanent error."""
        with self._lock:
            self._rejections[to] = (status, code, message or _MESSAGES.get(code, "Error"))

    def refuse_deletes(self, n: int = 1) -> None:
        """Answer the next n deletes with 20009: the message is not final yet (try later)."""
        with self._lock:
            self._unfinished += n

    def hang_next(self, n: int = 1, seconds: float = 2.0) -> None:
        """Create the next n messages, then wait this long before answering (the answer is lost)."""
        with self._lock:
            self._hangs.extend([seconds] * n)

    def drop_next(self, n: int = 1) -> None:
        """Create the next n messages, then close the connection without answering."""
        with self._lock:
            self._drops += n

    def delay(self, seconds: float) -> None:
        """Wait this long before handling every request (0 to stop)."""
        with self._lock:
            self._delay = seconds

    def reset(self) -> None:
        """Forget every request, message, violation and behaviour."""
        with self._lock:
            self._reset_state()

    # -- handling ----------------------------------------------------------------------------

    def _accepted(self) -> int:
        with self._lock:
            self._connections += 1
            return self._connections

    def _wait(self, seconds: float) -> None:
        self._stopping.wait(seconds)

    def handle(self, handler: _Handler, method: str) -> None:
        with self._lock:
            delay = self._delay
        if delay:
            self._wait(delay)
        split = urlsplit(handler.path)
        form: dict[str, list[str]]
        if method == "POST":
            length = int(handler.headers.get("Content-Length") or 0)
            raw = handler.rfile.read(length) if length else b""
            form = parse_qs(raw.decode("utf-8", "replace"), keep_blank_values=True)
        else:
            form = parse_qs(split.query, keep_blank_values=True)
        auth = _basic_auth(handler.headers.get("Authorization"))
        record = _Recorder(self, handler, method, split.path, form, auth)

        route = _ROUTE.fullmatch(split.path)
        if route is None:
            record.answer(404, _error(20404, _MESSAGES[20404], 404))
            return
        account, resource, sid = route.groups()
        if auth is None or auth != (self.account_sid, self.auth_token) or account != auth[0]:
            record.answer(401, _error(20003, _MESSAGES[20003], 401), authenticate=True)
            return
        if resource != "Messages":
            self._voice(record, method, account, resource, sid)
        elif method == "GET" and sid is None:
            self._list(record, account, form)
        elif method == "GET":
            self._fetch(record, account, sid)
        elif method == "POST" and sid is None:
            self._create(record, account, form)
        elif method == "DELETE" and sid is not None:
            self._delete(record, account, sid)
        else:
            record.answer(405, _error(20004, "Method not allowed", 405))

    def _create(self, record: _Recorder, account: str, form: dict[str, list[str]]) -> None:
        if self._schema is not None:
            problems = _schema_problems(self._schema, form)
            if problems:
                with self._lock:
                    self._violations.extend(f"POST {MESSAGES_PATH}: {p}" for p in problems)
        with self._lock:
            failure = self._failures.popleft() if self._failures else None
        if failure is not None and not failure.created:
            record.answer(failure.status, _error(failure.code, failure.message, failure.status))
            return

        to = _first(form, "To")
        from_ = _first(form, "From")
        service = _first(form, "MessagingServiceSid")
        body = _first(form, "Body")
        content_sid = _first(form, "ContentSid")
        media = form.get("MediaUrl", [])
        invalid = None
        if not to:
            invalid = 21604
        elif bool(from_) == bool(service):
            invalid = 21603
        elif not (body or content_sid or media):
            invalid = 21602
        elif _first(form, "ContentVariables") and not content_sid:
            invalid = 21654
        elif body and len(body) > 1600:
            invalid = 21617
        if invalid is not None:
            record.answer(400, _error(invalid, _MESSAGES[invalid], 400))
            return
        assert to is not None
        with self._lock:
            rejection = self._rejections.get(to)
        if rejection is not None:
            status, code, text = rejection
            record.answer(status, _error(code, text, status))
            return

        resource = self._store(account, to, from_, service, body or "", len(media))
        if failure is not None:
            record.answer(failure.status, _error(failure.code, failure.message, failure.status))
            return
        with self._lock:
            hang = self._hangs.popleft() if self._hangs else None
            drop = self._drops > 0
            if drop and hang is None:
                self._drops -= 1
        if hang is not None:
            record.note(201)
            self._wait(hang)
            record.answer(201, resource, noted=True)
        elif drop:
            record.drop(201)
        else:
            record.answer(201, resource)

    def _store(
        self,
        account: str,
        to: str,
        from_: str | None,
        service: str | None,
        body: str,
        num_media: int,
    ) -> dict[str, Any]:
        sid = "SM" + secrets.token_hex(16)
        now = datetime.now(UTC)
        stamp = format_datetime(now)
        uri = f"/{API_VERSION}/Accounts/{account}/Messages/{sid}.json"
        base = uri[: -len(".json")]
        whatsapp = to.startswith("whatsapp:")
        resource = {
            "account_sid": account,
            "api_version": API_VERSION,
            "body": body,
            "date_created": stamp,
            "date_sent": None,
            "date_updated": stamp,
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            # With a Messaging Service Twilio picks the sender later: no From yet, "accepted".
            "from": from_,
            "messaging_service_sid": service,
            "num_media": str(num_media),
            "num_segments": "1" if whatsapp else str(_segments(body)),
            "price": None,
            "price_unit": "USD",
            "sid": sid,
            "status": "accepted" if service else "queued",
            "subresource_uris": {
                "media": f"{base}/Media.json",
                "feedback": f"{base}/Feedback.json",
            },
            "to": to,
            "uri": uri,
        }
        stored = _Stored(resource, now)
        with self._lock:
            self._stored.append(stored)
            self._by_sid[sid] = stored
        return resource

    def _fetch(self, record: _Recorder, account: str, sid: str) -> None:
        with self._lock:
            stored = self._by_sid.get(sid)
        if stored is None or stored.resource["account_sid"] != account:
            record.answer(404, _error(20404, _MESSAGES[20404], 404))
        else:
            record.answer(200, stored.resource)

    def _delete(self, record: _Recorder, account: str, sid: str) -> None:
        """DELETE …/Messages/{Sid}.json: 204, 404 (20404) when unknown, 400 (20009) when held."""
        with self._lock:
            stored = self._by_sid.get(sid)
            exists = sid in self._known or (
                stored is not None and stored.resource["account_sid"] == account
            )
            unfinished = exists and self._unfinished > 0
            if unfinished:
                self._unfinished -= 1
            elif exists:
                self._by_sid.pop(sid, None)
                self._stored = [s for s in self._stored if s is not stored]
                self._known.discard(sid)
                self._deleted.append(sid)
        if not exists:
            record.answer(404, _error(20404, _MESSAGES[20404], 404))
        elif unfinished:
            record.answer(400, _error(20009, _MESSAGES[20009], 400))
        else:
            record.answer(204, None)

    def _voice(
        self, record: _Recorder, method: str, account: str, resource: str, sid: str | None
    ) -> None:
        """Calls create (201), and DELETE of a call's record or a recording (204, 404 when
        unknown)."""
        if method == "POST" and resource == "Calls" and sid is None:
            form = record.form
            with self._lock:
                failure = self._failures.popleft() if self._failures else None
            if failure is not None:
                record.answer(failure.status, _error(failure.code, failure.message, failure.status))
                return
            to, from_ = _first(form, "To"), _first(form, "From")
            if not to or not from_:
                record.answer(400, _error(21201, "No 'To' or 'From' number is specified", 400))
                return
            if not (_first(form, "Url") or _first(form, "Twiml") or _first(form, "ApplicationSid")):
                record.answer(400, _error(21205, "Url parameter is required.", 400))
                return
            call_sid = "CA" + secrets.token_hex(16)
            call = {
                "sid": call_sid,
                "account_sid": account,
                "to": to,
                "from": from_,
                "status": "queued",
                "direction": "outbound-api",
                "uri": f"/{API_VERSION}/Accounts/{account}/Calls/{call_sid}.json",
                "form": {
                    key: values if len(values) > 1 else values[0] for key, values in form.items()
                },
            }
            with self._lock:
                self._calls.append(call)
                self._known.add(call_sid)
            record.answer(201, {k: v for k, v in call.items() if k != "form"})
        elif method == "DELETE" and sid is not None:
            with self._lock:
                exists = sid in self._known
                if exists:
                    self._known.discard(sid)
                    self._deleted.append(sid)
            if exists:
                record.answer(204, None)
            else:
                record.answer(404, _error(20404, _MESSAGES[20404], 404))
        else:
            record.answer(405, _error(20004, "Method not allowed", 405))

    def _list(self, record: _Recorder, account: str, query: dict[str, list[str]]) -> None:
        to = _first(query, "To")
        from_ = _first(query, "From")
        try:
            after = _bound(_first(query, "DateSent>"), upper=False)
            before = _bound(_first(query, "DateSent<"), upper=True)
            on = _first(query, "DateSent")
            day = _parse_when(on)[0].date() if on else None
            page_size = min(int(_first(query, "PageSize") or 50), 1000)
            page = int(_first(query, "Page") or 0)
        except ValueError:
            record.answer(400, _error(20001, "Invalid query parameter", 400))
            return
        with self._lock:
            stored = list(self._stored)
        found = [
            s.resource
            for s in reversed(stored)  # newest first, as Twilio lists them
            if s.resource["account_sid"] == account
            and (to is None or s.resource["to"] == to)
            and (from_ is None or s.resource["from"] == from_)
            and (after is None or s.created_at >= after)
            and (before is None or s.created_at <= before)
            and (day is None or s.created_at.date() == day)
        ]
        start = page * page_size
        chunk = found[start : start + page_size]
        path = MESSAGES_PATH.replace("{AccountSid}", account)
        params = {k: v[0] for k, v in query.items() if k not in ("Page", "PageToken")}

        def page_uri(number: int) -> str:
            return path + "?" + urlencode({**params, "PageSize": page_size, "Page": number})

        record.answer(
            200,
            {
                "end": start + len(chunk) - 1 if chunk else start,
                "first_page_uri": page_uri(0),
                "next_page_uri": page_uri(page + 1) if start + page_size < len(found) else None,
                "page": page,
                "page_size": page_size,
                "previous_page_uri": page_uri(page - 1) if page > 0 else None,
                "start": start,
                "uri": page_uri(page),
                "messages": chunk,
            },
        )


class _Recorder:
    """Writes one answer and records the request with its status."""

    def __init__(
        self,
        fake: FakeTwilio,
        handler: _Handler,
        method: str,
        path: str,
        form: dict[str, list[str]],
        auth: tuple[str, str] | None,
    ) -> None:
        self.fake = fake
        self.handler = handler
        self.method = method
        self.path = path
        self.form = form
        self.auth = auth
        self.arrived = time.time()

    def note(self, status: int) -> None:
        request = RecordedRequest(
            method=self.method,
            path=self.path,
            form=self.form,
            auth=self.auth,
            headers=dict(self.handler.headers.items()),
            time=self.arrived,
            status=status,
            connection=self.handler.connection_number,
        )
        with self.fake._lock:
            (self.fake._requests if self.method == "POST" else self.fake._reads).append(request)

    def answer(
        self,
        status: int,
        payload: dict[str, Any] | None,
        *,
        authenticate: bool = False,
        noted: bool = False,
    ) -> None:
        if not noted:
            self.note(status)
        body = b"" if payload is None else json.dumps(payload).encode()
        handler = self.handler
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json; charset=utf-8")
        handler.send_header("Content-Length", str(len(body)))
        if authenticate:
            handler.send_header("WWW-Authenticate", 'Basic realm="Twilio API"')
        handler.end_headers()
        handler.wfile.write(body)

    def drop(self, status: int) -> None:
        self.note(status)
        self.handler.close_connection = True
        self.handler.connection.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, so the twilio client's Session reuses connections
    server_version = "FakeTwilio/1.0"
    sys_version = ""
    wbufsize = 1 << 16  # headers and body leave in one write (flushed by handle_one_request)
    server: _Server
    connection_number = 0

    def setup(self) -> None:
        super().setup()
        self.connection_number = self.server.fake._accepted()

    def do_POST(self) -> None:
        self.server.fake.handle(self, "POST")

    def do_GET(self) -> None:
        self.server.fake.handle(self, "GET")

    def do_DELETE(self) -> None:
        self.server.fake.handle(self, "DELETE")

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet: the recording is the log


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256  # benchmarks open many connections at once

    def __init__(self, address: tuple[str, int], handler: type[_Handler], fake: FakeTwilio) -> None:
        self.fake = fake
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        super().__init__(address, handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind looks up the host's FQDN, which can wait on DNS offline.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, address = super().get_request()
        # Without this, Nagle + delayed ACK stall every keep-alive answer by ~40 ms, and
        # the fake would make every send look slow.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self._open_lock:
            self._open.add(sock)
        return sock, address

    def shutdown_request(self, request: Any) -> None:
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        with self._open_lock:
            open_sockets = list(self._open)
        for sock in open_sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that gave up (timeout, dropped connection) is a scenario, not an error


# -- helpers -----------------------------------------------------------------------------------


def _first(form: dict[str, list[str]], name: str) -> str | None:
    values = form.get(name)
    return values[0] if values else None


def _error(code: int | None, message: str, status: int) -> dict[str, Any]:
    """Twilio's legacy error shape (the 2010 API's)."""
    return {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }


def _basic_auth(header: str | None) -> tuple[str, str] | None:
    if not header or not header.startswith("Basic "):
        return None
    try:
        user, _, password = base64.b64decode(header[6:]).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return user, password


def _parse_when(value: str) -> tuple[datetime, bool]:
    """A DateSent value as (when, is a whole day): YYYY-MM-DD, or the client's ISO 8601 UTC."""
    if len(value) == 10:
        day = date.fromisoformat(value)
        return datetime(day.year, day.month, day.day, tzinfo=UTC), True
    when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return (when if when.tzinfo else when.replace(tzinfo=UTC)), False


def _bound(value: str | None, *, upper: bool) -> datetime | None:
    if not value:
        return None
    when, whole_day = _parse_when(value)
    return when + timedelta(days=1) - timedelta(microseconds=1) if whole_day and upper else when


_GSM7 = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")


def _segments(body: str) -> int:
    """SMS segments as Twilio counts them, for num_segments."""
    if not body:
        return 0
    if all(ch in _GSM7 or ch in _GSM7_EXTENSION for ch in body):
        units = sum(2 if ch in _GSM7_EXTENSION else 1 for ch in body)
        single, part = 160, 153
    else:
        units = sum(2 if ord(ch) > 0xFFFF else 1 for ch in body)
        single, part = 70, 67
    return 1 if units <= single else -(-units // part)


# -- the OpenAPI check -------------------------------------------------------------------------

_SCHEMAS: dict[Path, dict[str, Any] | None] = {}
_SCHEMAS_LOCK = threading.Lock()


def _create_message_schema(path: Path) -> dict[str, Any] | None:
    """CreateMessage's form schema from Twilio's OpenAPI file, loaded once per process."""
    with _SCHEMAS_LOCK:
        if path not in _SCHEMAS:
            _SCHEMAS[path] = _load_create_message_schema(path) if path.exists() else None
        return _SCHEMAS[path]


def _load_create_message_schema(path: Path) -> dict[str, Any]:
    document = json.loads(path.read_text(encoding="utf-8"))
    operation = document["paths"][MESSAGES_PATH]["post"]
    schema = operation["requestBody"]["content"]["application/x-www-form-urlencoded"]["schema"]
    components = document["components"]["schemas"]

    def resolve(prop: dict[str, Any]) -> dict[str, Any]:
        ref = prop.get("$ref")
        if ref:
            prop = {
                **components[ref.rsplit("/", 1)[1]],
                **{k: v for k, v in prop.items() if k != "$ref"},
            }
        if "items" in prop:
            prop = {**prop, "items": resolve(prop["items"])}
        if "pattern" in prop:
            prop = {**prop, "_pattern": re.compile(prop["pattern"])}
        return prop

    return {
        "properties": {name: resolve(prop) for name, prop in schema["properties"].items()},
        "required": list(schema.get("required", [])),
    }


def _schema_problems(schema: dict[str, Any], form: dict[str, list[str]]) -> list[str]:
    properties = schema["properties"]
    problems = [f"{name} is required" for name in schema["required"] if name not in form]
    for name, values in form.items():
        prop = properties.get(name)
        if prop is None:
            problems.append(f"{name} is not a CreateMessage parameter")
            continue
        if prop.get("type") == "array":
            problems.extend(_value_problems(name, v, prop.get("items", {})) for v in values)
        elif len(values) > 1:
            problems.append(f"{name} is given {len(values)} times")
        else:
            problems.append(_value_problems(name, values[0], prop))
    return [p for p in problems if p]


def _value_problems(name: str, value: str, prop: dict[str, Any]) -> str:
    kind = prop.get("type")
    if "enum" in prop and value not in prop["enum"]:
        return f"{name} is not one of {prop['enum']}"
    if kind == "boolean" and value not in ("true", "false"):
        return f"{name} is not a boolean"
    if kind in ("integer", "number"):
        try:
            int(value) if kind == "integer" else float(value)
        except ValueError:
            return f"{name} is not an {kind}"
    if "minLength" in prop and len(value) < prop["minLength"]:
        return f"{name} is shorter than {prop['minLength']}"
    if "maxLength" in prop and len(value) > prop["maxLength"]:
        return f"{name} is longer than {prop['maxLength']}"
    pattern = prop.get("_pattern")
    if pattern is not None and not pattern.search(value):
        return f"{name} does not match {prop['pattern']}"
    ignore_format = prop.get("x-twilio", {}).get("ignoreFormat")
    if prop.get("format") == "uri" and not ignore_format:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname or "_" in parts.hostname:
            return f"{name} is not a URL with a valid hostname"
    if prop.get("format") == "date-time":
        try:
            datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return f"{name} is not a date-time"
    return ""


# -- standalone --------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    """Serve a fake Twilio until killed: python tests/fake_twilio.py --port 8999."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8999)
    parser.add_argument("--account-sid", default=ACCOUNT_SID)
    parser.add_argument("--auth-token", default=AUTH_TOKEN)
    parser.add_argument("--delay", type=float, default=0.0, help="seconds before every answer")
    parser.add_argument("--no-validate", action="store_true", help="skip the OpenAPI check")
    args = parser.parse_args(argv)

    fake = FakeTwilio(
        args.account_sid,
        args.auth_token,
        host=args.host,
        port=args.port,
        validate_schema=not args.no_validate,
    ).start()
    fake.delay(args.delay)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print(
        f"fake twilio on {fake.base_url} account_sid={fake.account_sid} "
        f"auth_token={fake.auth_token}",
        flush=True,
    )
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        fake.stop()
        print(
            f"fake twilio: {len(fake.requests)} creates, {len(fake.messages)} messages, "
            f"{fake.connections} connections, {len(fake.violations)} schema violations",
            flush=True,
        )


if __name__ == "__main__":
    main()
