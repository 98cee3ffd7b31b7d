"""The outside world behind a small interface: who actually delivers a message."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol


@dataclass(frozen=True)
class OutboundMessage:
    message_id: int
    contact: str  # pseudonymous contact id, for logs
    to: str  # the worker's address as Twilio wrote it (whatsapp:+… or +…)
    from_: str | None  # our number, whatsapp:+…, or a Messaging Service SID (MG…)
    body: str
    content_sid: str | None = None  # an approved Content template (HX…): sent instead of the body
    content_variables: dict[str, Any] | None = None  # the template's variables, {"1": "Ana"}
    status_callback: str | None = None  # where Twilio posts this message's delivery status


@dataclass(frozen=True)
class SendResult:
    sid: str
    status: str = "sent"


class MessageSender(Protocol):
    def send(self, message: OutboundMessage) -> SendResult: ...

    def lookup(self, message: OutboundMessage, since: datetime) -> SendResult | None: ...

    def delete(self, sid: str) -> bool:
        """Delete a message where it was sent (erasure): True once it is gone, also when it
        already was; False when it cannot be deleted yet. Other failures raise SendError."""
        ...


class SendError(Exception):
    """A message was not handed over; the subclass says whether trying again is safe."""

    def __init__(self, code: int | None, message: str, *, status: int | None = None) -> None:
        super().__init__(f"{code}: {message}" if code is not None else message)
        self.code = code  # Twilio's error code (21610, 20429, …), None when Twilio never answered
        self.message = message
        self.status = status  # the HTTP status of Twilio's answer, None when there was none


class PermanentSendError(SendError):
    """Twilio refused the message for good: retrying will not help (opt-out, bad number)."""


class TransientSendError(SendError):
    """The message surely does not exist at Twilio and trying again later is safe."""


class AmbiguousSendError(SendError):
    """The request may have reached Twilio: look the message up before ever sending it again."""
