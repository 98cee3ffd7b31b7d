"""The HTTP client under the twilio client sends what twilio's own (requests) client sends."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

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


class CaptureServer:
    """Keeps each request it is sent as bytes and answers 201 with a message; connections kept."""

    def __init__(self) -> None:
        self._socket = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._socket.getsockname()[1]}"
        self.seen: list[Raw] = []
        self.connections = 0
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self._socket.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._keep, args=(connection,), daemon=True).start()

    def _keep(self, connection: socket.socket) -> None:
        with connection, connection.makefile("rb") as stream:
            while self._answer_one(connection, stream):
                pass

    def _answer_one(self, connection: socket.socket, stream) -> bool:
        request_line = stream.readline().decode().strip()
        if not request_line:
            return False
        headers = {}
        for line in iter(stream.readline, b"\r\n"):
            name, _, value = line.decode().partition(":")
            headers[name.strip().lower()] = value.strip()
        body = stream.read(int(headers.get("content-length", 0)))
        self.seen.append(Raw(request_line, headers, body))
        answer = b'{"sid": "SM' + b"1" * 32 + b'", "status": "queued"}'
        connection.sendall(
            b"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {len(answer)}\r\n\r\n".encode()
            + answer
        )
        return True

    def close(self) -> None:
        self._socket.close()


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
