"""Benchmark 2: one RQ worker draining outbound rows to the fake Twilio, and the rate limit.

Throughput: N pending rows, written and enqueued on `bulk` by a real campaign, drained by one
burst worker (`python worker.py`, ENGAGE_WORKER_BURST=1, ENGAGE_SEND_RATE=0). Ceiling: a plain
loop of the same POSTs (same form fields, basic auth) on one requests.Session, to the same fake
process, in the same run. Rate limit: with ENGAGE_SEND_RATE=20, 100 rows through two workers at
once; the fake's arrival times must never hold more than 20 in any one-second window.
"""

from __future__ import annotations

import argparse
import bisect
import time
from typing import Any

import requests

from bench.common import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    BIN,
    OUR_NUMBER,
    PII_KEY,
    PUBLIC_URL,
    PYTHON,
    ROOT,
    FakeTwilioProcess,
    Process,
    Target,
    engage_env,
    fresh_engage,
    insert_contacts,
    log,
    pg_connect,
    print_table,
    redis_client,
    run_checked,
)

RATE = 20
RATE_ROWS = 100
RATE_WORKERS = 2
WORKER_TIMEOUT = 600.0


def start_campaign(env: dict[str, str]) -> str:
    """`engage campaigns start working-conditions` (no quiet hours: every row is due now)."""
    argv = [str(BIN / "engage"), "campaigns", "start", "working-conditions"]
    return run_checked(argv, env=env, timeout=300).strip()


def pending_rows() -> list[tuple[int, str, str]]:
    """(id, phone, body) of every pending outbound row, oldest first; each address read as the
    outbox reads it (`outbox.address_of`: under its contact's own key)."""
    from engage.privacy import Vault
    from engage.services.outbox import address_of

    vault = Vault(PII_KEY)
    with pg_connect() as conn:
        rows = conn.execute(
            "SELECT m.id, m.their_address_encrypted, m.body, c.key_encrypted FROM messages m "
            "LEFT JOIN contacts c ON c.id = m.contact_id "
            "WHERE m.direction = 'out' AND m.status = 'pending' ORDER BY m.id"
        ).fetchall()
    return [
        (id_, address_of(vault, address, key, linked=key is not None), body)
        for id_, address, body, key in rows
    ]


def ceiling_loop(base_url: str, rows: list[tuple[int, str, str]]) -> float:
    """The same creates Engage makes, one after another on one Session; returns seconds."""
    url = f"{base_url}/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
    session = requests.Session()
    session.auth = (ACCOUNT_SID, AUTH_TOKEN)
    session.headers["Accept"] = "application/json"
    started = time.perf_counter()
    for message_id, phone, body in rows:
        response = session.post(
            url,
            data={
                "To": phone,
                "From": OUR_NUMBER,
                "Body": body,
                "StatusCallback": f"{PUBLIC_URL}/twilio/status?m={message_id}",
            },
            timeout=10,
        )
        response.raise_for_status()
    elapsed = time.perf_counter() - started
    session.close()
    return elapsed


def run_workers(name: str, count: int, env: dict[str, str]) -> float:
    """Start `count` burst workers at once and wait for all; returns the wall time in seconds."""
    workers = [
        Process(
            f"{name}-{i}", [PYTHON, str(ROOT / "worker.py")], {**env, "ENGAGE_WORKER_BURST": "1"}
        )
        for i in range(count)
    ]
    started = time.perf_counter()
    for worker in workers:
        worker.start()
    try:
        codes = [worker.wait(WORKER_TIMEOUT) for worker in workers]
    finally:
        for worker in workers:
            worker.stop()
    elapsed = time.perf_counter() - started
    if any(codes):
        raise RuntimeError(f"{name}: a worker exited with {codes}; see {OUT_HINT}")
    return elapsed


OUT_HINT = "bench/out/*.log"


def outbound_status() -> dict[str, int]:
    with pg_connect() as conn:
        return dict(
            conn.execute(
                "SELECT status, count(*) FROM messages WHERE direction = 'out' GROUP BY status"
            ).fetchall()
        )


def max_in_window(times: list[float], window: float = 1.0) -> tuple[int, float]:
    """The most arrivals in any window [t, t + window), and where the busiest window starts."""
    times = sorted(times)
    best, at = 0, times[0] if times else 0.0
    for i, start in enumerate(times):
        count = bisect.bisect_left(times, start + window) - i
        if count > best:
            best, at = count, start
    return best, at


def sent_once(creates: list[dict[str, Any]], ids: set[int]) -> tuple[bool, str]:
    seen = [c["message_id"] for c in creates]
    ok = len(seen) == len(set(seen)) and set(seen) == ids
    return ok, f"{len(seen)} creates for {len(ids)} rows, {len(seen) - len(set(seen))} repeated"


