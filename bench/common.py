"""What the benchmarks share: settings, a fresh database and Redis, child processes, targets."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import psycopg
import redis
from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parent.parent
# BENCH_VENV: another virtualenv with the project installed (default: the project's .venv).
BIN = Path(os.environ.get("BENCH_VENV") or ROOT / ".venv").resolve() / "bin"
PYTHON = str(BIN / "python")
OUT = Path(os.environ.get("BENCH_OUT") or ROOT / "bench" / "out")

PG_SERVER = os.environ.get("BENCH_PG_SERVER", "postgresql://postgres@127.0.0.1:5432")
DB_NAME = os.environ.get("BENCH_DB_NAME", "engage_bench")
DATABASE_URL = f"{PG_SERVER}/{DB_NAME}"
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")
PUBLIC_URL = "https://engage.example.org"  # what Twilio "called": every request is signed over it
OUR_NUMBER = "+15005550006"
SECRET_KEY = "bench-secret-key-not-for-production"
# One PII key per run, shared by this process and every child it starts.
PII_KEY = Fernet.generate_key().decode()

# The fake Twilio's credentials (tests/fake_twilio.py): the webhook is signed with its token.
sys.path.insert(0, str(ROOT / "tests"))
from fake_twilio import ACCOUNT_SID, AUTH_TOKEN  # noqa: E402

# States the shipped survey offers, with the zone quiet hours would use for each.
STATES = ("FL", "CA", "GA", "WA", "NC", "NY", "MI", "LA", "KY", "TX", "AZ")
LANGUAGES = ("es", "es", "en", "ht")


def log(message: str) -> None:
    """Progress on stderr, so stdout carries only the figures."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def engage_env(**extra: str) -> dict[str, str]:
    """The environment of an Engage process: development mode, but with every credential set.

    Development accepts an http:// ENGAGE_TWILIO_API_URL (production insists on https), and with
    DATABASE_URL and REDIS_URL set it uses PostgreSQL and RQ exactly as production does.
    """
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("ENGAGE_", "TWILIO_")) and k not in ("DATABASE_URL", "REDIS_URL")
    }
    env.update(
        {
            "ENGAGE_ENV": "development",
            "ENGAGE_SECRET_KEY": SECRET_KEY,
            "ENGAGE_PII_KEY": PII_KEY,
            "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
            "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
            "TWILIO_SMS_FROM": OUR_NUMBER,
            "ENGAGE_PUBLIC_URL": PUBLIC_URL,
            "DATABASE_URL": DATABASE_URL,
            "REDIS_URL": REDIS_URL,
            "ENGAGE_INSTANCE_PATH": str(OUT / "instance"),
            "ENGAGE_SPOOL_DIR": str(OUT / "instance" / "spool"),
            "ENGAGE_SURVEYS_DIR": str(ROOT / "surveys"),
            "ENGAGE_SEND_RATE": "0",
        }
    )
    env.update(extra)
    return env


# -- a fresh database and Redis ---------------------------------------------------------------


def reset_database() -> None:
    """Drop and create the bench database (nothing else on the server is touched)."""
    with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {DB_NAME}")


def redis_client() -> redis.Redis:
    return redis.Redis.from_url(REDIS_URL)


def fresh_engage() -> None:
    """An empty database migrated with `engage db upgrade`, surveys loaded, Redis db flushed."""
    reset_database()
    redis_client().flushdb()
    env = engage_env()
    for argv in (["db", "upgrade"], ["surveys", "load"]):
        run_checked([str(BIN / "engage"), *argv], env=env, timeout=120)


def run_checked(argv: Sequence[str], *, env: Mapping[str, str], timeout: float) -> str:
    """Run a command to completion; its output, or an error naming it."""
    result = subprocess.run(
        argv, cwd=ROOT, env=dict(env), capture_output=True, text=True, timeout=timeout
    )
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout


def pg_connect() -> psycopg.Connection:
    return psycopg.connect(DATABASE_URL, autocommit=True)


def scalar(sql: str, params: Sequence[Any] = ()) -> Any:
    with pg_connect() as conn:
        row = conn.execute(sql, params).fetchone()
    return row[0] if row else None


# -- contacts, fast ---------------------------------------------------------------------------


def contact_phone(index: int) -> str:
    """Distinct US numbers (area code 209, California's Central Valley)."""
    return f"+1209{5_000_000 + index:07d}"


