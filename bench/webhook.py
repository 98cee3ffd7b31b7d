"""Benchmark 1: POST /twilio/messages under wrk, Engage against ceilings A and B in one run.

Every server runs under the same gunicorn settings and gets the same pre-signed requests: a warm-up
file, then the measured file. Each request has its own MessageSid; 1,600 contacts each walk the
shipped survey (WORK, consent, answers, then messages after the end), round-robin over contacts,
so a contact's next message leaves only after its previous one was answered.

Why 1,600 contacts (--contacts): every message Engage answers should advance a survey, as in a
campaign. Engage answers about 15,000 requests in 30 s; with 1,600 contacts that is the first
ten of the survey's eighteen messages, while with a few hundred most of its traffic would be the
chatter after the end (a nudge, then silence), which costs far less. The run counts the steps
that did not advance a survey and fails above 5 %. A contact's next message is 1,600 requests
after its previous one, seconds later; the run checks that every contact's steps ran in order.

B and Engage are served side by side and measured in alternating slices (B, Engage, Engage, B,
B, Engage for three slices each), so a neighbour's load that comes or goes mid-run weighs on both
alike; each slice goes on in the request file where that server's previous slice stopped.
"""

from __future__ import annotations

import argparse
import bisect
import json
import subprocess
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
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
    contact_phone,
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
# Chosen after measuring (bench/README.md, "Gunicorn settings"; docs/performance.md §3.2): sync
# workers, two, one per core.
GUNICORN_ARGS = ("--worker-class", "sync", "--workers", "2")
# The second setting the targets hold under: threads, as a deployment may choose.
GTHREAD_ARGS = ("--worker-class", "gthread", "--workers", "4", "--threads", "4")
CONNECTIONS = 16
WRK_THREADS = 2
# The shipped survey answered in full (consent, 16 questions on this path, the free text
# skipped), then what people send after the end: the keyword again, HELP, a stray answer. Every
# step has a reply.
SURVEY_TEXTS = ("WORK", "1", "1", "1", "1", "5", "10") + ("1",) * 10 + ("SKIP",)
AFTER_TEXTS = ("WORK", "HELP", "1")
WARMUP_CONTACTS = 200
WARMUP_CONTACT_OFFSET = 900_000  # warm-up contacts are other people than the measured ones
B_COUNT = "SELECT count(*) FROM bench_ceiling_inbound"
ENGAGE_COUNT = "SELECT count(*) FROM messages WHERE direction = 'in'"


# Engage's requests/s at least this share of B's, with its p99 at most twice B's. The step runs
# through SQLAlchemy Core and RQ's public APIs; through the driver's own cursor and a script
# writing RQ's job hashes it reached 0.60 and more (bench/RESULTS.md), which those APIs cost.
TARGET_SHARE_OF_B = 0.50


@dataclass(frozen=True)
class RequestFile:
    path: Path
    sids: list[str]  # in file order

    def sent(self, handed_per_thread: Sequence[int]) -> set[str]:
        """The SIDs wrk handed out: thread t sent its lines t, t+T, … from the start, in order."""
        sent: set[str] = set()
        for thread, handed in enumerate(handed_per_thread):
            sent.update(self.sids[thread::WRK_THREADS][:handed])
        return sent


@dataclass(frozen=True)
class Slice:
    """One wrk run."""

    completed: int
    seconds: float
    handed_per_thread: list[int]
    exhausted: bool
    quantiles_us: list[float]  # latency at every 0.1 percentile
    errors: dict[str, int]


@dataclass
class Measurement:
    """A server's wrk runs on one request file, taken together."""

    server: str
    slices: list[Slice] = field(default_factory=list)

    @property
    def handed_per_thread(self) -> list[int]:
        return [sum(s.handed_per_thread[t] for s in self.slices) for t in range(WRK_THREADS)]

    @property
    def rps(self) -> float:
        return sum(s.completed for s in self.slices) / sum(s.seconds for s in self.slices)

    def percentile_ms(self, p: float) -> float:
        """Percentile p of all requests: each slice's quantiles weighted by its request count."""
        points = sorted(
            (q, s.completed / len(s.quantiles_us)) for s in self.slices for q in s.quantiles_us
        )
        total = sum(weight for _, weight in points)
        cumulative, running = [], 0.0
        for _, weight in points:
            running += weight
            cumulative.append(running)
        index = bisect.bisect_left(cumulative, total * p / 100)
        return points[min(index, len(points) - 1)][0] / 1000

    @property
    def errors(self) -> dict[str, int]:
        return {k: sum(s.errors[k] for s in self.slices) for k in self.slices[0].errors}

    @property
    def socket_errors(self) -> int:
        return sum(v for k, v in self.errors.items() if k != "status")

    @property
    def exhausted(self) -> bool:
        return any(s.exhausted for s in self.slices)

    @property
    def spread(self) -> float:
        """How far the slowest and fastest slice are apart, relative to the mean."""
        rates = [s.completed / s.seconds for s in self.slices]
        return (max(rates) - min(rates)) / self.rps


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


