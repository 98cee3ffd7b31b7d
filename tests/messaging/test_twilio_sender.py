"""The real TwilioSender and the real twilio client against a fake Twilio on 127.0.0.1."""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import requests
import urllib3
from twilio.base.exceptions import TwilioServiceException
from urllib3.exceptions import (
    ConnectTimeoutError,
    DecodeError,
    LocationParseError,
    NameResolutionError,
    NewConnectionError,
    ProtocolError,
    ProxyError,
    ReadTimeoutError,
    SSLError,
)

from engage.messaging import (
    AmbiguousSendError,
    OutboundCall,
    OutboundMessage,
    PermanentSendError,
    SendError,
    TransientSendError,
)
from engage.messaging.twilio import TwilioSender, classify_send_error

if TYPE_CHECKING:
    from fake_twilio import FakeTwilio

WORKER = "+15558675310"
SMS_FROM = "+15017122661"
WA_WORKER = "whatsapp:+5215512345678"
WA_FROM = "whatsapp:+14155238886"
SERVICE = "MG" + "1" * 32
TEMPLATE = "HX" + "2" * 32
QUESTION = "¿Cuántas horas trabajó hoy? Responda con un número."
CALLBACK = "https://hooks.example.org/twilio/status?m=7"
OPENAPI = Path(__file__).resolve().parents[3] / "shared/twilio-openapi/twilio_api_v2010.json"


def make_sender(fake: FakeTwilio, **kwargs) -> TwilioSender:
    return TwilioSender(fake.account_sid, fake.auth_token, api_url=fake.base_url, **kwargs)


def outbound(**overrides) -> OutboundMessage:
    fields = {
        "message_id": 7,
        "contact": "c-7f3a",
        "to": WORKER,
        "from_": SMS_FROM,
        "body": QUESTION,
    }
    return OutboundMessage(**{**fields, **overrides})


# -- what is sent ------------------------------------------------------------------------------


def test_a_send_posts_the_fields_twilio_expects(fake_twilio: FakeTwilio) -> None:
    result = make_sender(fake_twilio).send(outbound(status_callback=CALLBACK))

    (request,) = fake_twilio.requests
    assert request.path == f"/2010-04-01/Accounts/{fake_twilio.account_sid}/Messages.json"
    assert request.form == {
        "To": [WORKER],
        "From": [SMS_FROM],
        "Body": [QUESTION],
        "StatusCallback": [CALLBACK],
    }
    assert request.auth == (fake_twilio.account_sid, fake_twilio.auth_token)
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    (created,) = fake_twilio.messages
    assert (result.sid, result.status) == (created["sid"], "queued")
    assert result.sid.startswith("SM") and len(result.sid) == 34
    assert fake_twilio.violations == []


def test_the_status_callback_defaults_to_the_public_base(fake_twilio: FakeTwilio) -> None:
    sender = make_sender(fake_twilio, status_callback_base="https://hooks.example.org/")
    sender.send(outbound())
    sender.send(outbound(status_callback=CALLBACK))

    assert [r.get("StatusCallback") for r in fake_twilio.requests] == [
        "https://hooks.example.org/twilio/status",
        CALLBACK,
    ]


def test_no_status_callback_is_sent_when_none_is_known(fake_twilio: FakeTwilio) -> None:
    make_sender(fake_twilio).send(outbound())

    assert "StatusCallback" not in fake_twilio.requests[0].form


def test_a_messaging_service_sender_is_sent_as_messaging_service_sid(
    fake_twilio: FakeTwilio,
) -> None:
    result = make_sender(fake_twilio).send(outbound(from_=SERVICE))

    form = fake_twilio.requests[0].form
    assert form["MessagingServiceSid"] == [SERVICE] and "From" not in form
    assert result.status == "accepted"  # Twilio has yet to pick a sender from the pool


@pytest.mark.parametrize("from_", [WA_FROM, "+14155238886"], ids=["prefixed", "bare"])
def test_whatsapp_addresses_pass_through(fake_twilio: FakeTwilio, from_: str) -> None:
    make_sender(fake_twilio).send(outbound(to=WA_WORKER, from_=from_, body="Hola"))

    form = fake_twilio.requests[0].form
    assert (form["To"], form["From"], form["Body"]) == ([WA_WORKER], [WA_FROM], ["Hola"])


