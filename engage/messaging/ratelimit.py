"""Per-sender send rate limits, shared through Redis by every worker process.

The contract (docs/twilio.md §9): for a rate of N per second, no one-second window, wherever
it starts, holds more than N sends from one sender. A token bucket does not give that: a full
bucket of N refilling at N/s hands out N at once and then more within the same second. So this is a
sliding-window log: a sorted set per sender of the last grant times, read and written by one Lua
script that takes the time from Redis (TIME), so the workers' own clocks never matter.
"""

from __future__ import annotations

import hashlib
import math
import re
import threading
import time
from collections import deque
from dataclasses import dataclass

from redis import Redis

from engage.channels import WHATSAPP, split_address

# Twilio's default per-sender MPS (messages per second), docs/twilio.md §9. Twilio counts
# segments; we count sends, and Twilio queues whatever a long message adds (up to 10 hours' worth
# per sender).
LONG_CODE_RATE = 1.0  # US/CA long code
TOLL_FREE_RATE = 3.0  # US toll-free (SMS and MMS)
SHORT_CODE_RATE = 100.0  # short code
WHATSAPP_RATE = 80.0  # WhatsApp sender (text and media)
# Twilio gives no figure for a Messaging Service: it spreads sends over a pool we cannot
# see. The smallest pool is one US long code, so assume that; set ENGAGE_SEND_RATE for more.
MESSAGING_SERVICE_RATE = LONG_CODE_RATE

_MESSAGING_SERVICE_SID = re.compile(r"MG[0-9a-fA-F]{32}")
_SHORT_CODE = re.compile(r"\d{5,6}")
_TOLL_FREE = re.compile(r"\+1(?:800|833|844|855|866|877|888)\d{7}")

_MICROSECONDS = 1_000_000

# KEYS[1]: the sender's grant log, a sorted set of grant times (microseconds, Redis clock) with
#          each time as its own member.
# ARGV[1]: sends allowed per window; ARGV[2]: window length in microseconds.
# Returns {1, granted_at, 0} or {0, now, microseconds to wait}.
# Times are integers near 2^51: exact in Lua's doubles, but tostring() would round them to 14
# digits, hence string.format('%d', …) wherever one becomes a string.
_SCRIPT = """
local key = KEYS[1]
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
-- Grant times strictly increase: two grants in one microsecond stay two members, and a server
-- clock stepping back cannot reopen a window.
local newest = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
if newest[2] and tonumber(newest[2]) >= now then
  now = tonumber(newest[2]) + 1
end
-- A grant at `now` is allowed when fewer than `limit` grants lie in [now - window, now]; keeping
-- the window closed at both ends makes any N + 1 grants span more than the window.
redis.call('ZREMRANGEBYSCORE', key, '-inf', string.format('%d', now - window - 1))
redis.call('ZREMRANGEBYRANK', key, 0, -(limit + 1))
local count = redis.call('ZCARD', key)
if count < limit then
  local member = string.format('%d', now)
  redis.call('ZADD', key, member, member)
  redis.call('PEXPIRE', key, math.ceil(window / 1000) + 1000)
  return {1, now, 0}
end
local oldest = redis.call('ZRANGE', key, count - limit, count - limit, 'WITHSCORES')
return {0, now, tonumber(oldest[2]) + window + 1 - now}
"""


class RateLimitTimeoutError(Exception):
    """No send slot for a sender came free before the caller's timeout."""


@dataclass(frozen=True)
class Grant:
    """A send allowed by the limiter."""

    waited: float  # seconds spent in acquire, sleeping included
    granted_at_us: int | None  # when the script granted it (Redis clock, µs); None: no limit


def default_rate(sender: str) -> float:
    """Sends per second Twilio allows by default for this sender address."""
    if _MESSAGING_SERVICE_SID.fullmatch(sender):
        return MESSAGING_SERVICE_RATE
    if split_address(sender.lower())[0] is WHATSAPP:
        return WHATSAPP_RATE
    if _SHORT_CODE.fullmatch(sender):
        return SHORT_CODE_RATE
    if _TOLL_FREE.fullmatch(sender):
        return TOLL_FREE_RATE
    return LONG_CODE_RATE


# A grant is taken a few milliseconds before the request reaches Twilio, and that delay varies
# (a transaction, the HTTP client): grants a whole second apart could arrive a little closer.
# Widening the window by this much keeps what Twilio sees within N per second.
SAFETY_MARGIN_US = 100_000