def run_wrk(
    name: str, port: int, requests: RequestFile, seconds: int, *, wrap: bool, offsets: list[int]
) -> Slice:
    """One wrk run of `seconds`, each thread going on from its offset in the file."""
    stats_path = OUT / f"wrk-{name}.json"
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
        ",".join(str(n) for n in offsets),
    ]
    subprocess.run(argv, check=True, capture_output=True, timeout=seconds + 60)
    stats = json.loads(stats_path.read_text())
    return Slice(
        completed=stats["completed"],
        seconds=stats["duration_us"] / 1e6,
        handed_per_thread=[int(n) for n in stats["handed_per_thread"]],
        exhausted=bool(stats["exhausted"]),
        quantiles_us=[float(q) for q in stats["quantiles_us"]],
        errors=stats["errors"],
    )


class Server:
    """One app under gunicorn, with its warm-up and measured runs."""

    def __init__(self, name: str, app: str, env: dict[str, str], settings: Sequence[str]):
        self.name = name
        self.port = free_port()
        self.process = Process(
            f"gunicorn-{name}",
            [
                str(BIN / "gunicorn"),
                *settings,
                "--bind",
                f"127.0.0.1:{self.port}",
                "--backlog",
                "2048",
                app,
            ],
            env,
        )
        self.warmup = Measurement(f"{name} warm-up")
        self.measured = Measurement(name)

    def start(self) -> Server:
        self.process.start()
        self.process.wait_for_port(self.port)
        return self

    def run(self, requests: RequestFile, seconds: int, *, warmup: bool, wrap: bool) -> None:
        measurement = self.warmup if warmup else self.measured
        offsets = measurement.handed_per_thread if measurement.slices else [0] * WRK_THREADS
        name = f"{self.name}-{'warmup' if warmup else 'run'}-{len(measurement.slices) + 1}"
        measurement.slices.append(
            run_wrk(name, self.port, requests, seconds, wrap=wrap, offsets=offsets)
        )


def settle(sql: str | None, *, quiet: float = 1.0, timeout: float = 30.0) -> None:
    """Wait until a count stops moving: the server finishes what was in flight when wrk ended.

    Also checkpoints PostgreSQL, so no run pays for the previous run's dirty pages.
    """
    if sql is not None:
        deadline = time.monotonic() + timeout
        last = scalar(sql)
        while time.monotonic() < deadline:
            time.sleep(quiet)
            now = scalar(sql)
            if now == last:
                break
            last = now
    with pg_connect() as conn:
        conn.execute("CHECKPOINT")