def test_a_template_is_sent_as_content_without_a_body(fake_twilio: FakeTwilio) -> None:
    message = outbound(
        to=WA_WORKER,
        from_=SERVICE,
        body="Hola Ana, su cita es el lunes 9:00",
        content_sid=TEMPLATE,
        content_variables={"1": "Ana", "2": "lunes 9:00"},
    )
    make_sender(fake_twilio).send(message)

    form = fake_twilio.requests[0].form
    assert form["ContentSid"] == [TEMPLATE]
    assert json.loads(form["ContentVariables"][0]) == {"1": "Ana", "2": "lunes 9:00"}
    assert form["MessagingServiceSid"] == [SERVICE]
    assert "Body" not in form and "From" not in form
    assert fake_twilio.violations == []


def test_sends_reuse_one_connection_without_stalling(fake_twilio: FakeTwilio) -> None:
    sender = make_sender(fake_twilio)
    started = time.perf_counter()
    for number in range(50):
        sender.send(outbound(message_id=number))
    elapsed = time.perf_counter() - started

    assert len(fake_twilio.messages) == 50
    assert fake_twilio.connections == 1
    # A Nagle/delayed-ACK stall costs ~40 ms per keep-alive request.
    assert elapsed < 50 * 0.03, f"50 sends took {elapsed:.2f} s"


# -- how failures are classified ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("script", "expected", "code"),
    [
        (lambda f: f.fail_next(1, status=429), TransientSendError, 20429),
        (lambda f: f.fail_next(1, status=400, code=21611), TransientSendError, 21611),
        (lambda f: f.fail_next(1, status=500), AmbiguousSendError, 20500),
        (lambda f: f.fail_next(1, status=503), AmbiguousSendError, 20503),
        (lambda f: f.reject(WORKER, code=21610), PermanentSendError, 21610),
        (lambda f: f.reject(WORKER, code=21211), PermanentSendError, 21211),
        (lambda f: f.reject(WORKER, code=21614), PermanentSendError, 21614),
        (lambda f: f.reject(WORKER, code=63016), PermanentSendError, 63016),
    ],
    ids=["429", "21611", "500", "503", "21610", "21211", "21614", "63016"],
)
def test_twilio_errors_are_classified(
    fake_twilio: FakeTwilio,
    script: Callable[[FakeTwilio], None],
    expected: type[SendError],
    code: int,
) -> None:
    script(fake_twilio)

    with pytest.raises(SendError) as raised:
        make_sender(fake_twilio).send(outbound())

    assert type(raised.value) is expected
    assert raised.value.code == code
    assert fake_twilio.messages == []
    assert WORKER not in str(raised.value)


def test_a_body_over_1600_characters_is_permanent(fake_twilio: FakeTwilio) -> None:
    with pytest.raises(PermanentSendError) as raised:
        make_sender(fake_twilio).send(outbound(body="a" * 1601))

    assert (raised.value.code, raised.value.status) == (21617, 400)


def test_wrong_credentials_are_permanent(fake_twilio: FakeTwilio) -> None:
    sender = TwilioSender(fake_twilio.account_sid, "wrong-token", api_url=fake_twilio.base_url)

    with pytest.raises(PermanentSendError) as raised:
        sender.send(outbound())

    assert (raised.value.code, raised.value.status) == (20003, 401)


def test_a_closed_port_is_transient() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    sender = TwilioSender("AC" + "0" * 32, "token", api_url=f"http://127.0.0.1:{port}")

    with pytest.raises(TransientSendError) as raised:
        sender.send(outbound())

    assert raised.value.code is None


def test_a_connect_timeout_is_transient() -> None:
    # A listening socket whose accept queue is full drops new SYNs: the connect times out.
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(0)
        port = server.getsockname()[1]
        fillers = [socket.socket() for _ in range(3)]
        try:
            for filler in fillers:
                filler.setblocking(False)
                filler.connect_ex(("127.0.0.1", port))
            sender = TwilioSender(
                "AC" + "0" * 32, "token", api_url=f"http://127.0.0.1:{port}", timeout=0.3
            )
            with pytest.raises(TransientSendError):
                sender.send(outbound())
        finally:
            for filler in fillers:
                filler.close()


def test_a_lost_answer_is_ambiguous_and_lookup_finds_the_message(fake_twilio: FakeTwilio) -> None:
    sender = make_sender(fake_twilio, timeout=0.5)
    attempted_at = datetime.now(UTC)
    fake_twilio.hang_next(1, seconds=3)

    with pytest.raises(AmbiguousSendError):
        sender.send(outbound())
    found = sender.lookup(outbound(), since=attempted_at)

    (created,) = fake_twilio.messages
    assert found is not None and found.sid == created["sid"]
    assert len(fake_twilio.requests) == 1  # looked up, not sent again


