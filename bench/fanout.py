"""Benchmark 3: `engage campaigns start` over 100,000 contacts, every row written and enqueued.

Contacts are COPYed in with phones encrypted by engage.privacy.Vault and a profile state (so a
time zone). ENGAGE_QUIET_HOURS=0-0 means no quiet hours (engage/services/quiet_hours.py: with
start == end no hour is quiet), so every invitation is due now and goes to RQ's `bulk` queue.
"""

from __future__ import annotations

import argparse
import re
import time

from bench.common import (
    BIN,
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--contacts", type=int, default=100_000)
    args = parser.parse_args()
    for target in run(contacts=args.contacts):
        print(f"{'PASS' if target.passed else 'FAIL'} {target.name}: {target.detail}")


if __name__ == "__main__":
    main()