def verify_engage(sent: set[str], order: dict[str, int]) -> list[tuple[str, bool, str]]:
    """Every message stored exactly once and in its contact's order, with its replies queued."""
    with pg_connect() as conn:
        inbound = conn.execute(
            "SELECT sid, contact_id FROM messages WHERE direction = 'in' ORDER BY created_at, id"
        ).fetchall()
        # Free text outside any survey gets one nudge a day (docs/conversation.md §7); a later one
        # gets none.
        without_reply, nudged_before = conn.execute(
            """
            SELECT count(*) FILTER (WHERE NOT nudged), count(*) FILTER (WHERE nudged)
            FROM (
                SELECT i.is_free_text AND i.conversation_id IS NULL AND EXISTS (
                    SELECT 1 FROM messages n
                    WHERE n.direction = 'out' AND n.contact_id = i.contact_id
                      AND n.kind = i.kind AND n.conversation_id IS NULL
                      AND n.created_at < i.created_at
                      AND n.created_at > i.created_at - interval '24 hours') AS nudged
                FROM messages i
                WHERE i.direction = 'in' AND NOT EXISTS (
                    SELECT 1 FROM messages o
                    WHERE o.direction = 'out' AND o.contact_id = i.contact_id
                      AND o.created_at = i.created_at)
            ) silent
            """
        ).fetchone()
        outbound = dict(
            conn.execute("SELECT id, status FROM messages WHERE direction = 'out'").fetchall()
        )
        answers = conn.execute("SELECT count(*) FROM answers").fetchone()[0]
        completed = conn.execute(
            "SELECT count(*) FROM conversations WHERE status = 'completed'"
        ).fetchone()[0]
        # A step advanced a survey when it started one, consented or answered in one.
        off_survey = conn.execute(
            """
            SELECT count(*) FROM messages
            WHERE direction = 'in' AND (conversation_id IS NULL
                OR kind NOT IN ('keyword', 'consent', 'answer', 'skip'))
            """
        ).fetchone()[0]
    # No worker runs during the benchmark: the replies wait, and a job is queued to send them
    # (one per minute at most: the wake-up expires after REPLY_SENDER_WAKE_TTL).
    queued = redis_client().lrange("rq:queue:replies", 0, -1)
    stored = [sid for sid, _ in inbound]
    unique = set(stored)
    # Steps ran in the order each contact sent: their times follow the file's order per contact.
    last_seen: dict[int, int] = {}
    out_of_order = 0
    for sid, contact_id in inbound:
        position = order.get(sid, -1)
        if position < last_seen.get(contact_id, -1):
            out_of_order += 1
        last_seen[contact_id] = max(position, last_seen.get(contact_id, -1))
    pending = sum(1 for status in outbound.values() if status == "pending")
    return [
        (
            "inbound rows = requests sent",
            len(stored) == len(sent) and unique == sent,
            f"{len(stored)} rows for {len(sent)} requests sent; "
            f"{len(sent - unique)} missing, {len(unique - sent)} unexpected",
        ),
        ("no duplicate inbound", len(stored) == len(unique), f"{len(stored) - len(unique)} dupes"),
        (
            "each contact's steps in the order sent",
            out_of_order == 0,
            f"{out_of_order} steps ran before an earlier message of the same contact",
        ),
        (
            "every inbound has its replies",
            without_reply == 0,
            f"{without_reply} inbound without an outbound row ({nudged_before} free texts "
            f"outside a survey left unanswered, nudged within 24 h); {len(outbound)} outbound "
            f"rows, {answers} answers, {completed} surveys completed",
        ),
        (
            "at least 95 % of the steps advanced a survey (the traffic of a campaign)",
            off_survey <= 0.05 * len(stored),
            f"{off_survey} of {len(stored)} steps did not advance a survey"
            " (more contacts, --contacts, keep the traffic representative)",
        ),
        (
            "every reply pending, with a job (one a minute at most) queued on `replies`",
            1 <= len(queued) <= 5 and pending == len(outbound),
            f"{len(queued)} job(s) for {len(outbound)} outbound rows ({pending} pending)",
        ),
    ]


def run(
    *,
    seconds: int = 30,
    slices: int = 3,
    warmup_seconds: int = 5,
    contacts: int = 1600,
    rounds: int = 30,
    settings: Sequence[str] = GUNICORN_ARGS,
) -> list[Target]:
    """Measure A, then B and Engage in alternating slices; print the figures; return targets."""
    from bench.ceiling_app import create_table
    from engage.config import database_url

    OUT.mkdir(parents=True, exist_ok=True)
    log("webhook: fresh database, signing requests")
    fresh_engage()
    create_table(database_url(DATABASE_URL))
    warmup = write_requests(
        OUT / "requests-warmup.txt",
        contacts=WARMUP_CONTACTS,
        rounds=len(SURVEY_TEXTS),
        first_contact=WARMUP_CONTACT_OFFSET,
    )
    measured = write_requests(
        OUT / "requests.txt", contacts=contacts, rounds=rounds, first_contact=0
    )
    ceiling_env = {**engage_env(), "BENCH_DATABASE_URL": database_url(DATABASE_URL)}
    slice_seconds = max(1, round(seconds / slices))

    a = Server("A", "bench.ceiling_app:make_bare()", ceiling_env, settings).start()
    try:
        log(f"webhook A: warm-up {warmup_seconds} s, then {slice_seconds} s")
        a.run(warmup, warmup_seconds, warmup=True, wrap=True)
        settle(None)
        a.run(measured, slice_seconds, warmup=False, wrap=True)
    finally:
        a.process.stop()

    b = Server("B", "bench.ceiling_app:make_checked()", ceiling_env, settings)
    engage = Server("Engage", "wsgi:app", engage_env(), settings)
    counts = {b: B_COUNT, engage: ENGAGE_COUNT}
    try:
        for server in (b, engage):
            server.start()
            log(f"webhook {server.name}: warm-up {warmup_seconds} s")
            server.run(warmup, warmup_seconds, warmup=True, wrap=False)
            settle(counts[server])
        order = [(b, engage), (engage, b)] * slices
        for number, (first, second) in enumerate(order[:slices]):
            for server in (first, second):
                log(f"webhook {server.name}: slice {number + 1}/{slices}, {slice_seconds} s")
                server.run(measured, slice_seconds, warmup=False, wrap=False)
                settle(counts[server])
    finally:
        b.process.stop()
        engage.process.stop()

    order = {sid: i for i, sid in enumerate(warmup.sids + measured.sids)}
    checks = verify_engage(
        warmup.sent(engage.warmup.handed_per_thread)
        | measured.sent(engage.measured.handed_per_thread),
        order,
    )
    b_sent = len(warmup.sent(b.warmup.handed_per_thread)) + len(
        measured.sent(b.measured.handed_per_thread)
    )
    b_rows = scalar(B_COUNT)
    return report(a.measured, b.measured, engage.measured, checks, settings, slice_seconds) + [
        Target(
            "webhook: B stored every request",
            b_rows == b_sent,
            f"{b_rows} rows for {b_sent} requests sent",
        )
    ]