def run(*, rows: int = 2000) -> list[Target]:
    """Ceiling loop and one burst worker on the same fake, then the rate-limit check."""
    log(f"sending: fresh database, {rows} contacts, a campaign of {rows} invitations")
    fresh_engage()
    insert_contacts(0, rows)
    fake = FakeTwilioProcess("fake-twilio-sending").start()
    env = engage_env(ENGAGE_TWILIO_API_URL=fake.base_url, ENGAGE_QUIET_HOURS="0-0")
    try:
        summary = start_campaign(env)
        work = pending_rows()
        queued = redis_client().llen("rq:queue:bulk")
        log(f"sending: {summary}; ceiling loop of {len(work)} POSTs")
        ceiling_seconds = ceiling_loop(fake.base_url, work)
        boundary = time.time()
        log("sending: one burst worker")
        worker_seconds = run_workers("worker-sending", 1, env)
    finally:
        record = fake.record()
    engage_creates = [c for c in record["creates"] if c["time"] >= boundary]
    ceiling_rate = len(work) / ceiling_seconds
    status = outbound_status()
    sent = sum(n for s, n in status.items() if s in ("queued", "sent", "delivered", "accepted"))
    engage_rate = sent / worker_seconds
    once, once_detail = sent_once(engage_creates, {row[0] for row in work})
    window = (
        engage_creates[-1]["time"] - engage_creates[0]["time"] if len(engage_creates) > 1 else 0
    )
    print_table(
        f"Sending: {len(work)} rows (campaign, queue `bulk`), one burst worker vs a "
        "requests.Session loop, same fake Twilio",
        ["sender", "rows", "seconds", "rows/s", "vs ceiling"],
        [
            ("ceiling loop", len(work), f"{ceiling_seconds:.2f}", f"{ceiling_rate:,.0f}", "1.00"),
            (
                "Engage worker (wall)",
                sent,
                f"{worker_seconds:.2f}",
                f"{engage_rate:,.0f}",
                f"{engage_rate / ceiling_rate:.2f}",
            ),
            (
                "  first→last create",
                len(engage_creates),
                f"{window:.2f}",
                f"{len(engage_creates) / window:,.0f}" if window else "n/a",
                f"{len(engage_creates) / window / ceiling_rate:.2f}" if window else "n/a",
            ),
        ],
    )
    print(f"  queued before: {queued} jobs; rows by status after: {status}")
    print(f"  fake: {once_detail}; schema violations: {record['violation_count']}")

    rate_targets = run_rate_check()
    return [
        Target(
            "sending throughput >= 50% of ceiling",
            engage_rate >= 0.5 * ceiling_rate,
            f"{engage_rate:,.0f} vs {ceiling_rate:,.0f} rows/s = {engage_rate / ceiling_rate:.2f}",
        ),
        Target(
            "sending: every row sent exactly once",
            once and sent == len(work) and record["violation_count"] == 0,
            f"{once_detail}; {sent} rows marked sent; {record['violation_count']} violations",
        ),
        *rate_targets,
    ]


def run_rate_check() -> list[Target]:
    log(f"sending: rate check, {RATE_ROWS} rows, {RATE_WORKERS} workers, ENGAGE_SEND_RATE={RATE}")
    before = {row[0] for row in pending_rows()}
    from bench.common import scalar

    first = scalar("SELECT count(*) FROM contacts")
    insert_contacts(first, RATE_ROWS)
    fake = FakeTwilioProcess("fake-twilio-rate").start()
    env = engage_env(
        ENGAGE_TWILIO_API_URL=fake.base_url, ENGAGE_QUIET_HOURS="0-0", ENGAGE_SEND_RATE=str(RATE)
    )
    try:
        start_campaign(env)
        ids = {row[0] for row in pending_rows()} - before
        seconds = run_workers("worker-rate", RATE_WORKERS, env)
    finally:
        record = fake.record()
    creates = record["creates"]
    busiest, _ = max_in_window([c["time"] for c in creates])
    once, once_detail = sent_once(creates, ids)
    gaps = sorted(
        later["time"] - earlier["time"]
        for earlier, later in zip(creates, creates[RATE:], strict=False)
    )
    tightest = gaps[0] if gaps else float("nan")
    print(
        f"\nRate limit: {len(creates)} creates through {RATE_WORKERS} workers in {seconds:.1f} s "
        f"at ENGAGE_SEND_RATE={RATE}\n"
        f"  busiest one-second window at the fake: {busiest} creates (limit {RATE}); "
        f"tightest span of {RATE + 1} consecutive creates: {tightest:.4f} s\n"
        f"  {once_detail}"
    )
    return [
        Target(
            f"rate limit: no one-second window above {RATE}",
            busiest <= RATE and len(creates) == RATE_ROWS,
            f"busiest window {busiest}; {RATE + 1} consecutive creates spanned at least "
            f"{tightest:.4f} s; {len(creates)} creates",
        ),
        Target("rate limit run: every row sent exactly once", once, once_detail),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=2000)
    args = parser.parse_args()
    for target in run(rows=args.rows):
        print(f"{'PASS' if target.passed else 'FAIL'} {target.name}: {target.detail}")


if __name__ == "__main__":
    main()