def test_a_connection_dropped_after_the_request_is_ambiguous(fake_twilio: FakeTwilio) -> None:
    sender = make_sender(fake_twilio)
    attempted_at = datetime.now(UTC)
    fake_twilio.drop_next()

    with pytest.raises(AmbiguousSendError):
        sender.send(outbound())

    found = sender.lookup(outbound(), since=attempted_at)
    assert found is not None and found.sid == fake_twilio.messages[0]["sid"]


@pytest.mark.parametrize("created", [True, False], ids=["created", "not-created"])
def test_a_server_error_is_ambiguous_and_lookup_tells(
    fake_twilio: FakeTwilio, created: bool
) -> None:
    sender = make_sender(fake_twilio)
    attempted_at = datetime.now(UTC)
    fake_twilio.fail_next(1, status=500, created=created)

    with pytest.raises(AmbiguousSendError):
        sender.send(outbound())
    found = sender.lookup(outbound(), since=attempted_at)

    assert (found is not None) is created


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (ReadTimeoutError(None, "/", "read timed out"), AmbiguousSendError),
        (ConnectTimeoutError("connect timed out"), TransientSendError),
        (NewConnectionError(None, "refused"), TransientSendError),
        (NameResolutionError("api.twilio.com", None, OSError("no name")), TransientSendError),
        (ProtocolError("Connection aborted.", ConnectionResetError()), AmbiguousSendError),
        (DecodeError("broken answer"), AmbiguousSendError),
        (SSLError(ssl.SSLCertVerificationError("certificate refused")), TransientSendError),
        (SSLError(ssl.SSLError("bad record mac")), AmbiguousSendError),
        (ProxyError("Unable to connect to proxy", OSError("refused")), AmbiguousSendError),
        (LocationParseError("http://[::bad"), PermanentSendError),
        (
            TwilioServiceException("https://example.org/p", "Bad", 400, 21211),
            PermanentSendError,
        ),
        (
            TwilioServiceException("https://example.org/p", "Busy", 429, 20429),
            TransientSendError,
        ),
    ],
    ids=[
        "read-timeout",
        "connect-timeout",
        "refused",
        "dns",
        "reset-after-send",
        "broken-answer",
        "tls-certificate-refused",
        "tls-error-in-the-answer",
        "proxy",
        "bad-url",
        "rfc9457-400",
        "rfc9457-429",
    ],
)
def test_errors_without_a_server_are_classified(
    error: Exception, expected: type[SendError]
) -> None:
    assert type(classify_send_error(error)) is expected


# -- looking up ----------------------------------------------------------------------------------


def test_lookup_finds_nothing_for_a_message_never_created(fake_twilio: FakeTwilio) -> None:
    sender = make_sender(fake_twilio)
    sender.send(outbound(body="Otra pregunta"))  # same worker, other text
    sender.send(outbound(to="+15558675311"))  # same text, other worker
    sender.send(outbound(from_="+15017122662"))  # same text, other sender

    assert sender.lookup(outbound(), since=datetime.now(UTC) - timedelta(minutes=1)) is None
    # Filtered by To and From; not by DateSent, which a message still queued lacks.
    assert fake_twilio.reads[0].form.keys() >= {"To", "From"}
    assert "DateSent>" not in fake_twilio.reads[0].form


def test_lookup_ignores_messages_from_before_the_attempt(fake_twilio: FakeTwilio) -> None:
    sender = make_sender(fake_twilio)
    sender.send(outbound())

    assert sender.lookup(outbound(), since=datetime.now(UTC) + timedelta(minutes=5)) is None


def test_lookup_matches_a_messaging_service_send(fake_twilio: FakeTwilio) -> None:
    sender = make_sender(fake_twilio)
    sent = sender.send(outbound(from_=SERVICE))

    found = sender.lookup(outbound(from_=SERVICE), since=datetime.now(UTC))

    assert found is not None and found.sid == sent.sid
    assert "From" not in fake_twilio.reads[0].form  # Twilio lists the pool number, not MG…


def test_lookup_matches_a_template_send_without_its_body(fake_twilio: FakeTwilio) -> None:
    sender = make_sender(fake_twilio)
    template = outbound(to=WA_WORKER, from_=WA_FROM, content_sid=TEMPLATE)
    sent = sender.send(template)

    found = sender.lookup(template, since=datetime.now(UTC))

    assert found is not None and found.sid == sent.sid