def insert_contacts(first: int, count: int) -> float:
    """COPY `count` contacts with encrypted phones (engage.privacy.Vault); returns seconds taken.

    Profiles carry a state (and so a time zone) and a language; every second contact has consented.
    """
    from engage.privacy import Vault
    from engage.services.quiet_hours import STATE_TIMEZONES

    vault = Vault(PII_KEY)
    now = datetime.now(UTC)
    columns = (
        "phone_hash, phone_encrypted, key_encrypted, language, has_consented, consent_source, "
        "is_opted_out, is_menu_open, is_simulated, profile, profile_updated_at, timezone, "
        "record_key, created_at, updated_at"
    )
    started = time.perf_counter()
    with pg_connect() as conn, conn.cursor() as cursor:
        with cursor.copy(f"COPY contacts ({columns}) FROM STDIN") as copy:
            for index in range(first, first + count):
                phone = contact_phone(index)
                state = STATES[index % len(STATES)]
                # The number under the contact's own key, as the app stores it.
                key_encrypted, cipher = vault.new_contact_key()
                copy.write_row(
                    (
                        vault.phone_hash(phone),
                        cipher.encrypt(phone),
                        key_encrypted,
                        LANGUAGES[index % len(LANGUAGES)],
                        index % 2 == 0,
                        "bench import",
                        False,
                        False,
                        False,
                        json.dumps({"state": state}),
                        json.dumps({}),
                        STATE_TIMEZONES[state],
                        index % 256,  # the record key (no default in the table)
                        now,
                        now,
                    )
                )
    return time.perf_counter() - started


# -- child processes --------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Process:
    """A child in its own process group, with its output in a log file; stopped by its id."""

    def __init__(self, name: str, argv: Sequence[str], env: Mapping[str, str]) -> None:
        self.name = name
        self.argv = list(argv)
        self.env = dict(env)
        self.log_path = OUT / f"{name}.log"
        self.popen: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self.started_at = 0.0

    def start(self) -> Process:
        OUT.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("wb")
        self.started_at = time.perf_counter()
        self.popen = subprocess.Popen(
            self.argv,
            cwd=ROOT,
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return self

    def wait_for_port(self, port: int, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.popen is not None and self.popen.poll() is not None:
                raise RuntimeError(f"{self.name} exited early; see {self.log_path}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"{self.name} did not listen on {port} within {timeout:g} s")

    def wait(self, timeout: float) -> int:
        """Wait for the process to end by itself; stop it and fail after `timeout` seconds."""
        assert self.popen is not None
        try:
            return self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            raise RuntimeError(f"{self.name} still running after {timeout:g} s") from None
        finally:
            self._close_log()

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM to this child's own process group, SIGKILL if it lingers."""
        if self.popen is None or self.popen.poll() is not None:
            self._close_log()
            return
        os.killpg(self.popen.pid, signal.SIGTERM)
        try:
            self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(timeout=timeout)
        self._close_log()

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> Process:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


class FakeTwilioProcess(Process):
    """The tests' fake Twilio, standalone; writes what it received to a JSON file when stopped."""

    def __init__(self, name: str) -> None:
        self.port = free_port()
        self.record_path = OUT / f"{name}.json"
        super().__init__(
            name,
            [
                PYTHON,
                str(ROOT / "bench" / "fake_twilio_server.py"),
                "--port",
                str(self.port),
                "--record",
                str(self.record_path),
            ],
            os.environ,
        )

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FakeTwilioProcess:
        super().start()
        self.wait_for_port(self.port)
        return self

    def record(self) -> dict[str, Any]:
        """What it received, once stopped."""
        self.stop()
        return json.loads(self.record_path.read_text())


def idle_share(seconds: float = 2.0) -> float:
    """The share of CPU time the machine left idle over `seconds` (/proc/stat), from 0 to 1."""

    def sample() -> tuple[int, int]:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
        return fields[3] + fields[4], sum(fields)  # idle + iowait, total

    idle_before, total_before = sample()
    time.sleep(seconds)
    idle_after, total_after = sample()
    return (idle_after - idle_before) / max(1, total_after - total_before)


# -- figures and targets ----------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """One pass/fail line of the final summary."""

    name: str
    passed: bool
    detail: str


def percent(part: float, whole: float) -> str:
    return f"{100 * part / whole:.0f}%" if whole else "n/a"


def print_table(title: str, header: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
    rows = [[str(cell) for cell in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    print(f"\n{title}")
    print("  " + "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    for row in rows:
        print("  " + "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))
    sys.stdout.flush()
