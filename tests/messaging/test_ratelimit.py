"""The per-sender rate limit, against a real Redis: no one-second window ever holds more than N."""

from __future__ import annotations

import multiprocessing
import time
import uuid
from collections.abc import Iterator

import pytest
import redis

from engage.messaging import ratelimit
from engage.messaging.ratelimit import RateLimiter, RateLimitTimeoutError, default_rate, window_for

REDIS_URL = "redis://127.0.0.1:6379/15"
SECOND_US = 1_000_000
MARGIN_US = ratelimit.SAFETY_MARGIN_US
SENDER = "+14155550100"


@pytest.fixture
def prefix() -> str:
    """A key prefix of this test's own, so tests never see each other's grants."""
    return f"test:ratelimit:{uuid.uuid4().hex}:"


@pytest.fixture
def client(prefix: str) -> Iterator[redis.Redis]:
    conn = redis.Redis.from_url(REDIS_URL)
    yield conn
    for key in conn.scan_iter(match=f"{prefix}*"):
        conn.delete(key)
    conn.close()


def try_acquire(limiter: RateLimiter, sender: str) -> float:
    """One attempt, without acquire's sleeping: 0.0 if it took a send slot, else the seconds to
    wait (taking nothing)."""
    if limiter.rate_for(sender) == 0:
        return 0.0
    granted_at_us, wait = limiter._attempt(sender)
    return 0.0 if granted_at_us is not None else wait


def most_in_any_window(grants_us: list[int], width_us: int) -> int:
    """The most grants any closed window [t, t + width] holds, over every start t.

    The busiest window can always be slid right until it starts on a grant, so checking the
    windows that start at each grant covers all of them.
    """
    times = sorted(grants_us)
    most = 0
    for i, start in enumerate(times):
        most = max(most, sum(1 for t in times[i:] if t <= start + width_us))
    return most


@pytest.mark.parametrize(
    ("sender", "rate"),
    [
        # Messaging Service: no figure from Twilio (docs/twilio.md §9), so one long code
        ("MG" + "0123456789abcdef" * 2, 1.0),
        ("whatsapp:+14155238886", 80.0),
        ("whatsapp:+18005550100", 80.0),  # a toll-free number on WhatsApp is a WhatsApp sender
        ("12345", 100.0),
        ("123456", 100.0),
        ("+18005550100", 3.0),
        ("+18335550100", 3.0),
        ("+18445550100", 3.0),
        ("+18555550100", 3.0),
        ("+18665550100", 3.0),
        ("+18775550100", 3.0),
        ("+18885550100", 3.0),
        ("+14155550100", 1.0),
        ("+18005550100000", 1.0),  # too long for a toll-free number
        ("+525512345678", 1.0),
        ("1234", 1.0),
        ("1234567", 1.0),
    ],
)
def test_default_rate_follows_the_sender_kind(sender: str, rate: float) -> None:
    assert default_rate(sender) == rate


@pytest.mark.parametrize(
    ("rate", "window"),
    [
        (1, (1, SECOND_US + MARGIN_US)),
        (5, (5, SECOND_US + MARGIN_US)),
        (2.5, (2, SECOND_US + MARGIN_US)),
        (0.5, (1, 2 * SECOND_US + MARGIN_US)),
    ],
)
def test_window_for_never_allows_more_than_the_rate_in_a_second(
    rate: float, window: tuple[int, int]
) -> None:
    assert window_for(rate) == window


