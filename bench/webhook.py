"""Benchmark 1: POST /twilio/messages under wrk, Engage against ceilings A and B in one run.

Every server runs under the same gunicorn settings and gets the same pre-signed requests: a warm-up
file, then the measured file. Each request has its own MessageSid; 2,000 contacts each walk the
shipped survey (WORK, consent, answers, then messages after the end), round-robin over contacts,
so a contact's next message leaves only after its previous one was answered.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

from twilio.request_validator import RequestValidator

from bench.common import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    BIN,
    DATABASE_URL,
    OUR_NUMBER,
    OUT,
    PUBLIC_URL,
    ROOT,
    Process,
    Target,
    engage_env,
    free_port,
    fresh_engage,
    log,
    pg_connect,
    print_table,
    redis_client,
    scalar,
)

PATH = "/twilio/messages"
# Chosen after measuring (README.md, "Webhook"): sync workers, two of them, one per core.
GUNICORN_ARGS = ("--worker-class", "sync", "--workers", "2")
CONNECTIONS = 16
WRK_THREADS = 2
# The shipped survey answered in full (consent, 12 questions, the free text skipped), then what
# people send after the end: the keyword again, HELP, a stray answer. Every step has a reply.
SURVEY_TEXTS = ("WORK", "1", "1", "2", "1", "1", "2", "2", "1", "50", "5", "2", "1", "SKIP")
AFTER_TEXTS = ("WORK", "HELP", "1")
WARMUP_CONTACT_OFFSET = 900_000  # warm-up contacts are other people than the measured ones


@dataclass(frozen=True)
class RequestFile:
    path: Path
    sids: list[str]  # in file order


@dataclass(frozen=True)
class WrkResult:
    server: str
    completed: int
    seconds: float
    handed_per_thread: list[int]
    exhausted: bool
    p50_ms: float
    p99_ms: float
    errors: dict[str, int]

    @property
    def rps(self) -> float:
        return self.completed / self.seconds

    @property
    def handed(self) -> int:
        return sum(self.handed_per_thread)

    @property
    def socket_errors(self) -> int:
        return sum(v for k, v in self.errors.items() if k != "status")


def text_for_round(number: int) -> str:
    if number < len(SURVEY_TEXTS):
        return SURVEY_TEXTS[number]
    return AFTER_TEXTS[(number - len(SURVEY_TEXTS)) % len(AFTER_TEXTS)]


def inbound_form(phone: str, body: str, sid: str) -> dict[str, str]:
    """The 19 fields Twilio posts for an inbound SMS to a long code."""
    return {
        "ToCountry": "US",
        "ToState": "CA",
        "SmsMessageSid": sid,
        "NumMedia": "0",
        "ToCity": "",
        "FromZip": "95202",
        "SmsSid": sid,
        "FromState": "CA",
        "SmsStatus": "received",
        "FromCity": "STOCKTON",
        "Body": body,
        "FromCountry": "US",
        "To": OUR_NUMBER,
        "ToZip": "",
        "NumSegments": "1",
        "MessageSid": sid,
        "AccountSid": ACCOUNT_SID,
        "From": phone,
        "ApiVersion": "2010-04-01",
    }


def write_requests(path: Path, *, contacts: int, rounds: int, first_contact: int) -> RequestFile:
    """Signed requests, round-robin over contacts: all first messages, then all second, …"""
    from bench.common import contact_phone

    if contacts % WRK_THREADS:
        raise ValueError("contacts must be a multiple of the wrk threads (a contact per thread)")
    validator = RequestValidator(AUTH_TOKEN)
    url = PUBLIC_URL + PATH
    sids, lines = [], []
    for number in range(rounds):
        text = text_for_round(number)
        for contact in range(first_contact, first_contact + contacts):
            sid = "SM" + uuid.uuid4().hex
            form = inbound_form(contact_phone(contact), text, sid)
            lines.append(f"{validator.compute_signature(url, form)}\t{urlencode(form)}\n")
            sids.append(sid)
    path.write_text("".join(lines))
    return RequestFile(path, sids)


def sent_sids(requests: RequestFile, result: WrkResult) -> set[str]:
    """The SIDs wrk handed to its connections: thread t sent lines t, t+T, … in order."""
    sent = set()
    for thread, handed in enumerate(result.handed_per_thread):
        sent.update(requests.sids[thread::WRK_THREADS][:handed])
    return sent


def run_wrk(
    server: str, port: int, requests: RequestFile, seconds: int, *, wrap: bool
) -> WrkResult:
    stats_path = OUT / f"wrk-{server}.json"
    stats_path.unlink(missing_ok=True)
    argv = [
        "wrk",
        f"-t{WRK_THREADS}",
        f"-c{CONNECTIONS}",
        f"-d{seconds}s",
        "--timeout",
        "10s",
        "-s",
        str(ROOT / "bench" / "post.lua"),
        f"http://127.0.0.1:{port}{PATH}",
        "--",
        str(requests.path),
        str(stats_path),
        str(WRK_THREADS),
        "1" if wrap else "0",
    ]
    subprocess.run(argv, check=True, capture_output=True, timeout=seconds + 60)
    stats = json.loads(stats_path.read_text())
    return WrkResult(
        server=server,
        completed=stats["completed"],
        seconds=stats["duration_us"] / 1e6,
        handed_per_thread=[int(n) for n in stats["handed_per_thread"]],
        exhausted=bool(stats["exhausted"]),
        p50_ms=stats["p50_us"] / 1000,
        p99_ms=stats["p99_us"] / 1000,
        errors=stats["errors"],
    )


def gunicorn(
    name: str, app: str, env: dict[str, str], port: int, settings: Sequence[str]
) -> Process:
    argv = [
        str(BIN / "gunicorn"),
        *settings,
        "--bind",
        f"127.0.0.1:{port}",
        "--backlog",
        "2048",
        app,
    ]
    return Process(name, argv, env)


def wait_until_stable(sql: str, *, quiet: float = 1.0, timeout: float = 30.0) -> int:
    """Poll a count until it stops moving: the server finishes what was in flight when wrk ended."""
    deadline = time.monotonic() + timeout
    last = scalar(sql)
    while time.monotonic() < deadline:
        time.sleep(quiet)
        now = scalar(sql)
        if now == last:
            return now
        last = now
    return last


def measure(
    server: str,
    app: str,
    env: dict[str, str],
    warmup: RequestFile,
    measured: RequestFile,
    *,
    seconds: int,
    warmup_seconds: int,
    wrap: bool,
    settle_sql: str | None,
    settings: Sequence[str],
) -> tuple[WrkResult, WrkResult]:
    """Serve `app`, warm it up, checkpoint PostgreSQL, then the measured wrk run."""
    port = free_port()
    with gunicorn(f"gunicorn-{server}", app, env, port, settings) as process:
        process.wait_for_port(port)
        warm = run_wrk(f"{server}-warmup", port, warmup, warmup_seconds, wrap=wrap)
        if settle_sql:
            wait_until_stable(settle_sql)
        with pg_connect() as conn:
            conn.execute("CHECKPOINT")
        log(f"webhook {server}: measuring {seconds} s")
        result = run_wrk(server, port, measured, seconds, wrap=wrap)
        if settle_sql:
            wait_until_stable(settle_sql)
    return warm, result


def verify_engage(sent: set[str]) -> list[tuple[str, bool, str]]:
    """Every message stored exactly once, each with its replies, each reply queued once."""
    with pg_connect() as conn:
        stored = [row[0] for row in conn.execute("SELECT sid FROM messages WHERE direction = 'in'")]
        without_reply = conn.execute(
            """
            SELECT count(*) FROM messages i
            WHERE i.direction = 'in' AND NOT EXISTS (
                SELECT 1 FROM messages o
                WHERE o.direction = 'out' AND o.contact_id = i.contact_id
                  AND o.created_at = i.created_at)
            """
        ).fetchone()[0]
        outbound = {
            row[0]: row[1]
            for row in conn.execute("SELECT id, status FROM messages WHERE direction = 'out'")
        }
        answers = conn.execute("SELECT count(*) FROM answers").fetchone()[0]
        completed = conn.execute(
            "SELECT count(*) FROM conversations WHERE status = 'completed'"
        ).fetchone()[0]
    queued = [job.decode() for job in redis_client().lrange("rq:queue:replies", 0, -1)]
    queued_ids = [int(job.removeprefix("send-")) for job in queued]
    unique = set(stored)
    checks = [
        (
            "inbound rows = requests sent",
            len(stored) == len(sent) and unique == sent,
            f"{len(stored)} rows for {len(sent)} requests sent; "
            f"{len(sent - unique)} missing, {len(unique - sent)} unexpected",
        ),
        ("no duplicate inbound", len(stored) == len(unique), f"{len(stored) - len(unique)} dupes"),
        (
            "every inbound has its replies",
            without_reply == 0,
            f"{without_reply} inbound without an outbound row; {len(outbound)} outbound rows, "
            f"{answers} answers, {completed} surveys completed",
        ),
        (
            "every reply queued once on `replies`",
            len(queued_ids) == len(set(queued_ids)) and set(queued_ids) == set(outbound),
            f"{len(queued_ids)} jobs for {len(outbound)} outbound rows "
            f"({sum(1 for s in outbound.values() if s == 'pending')} pending)",
        ),
    ]
    return checks


def run(
    *,
    seconds: int = 30,
    warmup_seconds: int = 5,
    contacts: int = 2000,
    rounds: int = 40,
    settings: Sequence[str] = GUNICORN_ARGS,
) -> list[Target]:
    """Run A, B, Engage and B again; print the figures; return the targets."""
    from bench.ceiling_app import create_table
    from engage.config import database_url

    OUT.mkdir(parents=True, exist_ok=True)
    log("webhook: fresh database, signing requests")
    fresh_engage()
    create_table(database_url(DATABASE_URL))
    warmup = write_requests(
        OUT / "requests-warmup.txt",
        contacts=200,
        rounds=len(SURVEY_TEXTS),
        first_contact=WARMUP_CONTACT_OFFSET,
    )
    measured = write_requests(
        OUT / "requests.txt", contacts=contacts, rounds=rounds, first_contact=0
    )
    ceiling_env = {**engage_env(), "BENCH_DATABASE_URL": database_url(DATABASE_URL)}
    b_count = "SELECT count(*) FROM bench_ceiling_inbound"
    engage_count = "SELECT count(*) FROM messages WHERE direction = 'in'"
    # B runs before and after Engage (its table emptied in between): the ceiling is their mean,
    # and their spread shows how much the machine drifted during the run.
    plan = (
        ("A", "bench.ceiling_app:make_bare()", ceiling_env, True, None),
        ("B", "bench.ceiling_app:make_checked()", ceiling_env, False, b_count),
        ("Engage", "wsgi:app", engage_env(), False, engage_count),
        ("B again", "bench.ceiling_app:make_checked()", ceiling_env, False, b_count),
    )
    results: dict[str, WrkResult] = {}
    warmups: dict[str, WrkResult] = {}
    b_checks = []
    for server, app, env, wrap, settle in plan:
        if server == "B again":
            with pg_connect() as conn:
                conn.execute("TRUNCATE bench_ceiling_inbound")
        log(f"webhook {server}: warm-up {warmup_seconds} s")
        warmups[server], results[server] = measure(
            server.replace(" ", "-"),
            app,
            env,
            warmup,
            measured,
            seconds=seconds,
            warmup_seconds=warmup_seconds,
            wrap=wrap,
            settle_sql=settle,
            settings=settings,
        )
        if settle == b_count:
            sent = len(sent_sids(warmup, warmups[server])) + len(
                sent_sids(measured, results[server])
            )
            b_checks.append((server, scalar(b_count), sent))
    a, engage = results["A"], results["Engage"]
    b_rps = (results["B"].rps + results["B again"].rps) / 2
    b_p99 = (results["B"].p99_ms + results["B again"].p99_ms) / 2
    b_drift = abs(results["B"].rps - results["B again"].rps) / b_rps
    checks = verify_engage(sent_sids(warmup, warmups["Engage"]) | sent_sids(measured, engage))

    print_table(
        f"Webhook: POST {PATH}, gunicorn {' '.join(settings)}, {CONNECTIONS} connections, "
        f"wrk -t{WRK_THREADS}, {seconds} s per server after a {warmup_seconds} s warm-up",
        ["server", "req/s", "p50 ms", "p99 ms", "req/s / B", "p99 / B", "non-2xx", "socket err"],
        [
            (
                r.server,
                f"{r.rps:,.0f}",
                f"{r.p50_ms:.1f}",
                f"{r.p99_ms:.1f}",
                f"{r.rps / b_rps:.2f}",
                f"{r.p99_ms / b_p99:.2f}",
                r.errors["status"],
                r.socket_errors,
            )
            for r in results.values()
        ],
    )
    print(
        f"  ceiling B = mean of both B runs: {b_rps:,.0f} req/s, p99 {b_p99:.1f} ms "
        f"(the two differ by {b_drift:.0%}{'; the machine was noisy' if b_drift > 0.15 else ''})"
    )
    for server, rows, sent in b_checks:
        print(f"  {server} stored {rows} rows for {sent} requests sent")
    print(f"  Engage / A throughput: {engage.rps / a.rps:.2f}")
    for name, passed, detail in checks:
        print(f"  {'ok ' if passed else 'BAD'} {name}: {detail}")

    return [
        *(
            Target(
                f"webhook run {r.server}: valid",
                not r.exhausted and r.socket_errors == 0 and r.errors["status"] == 0,
                f"file exhausted={r.exhausted}, socket errors={r.socket_errors}, "
                f"non-2xx={r.errors['status']}",
            )
            for r in results.values()
        ),
        Target(
            "webhook throughput >= 60% of B",
            engage.rps >= 0.60 * b_rps,
            f"{engage.rps:,.0f} vs {b_rps:,.0f} req/s = {engage.rps / b_rps:.2f}",
        ),
        Target(
            "webhook p99 <= 2x B's p99",
            engage.p99_ms <= 2 * b_p99,
            f"{engage.p99_ms:.1f} vs {b_p99:.1f} ms = {engage.p99_ms / b_p99:.2f}x",
        ),
        Target(
            "webhook: every message stored once with its replies",
            all(passed for _, passed, _ in checks),
            "; ".join(detail for _, passed, detail in checks if not passed) or "all checks pass",
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--contacts", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument(
        "--gunicorn", default=" ".join(GUNICORN_ARGS), help="worker settings for all servers"
    )
    args = parser.parse_args()
    targets = run(
        seconds=args.seconds,
        contacts=args.contacts,
        rounds=args.rounds,
        settings=args.gunicorn.split(),
    )
    for target in targets:
        print(f"{'PASS' if target.passed else 'FAIL'} {target.name}: {target.detail}")


if __name__ == "__main__":
    main()