def report(
    a: Measurement,
    b: Measurement,
    engage: Measurement,
    checks: list[tuple[str, bool, str]],
    settings: Sequence[str],
    slice_seconds: int,
) -> list[Target]:
    b_p99, engage_p99 = b.percentile_ms(99), engage.percentile_ms(99)
    print_table(
        f"Webhook: POST {PATH}, gunicorn {' '.join(settings)}, {CONNECTIONS} connections, "
        f"wrk -t{WRK_THREADS}; A {slice_seconds} s, B and Engage {len(b.slices)} alternating "
        f"slices of {slice_seconds} s",
        ["server", "req/s", "p50 ms", "p99 ms", "req/s / B", "p99 / B", "slice spread", "errors"],
        [
            (
                m.server,
                f"{m.rps:,.0f}",
                f"{m.percentile_ms(50):.1f}",
                f"{m.percentile_ms(99):.1f}",
                f"{m.rps / b.rps:.2f}",
                f"{m.percentile_ms(99) / b_p99:.2f}",
                f"{m.spread:.0%}" if len(m.slices) > 1 else "",
                m.errors["status"] + m.socket_errors,
            )
            for m in (a, b, engage)
        ],
    )
    print(
        f"  Engage / A: {engage.rps / a.rps:.2f}. Slice spread = (fastest - slowest slice) / mean; "
        "above ~20% the machine was noisy."
    )
    for name, passed, detail in checks:
        print(f"  {'ok ' if passed else 'BAD'} {name}: {detail}")
    return [
        *(
            Target(
                f"webhook run {m.server}: valid",
                not m.exhausted and m.socket_errors == 0 and m.errors["status"] == 0,
                f"request file exhausted={m.exhausted}, socket errors={m.socket_errors}, "
                f"non-2xx={m.errors['status']}",
            )
            for m in (a, b, engage)
        ),
        Target(
            f"webhook ({settings[1]}) throughput >= {TARGET_SHARE_OF_B:.0%} of B",
            engage.rps >= TARGET_SHARE_OF_B * b.rps,
            f"{engage.rps:,.0f} vs {b.rps:,.0f} req/s = {engage.rps / b.rps:.2f}",
        ),
        Target(
            f"webhook ({settings[1]}) p99 <= 2x B's p99",
            engage_p99 <= 2 * b_p99,
            f"{engage_p99:.1f} vs {b_p99:.1f} ms = {engage_p99 / b_p99:.2f}x",
        ),
        Target(
            "webhook: every message stored once with its replies",
            all(passed for _, passed, _ in checks),
            "; ".join(detail for _, passed, detail in checks if not passed) or "all checks pass",
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=30, help="measured seconds per server")
    parser.add_argument("--slices", type=int, default=3, help="alternating slices of B/Engage")
    parser.add_argument("--contacts", type=int, default=1600)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument(
        "--gunicorn", default=" ".join(GUNICORN_ARGS), help="worker settings for all servers"
    )
    args = parser.parse_args()
    targets = run(
        seconds=args.seconds,
        slices=args.slices,
        contacts=args.contacts,
        rounds=args.rounds,
        settings=args.gunicorn.split(),
    )
    for target in targets:
        print(f"{'PASS' if target.passed else 'FAIL'} {target.name}: {target.detail}")


if __name__ == "__main__":
    main()