def test_lookup_accepts_a_naive_utc_time(fake_twilio: FakeTwilio) -> None:
    sender = make_sender(fake_twilio)
    sent = sender.send(outbound())

    found = sender.lookup(outbound(), since=datetime.now(UTC).replace(tzinfo=None))

    assert found is not None and found.sid == sent.sid


def test_a_failed_lookup_is_transient(fake_twilio: FakeTwilio) -> None:
    sender = make_sender(fake_twilio, timeout=0.3)
    fake_twilio.delay(1)

    with pytest.raises(TransientSendError):
        sender.lookup(outbound(), since=datetime.now(UTC))


def test_logs_name_the_message_never_the_worker(
    fake_twilio: FakeTwilio, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    sender = make_sender(fake_twilio)
    sender.send(outbound())
    fake_twilio.reject(WORKER, code=21211, message=f"The 'To' number {WORKER} is not valid")
    with pytest.raises(PermanentSendError) as raised:
        sender.send(outbound())
    sender.lookup(outbound(), since=datetime.now(UTC))

    assert "message 7: sent sid=SM" in caplog.text
    for secret in (WORKER, WORKER[1:], SMS_FROM, QUESTION):
        assert secret not in caplog.text
        assert secret not in str(raised.value)


# -- the fake itself ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("form", "status", "code"),
    [
        ({"From": SMS_FROM, "Body": "x"}, 400, 21604),
        ({"To": WORKER, "Body": "x"}, 400, 21603),
        ({"To": WORKER, "From": SMS_FROM, "MessagingServiceSid": SERVICE, "Body": "x"}, 400, 21603),
        ({"To": WORKER, "From": SMS_FROM}, 400, 21602),
        ({"To": WORKER, "From": SMS_FROM, "Body": "a" * 1601}, 400, 21617),
    ],
    ids=["no-to", "no-from", "both-senders", "no-body", "too-long"],
)
def test_the_fake_refuses_what_twilio_refuses(
    fake_twilio: FakeTwilio, form: dict[str, str], status: int, code: int
) -> None:
    url = f"{fake_twilio.base_url}/2010-04-01/Accounts/{fake_twilio.account_sid}/Messages.json"
    answer = requests.post(
        url, data=form, auth=(fake_twilio.account_sid, fake_twilio.auth_token), timeout=5
    )

    assert answer.status_code == status
    assert answer.json()["code"] == code
    assert set(answer.json()) == {"code", "message", "more_info", "status"}
    assert fake_twilio.messages == []


def test_the_fake_wants_basic_auth_for_the_account(fake_twilio: FakeTwilio) -> None:
    url = f"{fake_twilio.base_url}/2010-04-01/Accounts/{fake_twilio.account_sid}/Messages.json"
    form = {"To": WORKER, "From": SMS_FROM, "Body": "x"}

    anonymous = requests.post(url, data=form, timeout=5)
    other = requests.post(
        url.replace(fake_twilio.account_sid, "AC" + "b" * 32),
        data=form,
        auth=(fake_twilio.account_sid, fake_twilio.auth_token),
        timeout=5,
    )

    assert (anonymous.status_code, anonymous.json()["code"]) == (401, 20003)
    assert other.status_code == 401
    assert fake_twilio.messages == []


def test_the_fake_lists_newest_first_with_filters(fake_twilio: FakeTwilio) -> None:
    sender = make_sender(fake_twilio)
    first = sender.send(outbound(body="uno"))
    second = sender.send(outbound(body="dos"))
    sender.send(outbound(to="+15558675311"))

    listed = sender.client.messages.list(to=WORKER, from_=SMS_FROM)

    assert [m.sid for m in listed] == [second.sid, first.sid]
    assert sender.client.messages.list(date_sent_after=datetime.now(UTC) + timedelta(hours=1)) == []


def test_requests_follow_twilios_openapi_schema(fake_twilio: FakeTwilio) -> None:
    if not fake_twilio.schema_loaded:
        pytest.skip(f"Twilio's OpenAPI description is not at {OPENAPI}")
    sender = make_sender(fake_twilio, status_callback_base="https://hooks.example.org")
    sender.send(outbound())
    sender.send(outbound(to=WA_WORKER, from_=WA_FROM))
    sender.send(outbound(from_=SERVICE, content_sid=TEMPLATE, content_variables={"1": "Ana"}))
    assert fake_twilio.violations == []

    # The check does catch what Twilio's schema forbids.
    sender.send(outbound(status_callback="not a url"))
    assert fake_twilio.violations == [
        "POST /2010-04-01/Accounts/{AccountSid}/Messages.json: "
        "StatusCallback is not a URL with a valid hostname"
    ]


