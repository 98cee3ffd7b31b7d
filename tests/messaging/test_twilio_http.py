"""The HTTP client under the twilio client sends what twilio's own (requests) client sends."""

from __future__ import annotations

import ipaddress
import socket
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from engage.messaging import OutboundMessage, TransientSendError
from engage.messaging.twilio import TwilioSender
from engage.messaging.twilio_http import TwilioApiHttpClient

ACCOUNT = "AC" + "0" * 32
TOKEN = "a-token"
MESSAGES = f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT}/Messages.json"
# Headers of the connection rather than of the request: requests and urllib3 differ on them.
TRANSPORT = {"host", "connection", "accept-encoding"}


@dataclass
class Raw:
    request_line: str
    headers: dict[str, str]
    body: bytes


class LoopbackServer:
    """A TCP server on 127.0.0.1; each accepted connection is handled in a thread of its own."""

    scheme = "http"

    def __init__(self) -> None:
        self._socket = socket.create_server(("127.0.0.1", 0))
        self.url = f"{self.scheme}://127.0.0.1:{self._socket.getsockname()[1]}"
        self.connections = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self._socket.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._handle, args=(connection,), daemon=True).start()

    def _handle(self, connection: socket.socket) -> None:
        raise NotImplementedError

    def close(self) -> None:
        self._socket.close()


def read_head(stream) -> tuple[str, dict[str, str]]:
    """An HTTP request's first line and headers (names in lower case); ("", {}) at the end."""
    request_line = stream.readline().decode().strip()
    if not request_line:
        return "", {}
    headers = {}
    for line in iter(stream.readline, b"\r\n"):
        name, _, value = line.decode().partition(":")
        headers[name.strip().lower()] = value.strip()
    return request_line, headers


class CaptureServer(LoopbackServer):
    """Keeps each request it is sent as bytes and answers 201 with a message; connections kept."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self._tls = tls
        self.scheme = "https" if tls else "http"
        self.seen: list[Raw] = []
        super().__init__()

    def _handle(self, connection: socket.socket) -> None:
        if self._tls is not None:
            try:
                connection = self._tls.wrap_socket(connection, server_side=True)
            except (ssl.SSLError, OSError):
                connection.close()
                return  # the client refused our certificate
        with connection, connection.makefile("rb") as stream:
            while self._answer_one(connection, stream):
                pass

    def _answer_one(self, connection: socket.socket, stream) -> bool:
        request_line, headers = read_head(stream)
        if not request_line:
            return False
        body = stream.read(int(headers.get("content-length", 0)))
        self.seen.append(Raw(request_line, headers, body))
        answer = b'{"sid": "SM' + b"1" * 32 + b'", "status": "queued"}'
        connection.sendall(
            b"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {len(answer)}\r\n\r\n".encode()
            + answer
        )
        return True


@pytest.fixture
def server() -> Iterator[CaptureServer]:
    capture = CaptureServer()
    yield capture
    capture.close()


class TwilioOwnClientElsewhere(TwilioHttpClient):
    """twilio's own requests-based client, sent to the capture server."""

    def __init__(self, url: str) -> None:
        super().__init__(timeout=5)
        self.url = url

    def request(self, method, url, *args, **kwargs):
        return super().request(
            method, url.replace("https://api.twilio.com", self.url), *args, **kwargs
        )


def both_clients(url: str) -> list[Client]:
    return [
        Client(ACCOUNT, TOKEN, http_client=http_client, environment={})
        for http_client in (
            TwilioOwnClientElsewhere(url),
            TwilioApiHttpClient(timeout=5, base_url=url),
        )
    ]


def without_transport(raw: Raw) -> tuple[str, dict[str, str], bytes]:
    headers = {k: v for k, v in raw.headers.items() if k not in TRANSPORT}
    return raw.request_line, headers, raw.body


def test_a_create_is_the_same_request_byte_for_byte(server: CaptureServer) -> None:
    for client in both_clients(server.url):
        client.messages.create(
            to="whatsapp:+5215512345678",
            from_="whatsapp:+14155238886",
            body="¿Cuántas horas? 1 = menos de 8 & 2 = más",
            media_url=["https://example.org/a.jpg", "https://example.org/b.jpg"],
            status_callback="https://engage.example.org/twilio/status?m=7",
        )

    theirs, ours = (without_transport(raw) for raw in server.seen)
    assert ours == theirs
    assert ours[1]["authorization"].startswith("Basic ")
    assert ours[2].count(b"MediaUrl=") == 2


