"""Apps on SQLite and PostgreSQL, a CLI runner, and the surveys the tests talk to."""

from __future__ import annotations

import functools
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner
from flask import Flask
from flask.cli import ScriptInfo
from sqlalchemy import text

from engage import create_app, db
from engage.cli import main
from engage.db import make_engine
from engage.migrations import upgrade
from engage.services.surveys import publish_surveys
from engage.survey.definition import Survey
from engage.survey.loader import Problem, find_survey_files, load_surveys

# Test helpers (fake_twilio, twilio_helpers) are plain modules beside this file.
sys.path.insert(0, str(Path(__file__).resolve().parent))

from fake_twilio import FakeTwilio  # noqa: E402
from twilio_helpers import twilio_overrides  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SHIPPED_SURVEYS = ROOT / "surveys"
TEST_SURVEYS = Path(__file__).resolve().parent / "surveys"
PG_SERVER = os.environ.get("ENGAGE_TEST_PG", "postgresql://postgres@127.0.0.1:5432")
PG_DATABASE = os.environ.get("ENGAGE_TEST_PG_DATABASE", "engage_test")


def _reset_pg_database() -> str:
    with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {PG_DATABASE} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {PG_DATABASE}")
    return f"{PG_SERVER}/{PG_DATABASE}"


@pytest.fixture(scope="session")
def pg_url() -> str:
    """A fresh PostgreSQL database for this run, migrated once."""
    url = _reset_pg_database()
    from engage.config import database_url
    from engage.db import make_engine

    engine = make_engine(database_url(url))
    upgrade(engine)
    engine.dispose()
    return url


def make_app(
    tmp_path: Path, database: str, pg_url: str | None = None, *, prepare: bool = True, **overrides
) -> Flask:
    """An app on a test database; `prepare` migrates (SQLite) or empties (PostgreSQL) it."""
    if database == "sqlite":
        path = tmp_path / "engage.db"
        url = f"sqlite:///{path}"
        if prepare and not path.exists():
            # A copy of a database migrated once per run: every test starts from the schema
            # the migrations make, without running them again (test_migrations.py runs them).
            shutil.copyfile(_migrated_sqlite(), path)
    else:
        assert pg_url is not None
        url = pg_url
    app = create_app(
        {
            "ENGAGE_ENV": "development",
            "INSTANCE_PATH": str(tmp_path / "instance"),
            "DATABASE_URL": url,
            "ENGAGE_ORG_NAME": "Centro Campesino",
            **overrides,
        }
    )
    if not prepare:
        return app
    with app.app_context():
        if database == "sqlite":
            upgrade(db.engine())
        else:
            with db.engine().begin() as conn:
                tables = ", ".join(t.name for t in reversed(db.Base.metadata.sorted_tables))
                conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    return app


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request) -> str:
    return request.param


@pytest.fixture
def app(request, tmp_path: Path, database: str) -> Iterator[Flask]:
    pg = request.getfixturevalue("pg_url") if database == "postgresql" else None
    app = make_app(tmp_path, database, pg)
    with app.app_context():
        publish(app, [SHIPPED_SURVEYS, TEST_SURVEYS])
    yield app
    db_engine = app.extensions["engage.engine"]
    db_engine.dispose()


WEB_PASSWORD = "correct horse battery staple"


@pytest.fixture
def web_app(app: Flask) -> Flask:
    """The app with CSRF checked, and one account per role: admin@, staff@, policy@example.org."""
    from engage.services.accounts import create_user

    app.config["WTF_CSRF_ENABLED"] = True
    with app.app_context(), db.transaction() as session:
        for role in ("admin", "staff", "policy"):
            create_user(session, f"{role}@example.org", WEB_PASSWORD, role)
    return app


@functools.cache
def _migrated_sqlite() -> Path:
    """An SQLite database migrated to the head revision, made once per test process."""
    path = Path(tempfile.mkdtemp(prefix="engage-schema-")) / "engage.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()
    return path


@functools.cache
def _checked_surveys(files: tuple[tuple[Path, int], ...]) -> tuple[list[Survey], list[Problem]]:
    """Survey files read and checked once per test process (and again if one changes)."""
    return load_surveys([path for path, _mtime in files])


