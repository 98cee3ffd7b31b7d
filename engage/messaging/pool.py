"""Several sends in flight at once: a few threads, each sorting its answer the way a job would."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from redis.exceptions import RedisError

from engage.messaging import (
    AmbiguousSendError,
    MessageSender,
    OutboundMessage,
    PermanentSendError,
    SendResult,
    TransientSendError,
)
from engage.messaging.ratelimit import RateLimitTimeoutError

if TYPE_CHECKING:
    from engage.messaging.ratelimit import RateLimiter

log = logging.getLogger(__name__)


@dataclass
class Outcomes:
    """What became of each message of a chunk, by what is safe to do next."""

    sent: list[tuple[int, SendResult]] = field(default_factory=list)
    failed: list[tuple[int, int | None]] = field(default_factory=list)  # permanent, with the code
    retry: list[int] = field(default_factory=list)  # surely not created: safe to send again
    lost: list[int] = field(default_factory=list)  # may exist at Twilio: look it up, never resend


class Flight:
    """Messages handed to the pool, and their answers to come."""

    def __init__(
        self, messages: Sequence[OutboundMessage], futures: Sequence[Future[tuple[str, object]]]
    ) -> None:
        self.messages = messages
        self._futures = futures

    def outcomes(self) -> Outcomes:
        """Wait for every answer; sorted by what is safe to do next."""
        outcomes = Outcomes()
        for message, future in zip(self.messages, self._futures, strict=True):
            kind, detail = future.result()
            if kind == "sent":
                assert isinstance(detail, SendResult)
                outcomes.sent.append((message.message_id, detail))
            elif kind == "failed":
                assert detail is None or isinstance(detail, int)
                outcomes.failed.append((message.message_id, detail))
            elif kind == "retry":
                outcomes.retry.append(message.message_id)
            else:
                outcomes.lost.append(message.message_id)
        return outcomes


def _done(answer: tuple[str, object]) -> Future[tuple[str, object]]:
    future: Future[tuple[str, object]] = Future()
    future.set_result(answer)
    return future


class SendPool:
    """Sends a chunk of messages with up to `concurrency` of them in flight.

    Twilio is 100–300 ms away: one worker sending one message at a time
    spends nearly all its time waiting, so a few requests in flight multiply what it sends. The
    threads live as long as the process, so each keeps its connection to Twilio open.
    """

    def __init__(self, concurrency: int) -> None:
        self.concurrency = max(1, concurrency)
        self._executor = (
            ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="engage-send")
            if self.concurrency > 1
            else None
        )

    def submit(
        self,
        sender: MessageSender,
        limiter: RateLimiter | None,
        messages: Sequence[OutboundMessage],
    ) -> Flight:
        """Start sending (each message after its rate-limit slot); the answers come with
        `Flight.outcomes`. Messages queue behind those already submitted."""
        if self._executor is None:
            answers = [_attempt(sender, limiter, m) for m in messages]
            return Flight(messages, [_done(answer) for answer in answers])
        return Flight(
            messages, [self._executor.submit(_attempt, sender, limiter, m) for m in messages]
        )


def _attempt(
    sender: MessageSender, limiter: RateLimiter | None, message: OutboundMessage
) -> tuple[str, object]:
    """One send in a pool thread: ("sent", SendResult), ("failed", code), "retry" or "lost"."""
    if limiter is not None and message.from_:
        try:
            # The slot is taken right before the request, in this thread, so the limiter's
            # window stays what Twilio sees (its safety margin covers only a short delay).
            limiter.acquire(message.from_)
        except (RateLimitTimeoutError, RedisError) as exc:
            # Nothing was sent: the row may go back to pending.
            log.warning("message %s: no send slot (%s), left for later", message.message_id, exc)
            return "retry", None
    try:
        return "sent", sender.send(message)
    except PermanentSendError as exc:
        return "failed", exc.code
    except TransientSendError:
        return "retry", None
    except AmbiguousSendError:
        log.warning("message %s: answer lost, will look it up", message.message_id)
        return "lost", None
    except Exception:
        # Not a sorted Twilio error: the request may have gone out. Keep the row `dispatching`
        # so it is looked up, and let the chunk's other answers be recorded.
        log.exception("message %s: unexpected error while sending", message.message_id)
        return "lost", None