def test_a_list_is_the_same_query(server: CaptureServer) -> None:
    for client in both_clients(server.url):
        client.request("GET", MESSAGES, params={"To": "+15558675310", "PageSize": 50, "From": None})

    theirs, ours = (without_transport(raw) for raw in server.seen)
    assert ours == theirs
    assert "From" not in ours[0] and "To=%2B15558675310" in ours[0]


def test_the_connection_is_kept_between_requests(server: CaptureServer) -> None:
    client = Client(
        ACCOUNT,
        TOKEN,
        http_client=TwilioApiHttpClient(timeout=5, base_url=server.url),
        environment={},
    )
    for _ in range(3):
        client.messages.create(to="+15558675310", from_="+15017122661", body="hola")

    assert len(server.seen) == 3
    assert server.connections == 1


# -- TLS, as against api.twilio.com -------------------------------------------------------------


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 signed by its own key: (certificate, key) as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "server.pem", directory / "server.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@pytest.fixture
def tls_server(tmp_path: Path, monkeypatch) -> Iterator[tuple[CaptureServer, Path]]:
    for name in ("HTTPS_PROXY", "https_proxy", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
    cert_path, key_path = self_signed(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_path, key_path)
    capture = CaptureServer(tls=context)
    yield capture, cert_path
    capture.close()


def invitation() -> OutboundMessage:
    return OutboundMessage(
        message_id=7, contact="c-7f3a", to="+15558675310", from_="+15017122661", body="hola"
    )


def test_https_is_verified_against_the_configured_ca_bundle(tls_server, monkeypatch) -> None:
    server, cert_path = tls_server
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert_path))
    sender = TwilioSender(ACCOUNT, TOKEN, api_url=server.url)

    result = sender.send(invitation())

    assert result.sid == "SM" + "1" * 32
    assert len(server.seen) == 1
    assert server.seen[0].request_line.startswith(f"POST /2010-04-01/Accounts/{ACCOUNT}/")


def test_a_certificate_not_trusted_is_refused_before_anything_is_sent(tls_server) -> None:
    server, _ = tls_server
    sender = TwilioSender(ACCOUNT, TOKEN, api_url=server.url)  # certifi's bundle only

    with pytest.raises(TransientSendError):  # never reached Twilio: safe to send again
        sender.send(invitation())

    assert server.seen == []


class ConnectProxy(LoopbackServer):
    """An HTTP proxy that only tunnels (CONNECT), as one in front of api.twilio.com would."""

    def __init__(self) -> None:
        self.tunnels: list[tuple[str, str | None]] = []  # (target, Proxy-Authorization)
        super().__init__()

    def _handle(self, client: socket.socket) -> None:
        request_line, headers = read_head(client.makefile("rb"))
        target = request_line.split(" ")[1]  # CONNECT host:port HTTP/1.1
        self.tunnels.append((target, headers.get("proxy-authorization")))
        host, _, port = target.rpartition(":")
        upstream = socket.create_connection((host, int(port)))
        client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        for source, sink in ((client, upstream), (upstream, client)):
            threading.Thread(target=_pipe, args=(source, sink), daemon=True).start()


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass
    finally:
        for end in (source, sink):
            try:
                end.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def test_https_goes_through_the_environments_proxy_with_its_credentials(
    tls_server, monkeypatch
) -> None:
    server, cert_path = tls_server
    proxy = ConnectProxy()
    try:
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert_path))
        monkeypatch.setenv("HTTPS_PROXY", proxy.url.replace("http://", "http://ana:s3cret@"))
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        sender = TwilioSender(ACCOUNT, TOKEN, api_url=server.url)

        sender.send(invitation())
        sender.send(invitation())
    finally:
        proxy.close()

    target = server.url.removeprefix("https://")
    assert proxy.tunnels == [(target, "Basic YW5hOnMzY3JldA==")]  # one tunnel, kept
    assert len(server.seen) == 2
