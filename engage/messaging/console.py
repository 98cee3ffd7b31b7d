"""The development sender: writes our outgoing texts to a stream instead of calling Twilio."""

from __future__ import annotations

import sys
import threading
from datetime import datetime
from typing import TextIO

from engage.messaging import OutboundCall, OutboundMessage, SendResult


class ConsoleSender:
    """Shows each outgoing text with the contact's pseudonym; never the phone number."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream
        self.sent: list[OutboundMessage] = []
        self.calls: list[OutboundCall] = []
        self._lock = threading.Lock()  # a batch sends from several threads: one text at a time

    def send(self, message: OutboundMessage) -> SendResult:
        stream = self.stream or sys.stderr
        with self._lock:
            stream.write(
                f"--- to {message.contact} (message {message.message_id})\n{message.body}\n"
            )
            stream.flush()
            self.sent.append(message)
        return SendResult(sid=f"console-{message.message_id}")

    def lookup(self, message: OutboundMessage, since: datetime) -> SendResult | None:
        """Whether an earlier attempt reached the console: it either printed or it did not."""
        found = next((m for m in self.sent if m.message_id == message.message_id), None)
        return SendResult(sid=f"console-{found.message_id}") if found else None

    def delete(self, sid: str) -> bool:
        """Nothing to delete: the console keeps no messages."""
        return True

    def place_call(self, call: OutboundCall) -> str:
        """Shows the call that would be placed; nobody is called."""
        stream = self.stream or sys.stderr
        with self._lock:
            stream.write(f"--- call to {call.contact} (call {call.call_id})\n")
            stream.flush()
            self.calls.append(call)
        return f"console-call-{call.call_id}"