# -- against Twilio's own schema, served by Prism --------------------------------------------------


@pytest.fixture(scope="module")
def prism_url() -> Iterator[str]:
    """Prism mocking Twilio's OpenAPI description; skips when Prism or the file is missing."""
    prism = os.environ.get("ENGAGE_PRISM") or shutil.which("prism")
    if prism and not os.path.exists(prism):
        prism = None
    if not prism or not shutil.which("node"):
        pytest.skip(
            "Prism is not installed: npm install --prefix DIR @stoplight/prism-cli@5.16.0, "
            "then put DIR/node_modules/.bin on PATH or set ENGAGE_PRISM "
            "(shared/twilio-openapi/README.md)"
        )
    if not OPENAPI.exists():
        pytest.skip(f"Twilio's OpenAPI description is not at {OPENAPI}")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [prism, "mock", "-h", "127.0.0.1", "-p", str(port), str(OPENAPI)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, "Prism exited while starting"
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "Prism did not start within 60 s"
                time.sleep(0.2)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_requests_pass_prism_validation(prism_url: str) -> None:
    sender = TwilioSender(
        "AC" + "a" * 32,
        "token",
        api_url=prism_url,
        status_callback_base="https://hooks.example.org",
    )

    sender.send(outbound())
    sender.send(outbound(to=WA_WORKER, from_=WA_FROM, status_callback=CALLBACK))
    sender.send(outbound(from_=SERVICE, content_sid=TEMPLATE, content_variables={"1": "Ana"}))
    sender.lookup(outbound(), since=datetime.now(UTC))  # its query passes too (else it raises)

    call = OutboundCall(
        call_id=3,
        contact="contact-3",
        to=WORKER,
        from_=SMS_FROM,
        url="https://hooks.example.org/twilio/voice?c=token",
        status_callback="https://hooks.example.org/twilio/voice/status?c=token",
    )
    assert sender.place_call(call).startswith("CA")
    with pytest.raises(PermanentSendError) as refused_call:
        sender.place_call(replace(call, status_callback="not a url"))
    assert refused_call.value.status == 422

    # Prism does refuse what breaks the schema (422), which we take as permanent.
    with pytest.raises(PermanentSendError) as raised:
        sender.send(outbound(status_callback="not a url"))
    assert raised.value.status == 422


# -- threads and the environment --------------------------------------------------------------


def test_each_thread_sends_with_a_client_of_its_own(fake_twilio: FakeTwilio) -> None:
    sender = make_sender(fake_twilio)
    clients = []

    def send() -> None:
        clients.append(sender.client)
        sender.send(outbound())

    threads = [threading.Thread(target=send) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({id(client) for client in clients}) == 3
    assert sender.client is sender.client  # kept for the thread, with its connection
    assert len(fake_twilio.requests) == 3


def test_proxy_settings_are_read_once_when_the_client_is_made(monkeypatch) -> None:
    # requests would read these variables on every request; the sender reads them once.
    monkeypatch.setenv("HTTPS_PROXY", "http://ana:s3cret@proxy.invalid:3128")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    pool = TwilioSender("AC" + "0" * 32, "token").client.http_client.pool
    assert isinstance(pool, urllib3.ProxyManager)
    assert (pool.proxy.host, pool.proxy.port) == ("proxy.invalid", 3128)
    assert pool.proxy_headers["proxy-authorization"] == "Basic YW5hOnMzY3JldA=="
    monkeypatch.setenv("NO_PROXY", "api.twilio.com")
    pool = TwilioSender("AC" + "0" * 32, "token").client.http_client.pool
    assert not isinstance(pool, urllib3.ProxyManager)


def test_the_ca_bundle_is_the_one_requests_would_use(monkeypatch, tmp_path: Path) -> None:
    for name in ("HTTPS_PROXY", "https_proxy", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
    pool = TwilioSender("AC" + "0" * 32, "token").client.http_client.pool
    assert pool.connection_pool_kw["ca_certs"] == requests.utils.DEFAULT_CA_BUNDLE_PATH
    assert pool.connection_pool_kw["cert_reqs"] == "CERT_REQUIRED"
    bundle = tmp_path / "company-ca.pem"
    bundle.write_text("")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(bundle))
    pool = TwilioSender("AC" + "0" * 32, "token").client.http_client.pool
    assert pool.connection_pool_kw["ca_certs"] == str(bundle)
