"""The send pool: several sends in flight, each answer sorted by what is safe to do next."""

from __future__ import annotations

import threading
from datetime import datetime

import pytest

from engage.messaging import (
    AmbiguousSendError,
    OutboundMessage,
    PermanentSendError,
    SendResult,
    TransientSendError,
)
from engage.messaging.pool import SendPool
from engage.messaging.ratelimit import RateLimitTimeoutError


class ScriptedSender:
    """Answers each message by its body: ok, or raises the named error."""

    def __init__(self) -> None:
        self.threads: set[str] = set()
        self.lock = threading.Lock()

    def send(self, message: OutboundMessage) -> SendResult:
        with self.lock:
            self.threads.add(threading.current_thread().name)
        errors = {
            "permanent": PermanentSendError(21211, "invalid To"),
            "transient": TransientSendError(20429, "too many requests"),
            "ambiguous": AmbiguousSendError(None, "answer lost"),
            "bug": RuntimeError("not a Twilio error"),
        }
        if message.body in errors:
            raise errors[message.body]
        return SendResult(sid=f"SM{message.message_id:032d}", status="queued")

    def lookup(self, message: OutboundMessage, since: datetime) -> SendResult | None:
        return None


class NoSlots:
    """A rate limiter that never has a slot free."""

    def acquire(self, sender: str, *, timeout: float = 30.0) -> float:
        raise RateLimitTimeoutError("no slot")


def message(message_id: int, body: str = "ok") -> OutboundMessage:
    return OutboundMessage(
        message_id=message_id, contact="c", to="+15558675310", from_="+15017122661", body=body
    )


@pytest.mark.parametrize("concurrency", [1, 3])
def test_each_answer_is_sorted_by_what_is_safe_next(concurrency: int) -> None:
    bodies = ["ok", "permanent", "transient", "ambiguous", "bug", "ok"]
    messages = [message(i, body) for i, body in enumerate(bodies, start=1)]
    outcomes = SendPool(concurrency).submit(ScriptedSender(), None, messages).outcomes()
    assert [message_id for message_id, _ in outcomes.sent] == [1, 6]
    assert outcomes.failed == [(2, 21211)]
    assert outcomes.retry == [3]
    # A lost answer and an unexpected error both keep the row to be looked up, never resent.
    assert outcomes.lost == [4, 5]


def test_sends_run_on_the_pools_threads() -> None:
    sender = ScriptedSender()
    SendPool(3).submit(sender, None, [message(i) for i in range(12)]).outcomes()
    assert all(name.startswith("engage-send") for name in sender.threads)


def test_no_rate_limit_slot_means_nothing_was_sent() -> None:
    sender = ScriptedSender()
    pool = SendPool(2)
    outcomes = pool.submit(sender, NoSlots(), [message(1), message(2)]).outcomes()  # type: ignore[arg-type]
    assert outcomes.retry == [1, 2]
    assert sender.threads == set()
