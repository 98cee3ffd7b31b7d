"""Benchmark 3: `engage campaigns start` over 100,000 contacts, every row written and enqueued;
and the same campaign started from the page (`run_page`): the request only records it and
queues the fan-out on `bulk`, a worker writes it, and the page's progress.json answers all along.

Contacts are COPYed in with phones encrypted by engage.privacy.Vault and a profile state (so a
time zone). ENGAGE_QUIET_HOURS=0-0 means no quiet hours (engage/services/quiet_hours.py: with
start == end no hour is quiet), so every invitation is due now and goes to RQ's `bulk` queue.
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import threading
import time

from bench.common import (
    BIN,
    PYTHON,
    ROOT,
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

LIMIT_SECONDS = 30.0
# The page: the start request answers within this; progress.json within this at the 95th
# percentile while the invitations are written.
REQUEST_SECONDS = 3.0
PROGRESS_P95_SECONDS = 1.0
# What a worker runs when it takes the campaign's fan-out job off `bulk` (the send jobs it
# queues are left there: sending is the sending benchmark's).
_FAN_OUT_JOB = (
    "import sys\n"
    "from engage import create_app\n"
    "from engage.jobs.campaigns import fan_out\n"
    "app = create_app(web=False)\n"
    "with app.app_context():\n"
    "    fan_out(int(sys.argv[1]))\n"
)
_SUMMARY = re.compile(r"(\d+) invited, (\d+) message\(s\) queued now, (\d+) scheduled")


def run(*, contacts: int = 100_000) -> list[Target]:
    log(f"fan-out: fresh database, COPY {contacts:,} contacts")
    fresh_engage()
    copy_seconds = insert_contacts(0, contacts)
    with pg_connect() as conn:
        conn.execute("VACUUM ANALYZE contacts")
        conn.execute("CHECKPOINT")
    log("fan-out: engage campaigns start working-conditions")
    env = engage_env(ENGAGE_QUIET_HOURS="0-0")
    started = time.perf_counter()
    output = run_checked(
        [str(BIN / "engage"), "campaigns", "start", "working-conditions"], env=env, timeout=600
    )
    seconds = time.perf_counter() - started
    match = _SUMMARY.search(output)
    invited, queued_now, scheduled = (int(g) for g in match.groups()) if match else (0, 0, 0)
    with pg_connect() as conn:
        rows, due_now, pending = conn.execute(
            "SELECT count(*), count(*) FILTER (WHERE send_after IS NULL), "
            "count(*) FILTER (WHERE status = 'pending') FROM messages WHERE direction = 'out'"
        ).fetchone()
        conversations = conn.execute("SELECT count(*) FROM conversations").fetchone()[0]
        campaign_invited = conn.execute("SELECT sum(invited) FROM campaigns").fetchone()[0] or 0
        due_ids = {
            row[0]
            for row in conn.execute(
                "SELECT id FROM messages WHERE direction = 'out' AND send_after IS NULL"
            )
        }
    from rq.job import Job
    from rq.serializers import JSONSerializer

    client = redis_client()
    jobs = [job.decode() for job in client.lrange("rq:queue:bulk", 0, -1)]
    # Bulk rows travel in batch jobs (engage.jobs.send.send_batch): read each job's row ids.
    batched = [
        message_id
        for job in Job.fetch_many(jobs, connection=client, serializer=JSONSerializer)
        if job is not None
        for message_id in job.args[0]
    ]
    job_ids = set(batched)
    complete = (
        invited == contacts
        and campaign_invited == contacts
        and rows == contacts
        and conversations == contacts
        and pending == rows
        and len(batched) == len(job_ids) == due_now == queued_now
        and job_ids == due_ids
    )
    print_table(
        f"Fan-out: `engage campaigns start working-conditions` over {contacts:,} contacts "
        "(ENGAGE_QUIET_HOURS=0-0)",
        ["step", "seconds", "rows/s", "detail"],
        [
            (
                "COPY contacts (Fernet)",
                f"{copy_seconds:.1f}",
                f"{contacts / copy_seconds:,.0f}",
                "",
            ),
            (
                "campaign command (wall)",
                f"{seconds:.1f}",
                f"{rows / seconds:,.0f}",
                f"{invited:,} invited, {queued_now:,} queued now, {scheduled:,} scheduled",
            ),
        ],
    )
    print(
        f"  database: {rows:,} outbound rows ({due_now:,} due now, {pending:,} pending), "
        f"{conversations:,} conversations, {campaign_invited:,} invited in the campaign row; "
        f"Redis `bulk`: {len(jobs):,} jobs "
        f"for {len(batched):,} rows "
        f"({len(job_ids):,} distinct, {len(job_ids ^ due_ids):,} not matching a due row)"
    )
    return [
        Target(
            f"fan-out written and enqueued within {LIMIT_SECONDS:g} s",
            seconds <= LIMIT_SECONDS and complete,
            f"{seconds:.1f} s; {rows:,} rows, {len(jobs):,} jobs, {scheduled:,} scheduled; "
            f"counts {'match' if complete else 'DO NOT match'}",
        )
    ]


def run_page(*, contacts: int = 100_000) -> list[Target]:
    """The campaign started from the page: the request's time, the fan-out's, and how fast
    progress.json answers meanwhile."""
    import re as _re

    from engage import create_app, db
    from engage.services.accounts import create_user

    log(f"fan-out from the page: fresh database, COPY {contacts:,} contacts")
    fresh_engage()
    insert_contacts(0, contacts)
    with pg_connect() as conn:
        conn.execute("VACUUM ANALYZE contacts")
        conn.execute("CHECKPOINT")
    env = engage_env(ENGAGE_QUIET_HOURS="0-0")
    app = create_app(env)
    password = "bench staff password"
    with app.app_context(), db.transaction() as session:
        create_user(session, "staff@bench.example", password, "staff")
    client = app.test_client()

    def token(path: str) -> str:
        page = client.get(path).get_data(as_text=True)
        found = _re.search(r'name="csrf_token" value="([^"]+)"', page)
        assert found, path
        return found.group(1)

    client.post(
        "/login",
        data={"email": "staff@bench.example", "password": password, "csrf_token": token("/login")},
    )
    fields = {
        "survey": "working-conditions",
        "channel": "sms",
        "start": "now",
        "reminders": "0",
        "remind": "not_started",
        "csrf_token": token("/staff/campaigns/new"),
    }
    started = time.perf_counter()
    preview = client.post("/staff/campaigns/new", data={**fields, "action": "preview"})
    preview_seconds = time.perf_counter() - started
    previewed = _re.search(
        r'name="previewed" type="hidden" value="([^"]+)"', preview.get_data(as_text=True)
    )
    assert previewed, f"no preview: {preview.status_code}"
    log("fan-out from the page: start")
    started = time.perf_counter()
    response = client.post(
        "/staff/campaigns/new",
        data={**fields, "action": "start", "previewed": previewed.group(1)},
    )
    request_seconds = time.perf_counter() - started
    assert response.status_code == 302, response.status_code
    campaign_id = int(response.headers["Location"].rsplit("/", 1)[1])
    progress_url = f"/staff/campaigns/{campaign_id}/progress.json"

    latencies: list[float] = []
    invited_seen: list[int] = []
    done = threading.Event()

    def follow() -> None:
        """The page's polling, as fast as it goes: every answer's time."""
        while not done.is_set():
            asked = time.perf_counter()
            counts = client.get(progress_url).get_json()
            latencies.append(time.perf_counter() - asked)
            invited_seen.append(counts["invited"])
            time.sleep(0.25)

    watcher = threading.Thread(target=follow, daemon=True)
    watcher.start()
    worker_started = time.perf_counter()
    subprocess.run(
        [PYTHON, "-c", _FAN_OUT_JOB, str(campaign_id)],
        cwd=ROOT,
        env=env,
        check=True,
        timeout=600,
        capture_output=True,
    )
    fan_out_seconds = time.perf_counter() - worker_started
    done.set()
    watcher.join(10)
    counts = client.get(progress_url).get_json()
    jobs = redis_client().llen("rq:queue:bulk")
    total_seconds = request_seconds + fan_out_seconds
    p95 = statistics.quantiles(latencies, n=20)[-1] if len(latencies) >= 2 else latencies[0]
    followed = len(set(invited_seen)) > 2  # the page saw the invitations being written
    complete = counts["contacts"] == counts["invited"] == contacts and jobs >= contacts // 100
    print_table(
        f"Fan-out from the page over {contacts:,} contacts (ENGAGE_QUIET_HOURS=0-0)",
        ["step", "seconds", "detail"],
        [
            ("preview (counts, segments)", f"{preview_seconds:.2f}", ""),
            ("start request", f"{request_seconds:.2f}", "records it, queues the fan-out"),
            ("fan-out job (worker)", f"{fan_out_seconds:.1f}", f"{counts['invited']:,} invited"),
            (
                "progress.json meanwhile",
                f"p50 {statistics.median(latencies):.3f}, p95 {p95:.3f}, max {max(latencies):.3f}",
                f"{len(latencies)} answers, {len(set(invited_seen))} different counts",
            ),
        ],
    )
    return [
        Target(
            f"page: start answers within {REQUEST_SECONDS:g} s, written and enqueued within "
            f"{LIMIT_SECONDS:g} s",
            request_seconds <= REQUEST_SECONDS and total_seconds <= LIMIT_SECONDS and complete,
            f"request {request_seconds:.2f} s, in all {total_seconds:.1f} s; "
            f"counts {'match' if complete else 'DO NOT match'}",
        ),
        Target(
            f"page: progress.json p95 within {PROGRESS_P95_SECONDS:g} s during the fan-out",
            p95 <= PROGRESS_P95_SECONDS and followed,
            f"p95 {p95:.3f} s, max {max(latencies):.3f} s over {len(latencies)} answers",
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--page", action="store_true", help="start it from the page instead")
    args = parser.parse_args()
    chosen = run_page if args.page else run
    for target in chosen(contacts=args.contacts):
        print(f"{'PASS' if target.passed else 'FAIL'} {target.name}: {target.detail}")


if __name__ == "__main__":
    main()