def publish(app: Flask, directories: list[Path]) -> None:
    files = [f for d in directories for f in find_survey_files(d)]
    surveys, problems = _checked_surveys(tuple((f, f.stat().st_mtime_ns) for f in files))
    assert not [p for p in problems if not p.is_warning], problems
    with app.app_context(), db.transaction() as session:
        publish_surveys(session, surveys)


class Worker:
    """A worker texting Engage through `engage simulate`, as a person at a phone would."""

    def __init__(self, app: Flask, phone: str, channel: str = "sms") -> None:
        self.app = app
        self.phone = phone
        self.channel = channel
        self.runner = CliRunner()

    def send(self, text: str) -> str:
        """Send one text; returns what `engage simulate` printed (the replies)."""
        args = ["simulate", self.phone, text, "--channel", self.channel]
        result = self.runner.invoke(main, args, obj=ScriptInfo(create_app=lambda: self.app))
        assert result.exit_code == 0, result.output + repr(result.exception)
        return result.stdout.rstrip("\n")

    def script(self, *texts: str) -> list[str]:
        return [self.send(t) for t in texts]


@pytest.fixture
def worker(app: Flask):
    def make(phone: str = "+15551230001", channel: str = "sms") -> Worker:
        return Worker(app, phone, channel)

    return make


@pytest.fixture
def fake_twilio() -> Iterator[FakeTwilio]:
    """A fresh fake Twilio on a free port of 127.0.0.1, stopped after the test."""
    with FakeTwilio() as fake:
        yield fake


REDIS_TEST_URL = os.environ.get("ENGAGE_TEST_REDIS", "redis://127.0.0.1:6379/14")


@pytest.fixture
def redis_url() -> Iterator[str]:
    """A Redis database of the tests' own, emptied before and after each test."""
    import redis

    connection = redis.Redis.from_url(REDIS_TEST_URL)
    connection.flushdb()
    yield REDIS_TEST_URL
    connection.flushdb()
    connection.close()


@pytest.fixture
def twilio_app(request, tmp_path: Path, database: str, fake_twilio):
    """Build apps wired to the fake Twilio (credentials, public URL, API URL), surveys loaded."""
    built = []

    def build(*, prepare: bool = True, **extra) -> Flask:
        pg = request.getfixturevalue("pg_url") if database == "postgresql" else None
        app = make_app(
            tmp_path,
            database,
            pg,
            prepare=prepare,
            **twilio_overrides(fake_twilio, tmp_path, **extra),
        )
        if prepare:
            with app.app_context():
                publish(app, [SHIPPED_SURVEYS, TEST_SURVEYS])
        built.append(app)
        return app

    yield build
    for app in built:
        app.extensions["engage.engine"].dispose()


VOICE_SURVEYS = Path(__file__).resolve().parent / "voice"


@pytest.fixture
def voice_app(request, tmp_path: Path, database: str, fake_twilio):
    """An app wired to the fake Twilio with one survey offered by phone (tests/voice/)."""
    pg = request.getfixturevalue("pg_url") if database == "postgresql" else None
    app = make_app(tmp_path, database, pg, **twilio_overrides(fake_twilio, tmp_path))
    publish(app, [VOICE_SURVEYS])
    yield app
    app.extensions["engage.engine"].dispose()


class Clock:
    """The app's clock, moved by the test instead of sleeping."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock(request, web_app: Flask) -> Clock:
    """The app's clock, starting at the test module's START."""
    clock = Clock(request.module.START)
    web_app.extensions["engage.clock"] = clock
    return clock


# -- browser tests (tests/browser.py) -------------------------------------------------------------


@pytest.fixture
def live_server(request) -> Iterator[str]:
    """The test's `app` (its module's own, where it has one) served for a browser."""
    from tests.browser import serve

    with serve(request.getfixturevalue("app")) as url:
        yield url


@pytest.fixture
def browser(tmp_path: Path):
    from tests.browser import start_chromium

    driver = start_chromium(tmp_path / "profile", tmp_path / "downloads")
    yield driver
    driver.quit()


@pytest.fixture
def browsers(tmp_path: Path):
    """Start browsers that share nothing (each its own profile), quit after the test."""
    from tests.browser import start_chromium

    started: list = []

    def start():
        n = len(started)
        driver = start_chromium(tmp_path / f"profile-{n}", tmp_path / f"downloads-{n}")
        started.append(driver)
        return driver

    yield start
    for driver in started:
        driver.quit()