def window_for(rate: float) -> tuple[int, int]:
    """Sends allowed per window and the window in microseconds, for a rate per second > 0.

    At 1/s or more: floor(rate) per second (2.5/s allows 2 in any second, never 3). Below 1/s: one
    send per 1/rate seconds (0.5/s is one send in any two seconds).
    """
    if rate >= 1:
        return math.floor(rate), _MICROSECONDS + SAFETY_MARGIN_US
    return 1, math.ceil(_MICROSECONDS / rate) + SAFETY_MARGIN_US


class RateLimiter:
    """Limits sends per sender across all processes that share one Redis."""

    def __init__(self, redis: Redis, rate: float | None, *, prefix: str = "engage:rate:") -> None:
        if rate is not None and not (rate >= 0 and math.isfinite(rate)):
            raise ValueError(f"send rate must be a finite number >= 0, not {rate!r}")
        self.rate = rate
        self.prefix = prefix
        self._script = redis.register_script(_SCRIPT)

    def rate_for(self, sender: str) -> float:
        """The sends per second this limiter allows the sender; 0 means no limit."""
        return default_rate(sender) if self.rate is None else self.rate

    def sends_per_window(self, sender: str) -> int | None:
        """How many sends the sender may start within one window; None when it has no limit."""
        rate = self.rate_for(sender)
        return None if rate == 0 else window_for(rate)[0]

    def key_for(self, sender: str) -> str:
        """The sender's Redis key: a hash, so no address is ever stored in clear."""
        return self.prefix + hashlib.sha256(sender.encode()).hexdigest()[:32]

    def acquire(self, sender: str, *, timeout: float = 30.0) -> float:
        """Block until the sender may send; return the seconds waited."""
        return self.acquire_grant(sender, timeout=timeout).waited

    def acquire_grant(self, sender: str, *, timeout: float = 30.0) -> Grant:
        """Block until the sender may send; return the grant with the Redis time it was made."""
        if self.rate_for(sender) == 0:
            return Grant(waited=0.0, granted_at_us=None)
        started = time.monotonic()
        deadline = started + timeout
        while True:
            granted_at_us, wait = self._attempt(sender)
            if granted_at_us is not None:
                return Grant(waited=time.monotonic() - started, granted_at_us=granted_at_us)
            # The wait is the earliest a slot can free up; other workers may take it first, so
            # after sleeping we ask again. No slot before the deadline: give up now, not later.
            if time.monotonic() + wait > deadline:
                raise RateLimitTimeoutError(
                    f"no send slot for sender {self.key_for(sender)} within {timeout:g} s"
                )
            time.sleep(wait)

    def _attempt(self, sender: str) -> tuple[int | None, float]:
        """One run of the script: (grant time in µs, 0.0) or (None, seconds to wait)."""
        limit, window_us = window_for(self.rate_for(sender))
        is_granted, now_us, wait_us = self._script(
            keys=[self.key_for(sender)], args=[limit, window_us]
        )
        if is_granted:
            return int(now_us), 0.0
        return None, int(wait_us) / _MICROSECONDS


class LocalRateLimiter:
    """The same limit inside one process, for the embedded default without Redis: a
    sliding-window log per sender, on this process's monotonic clock."""

    def __init__(self, rate: float) -> None:
        if not (rate > 0 and math.isfinite(rate)):
            raise ValueError(f"rate must be a finite number > 0, not {rate!r}")
        self.rate = rate
        self._limit, window_us = window_for(rate)
        self._window = window_us / _MICROSECONDS
        self._grants: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def acquire(self, sender: str, *, timeout: float = 30.0) -> float:
        """Block until the sender may go; return the seconds waited."""
        started = time.monotonic()
        deadline = started + timeout
        while True:
            with self._lock:
                now = time.monotonic()
                grants = self._grants.setdefault(sender, deque())
                # As in Redis: granted when fewer than `limit` grants lie in [now - window, now].
                while grants and grants[0] < now - self._window:
                    grants.popleft()
                if len(grants) < self._limit:
                    grants.append(now)
                    return now - started
                wait = grants[-self._limit] + self._window - now + 1e-6
            if time.monotonic() + wait > deadline:
                raise RateLimitTimeoutError(f"no slot within {timeout:g} s")
            time.sleep(wait)