def test_rate_none_uses_the_sender_kind_default(client: redis.Redis, prefix: str) -> None:
    limiter = RateLimiter(client, None, prefix=prefix)
    toll_free = "+18005550100"
    assert [try_acquire(limiter, toll_free) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert try_acquire(limiter, toll_free) > 0
    assert limiter.rate_for("whatsapp:+14155238886") == 80.0


@pytest.mark.parametrize("rate", [-1, float("nan"), float("inf")])
def test_nonsense_rate_is_refused(client: redis.Redis, rate: float) -> None:
    with pytest.raises(ValueError):
        RateLimiter(client, rate)


def test_rate_zero_never_waits_nor_touches_redis(client: redis.Redis, prefix: str) -> None:
    limiter = RateLimiter(client, 0, prefix=prefix)
    started = time.monotonic()
    assert all(limiter.acquire(SENDER, timeout=0) == 0.0 for _ in range(500))
    assert all(try_acquire(limiter, SENDER) == 0.0 for _ in range(500))
    assert time.monotonic() - started < 1
    assert list(client.scan_iter(match=f"{prefix}*")) == []


def test_one_process_never_exceeds_n_in_any_sliding_second(
    client: redis.Redis, prefix: str
) -> None:
    rate = 5
    limiter = RateLimiter(client, rate, prefix=prefix)
    grants = [limiter.acquire_grant(SENDER, timeout=5) for _ in range(3 * rate)]
    times = [g.granted_at_us for g in grants]

    assert most_in_any_window(times, SECOND_US) == rate
    # Equivalently: any N + 1 consecutive grants span more than a second.
    assert all(times[i + rate] - times[i] > SECOND_US for i in range(len(times) - rate))
    # …and the limiter is not needlessly slow: 3N sends take a little over two seconds.
    assert times[-1] - times[0] < 2 * (SECOND_US + MARGIN_US) + 0.5 * SECOND_US
    assert grants[0].waited < 0.1


def test_the_log_is_trimmed_and_expires(client: redis.Redis, prefix: str) -> None:
    rate = 3
    limiter = RateLimiter(client, rate, prefix=prefix)
    for _ in range(2 * rate):
        limiter.acquire(SENDER, timeout=5)
    key = limiter.key_for(SENDER)
    assert client.zcard(key) <= rate
    assert 0 < client.pttl(key) <= 2000 + MARGIN_US // 1000


def _acquire_in_child(url: str, prefix: str, rate: int, count: int, start, results) -> None:
    conn = redis.Redis.from_url(url)
    limiter = RateLimiter(conn, rate, prefix=prefix)
    start.wait()
    results.put([limiter.acquire_grant(SENDER, timeout=10).granted_at_us for _ in range(count)])


def test_processes_sharing_a_limiter_never_exceed_n_together(prefix: str, client) -> None:
    rate, per_process, processes = 5, 5, 3
    context = multiprocessing.get_context("fork")
    start = context.Barrier(processes)
    results = context.Queue()
    children = [
        context.Process(
            target=_acquire_in_child,
            args=(REDIS_URL, prefix, rate, per_process, start, results),
        )
        for _ in range(processes)
    ]
    for child in children:
        child.start()
    per_child = [results.get(timeout=20) for _ in children]
    for child in children:
        child.join(timeout=5)
        assert child.exitcode == 0

    times = sorted(t for grants in per_child for t in grants)
    assert len(times) == processes * per_process
    assert len(set(times)) == len(times)
    assert most_in_any_window(times, SECOND_US) == rate
    assert times[-1] - times[0] < 2 * (SECOND_US + MARGIN_US) + 0.5 * SECOND_US


def test_senders_do_not_limit_each_other(client: redis.Redis, prefix: str) -> None:
    limiter = RateLimiter(client, 2, prefix=prefix)
    other = "+14155550199"
    assert [try_acquire(limiter, SENDER) for _ in range(2)] == [0.0, 0.0]
    assert try_acquire(limiter, SENDER) > 0
    assert [try_acquire(limiter, other) for _ in range(2)] == [0.0, 0.0]


def test_keys_hold_no_address_in_clear(client: redis.Redis, prefix: str) -> None:
    limiter = RateLimiter(client, 2, prefix=prefix)
    limiter.acquire(SENDER)
    limiter.acquire("whatsapp:" + SENDER)
    keys = [key.decode() for key in client.scan_iter(match=f"{prefix}*")]
    assert len(keys) == 2
    assert not any("14155550100" in key for key in keys)


def test_an_attempt_that_must_wait_takes_nothing(client: redis.Redis, prefix: str) -> None:
    limiter = RateLimiter(client, 1, prefix=prefix)
    assert try_acquire(limiter, SENDER) == 0.0
    waits = [try_acquire(limiter, SENDER) for _ in range(5)]
    assert all(0.9 < wait <= 1.0 + MARGIN_US / SECOND_US for wait in waits)
    assert client.zcard(limiter.key_for(SENDER)) == 1


def test_acquire_sleeps_what_the_script_says_instead_of_polling(
    client: redis.Redis, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    limiter = RateLimiter(client, 1, prefix=prefix)
    limiter.acquire(SENDER)
    sleeps: list[float] = []
    real_sleep = time.sleep

    def recording_sleep(seconds: float) -> None:
        sleeps.append(seconds)
        real_sleep(seconds)

    monkeypatch.setattr(ratelimit.time, "sleep", recording_sleep)
    waited = limiter.acquire(SENDER, timeout=3)
    assert len(sleeps) == 1
    assert 0.9 < sleeps[0] <= 1.0 + MARGIN_US / SECOND_US
    assert 0.9 < waited < 1.3 + MARGIN_US / SECOND_US


def test_timeout_raises_without_sleeping_past_it(client: redis.Redis, prefix: str) -> None:
    limiter = RateLimiter(client, 1, prefix=prefix)
    limiter.acquire(SENDER)
    started = time.monotonic()
    with pytest.raises(RateLimitTimeoutError):
        limiter.acquire(SENDER, timeout=0.3)
    assert time.monotonic() - started < 0.3
    with pytest.raises(RateLimitTimeoutError):
        limiter.acquire(SENDER, timeout=0)


def test_fractional_rate_allows_one_send_per_period(client: redis.Redis, prefix: str) -> None:
    limiter = RateLimiter(client, 0.8, prefix=prefix)  # one send per 1.25 s
    first = limiter.acquire_grant(SENDER)
    assert 1.2 < try_acquire(limiter, SENDER) <= 1.25 + MARGIN_US / SECOND_US
    second = limiter.acquire_grant(SENDER, timeout=3)
    assert second.granted_at_us - first.granted_at_us > 1.25 * SECOND_US
    assert 1.1 < second.waited < 1.5 + MARGIN_US / SECOND_US


def test_rate_above_one_rounds_down_within_the_second(client: redis.Redis, prefix: str) -> None:
    limiter = RateLimiter(client, 2.5, prefix=prefix)
    assert [try_acquire(limiter, SENDER) for _ in range(2)] == [0.0, 0.0]
    assert try_acquire(limiter, SENDER) > 0.9
