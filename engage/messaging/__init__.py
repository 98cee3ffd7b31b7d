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
    media_url: str | None = None  # a recording of what the text asks (a survey's audio)


@dataclass(frozen=True)
class OutboundCall:
    """A call Engage places (a callback, a campaign): Twilio asks `url` for TwiML once it is
    answered, and posts the call's progress to `status_callback`."""

    call_id: int
    contact: str  # pseudonymous, for logs
    to: str
    from_: str
    url: str
    status_callback: str


@dataclass(frozen=True)
class SendResult:
    sid: str
    status: str = "sent"


class MessageSender(Protocol):
    """Who delivers messages: Twilio (`twilio.TwilioSender`), or the console in development
    (`console.ConsoleSender`). A provider is added by writing one more class with these four
    methods (and, for a new channel, a row in engage/channels.py). Every method may be called
    from several threads at once (the send pool's).

    The outbox relies on what the errors mean (SendError's subclasses): a PermanentSendError
    fails the row for good, a TransientSendError puts it back to wait (the message surely does
    not exist), an AmbiguousSendError leaves it `dispatching` until `lookup` says whether the
    message was created. There is no idempotency key: never send a row twice without a look-up.
    """

    def send(self, message: OutboundMessage) -> SendResult:
        """Hand the message over; its provider id (SID) and first status, or a SendError."""
        ...

    def lookup(self, message: OutboundMessage, since: datetime) -> SendResult | None:
        """The message as the provider has it, created at or after `since` (an attempt whose
        answer was lost), or None when it does not exist. Never creates anything."""
        ...

    def delete(self, sid: str) -> bool:
        """Delete a message (or a call's record or recording) where it was sent (erasure):
        True once it is gone, also when it already was; False when it cannot be deleted yet.
        Other failures raise SendError."""
        ...

    def place_call(self, call: OutboundCall) -> str:
        """Place a call, with answering-machine detection; its provider id (CallSid), or a
        SendError (a call is never placed twice without knowing the first failed)."""
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
