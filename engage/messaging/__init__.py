"""The outside world behind a small interface: who actually delivers a message."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class OutboundMessage:
    message_id: int
    contact: str  # pseudonymous contact id, for logs
    to: str  # the worker's address as Twilio wrote it (whatsapp:+… or +…)
    from_: str | None
    body: str


@dataclass(frozen=True)
class SendResult:
    sid: str
    status: str = "sent"


class MessageSender(Protocol):
    def send(self, message: OutboundMessage) -> SendResult: ...
