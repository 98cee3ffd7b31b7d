"""Benchmark: the policy team's results download against the bare GROUP BY, on 1,000,000 answers.

    .venv/bin/python bench/results_bench.py [--answers 1000000] [--databases postgresql,sqlite]

Per database, in the same run and on the same synthetic data (made here, nothing simulated):
- ceiling: the bare GROUP BY query (question, state from the profile JSON, value) fetched to
  Python and written to CSV with the csv module;
- Engage, first download: with no snapshot yet, `build_report(session, survey_id, ["state"],
  rule=Rule(min_cell=11, round_base=5, min_percent_base=30))` takes the survey's snapshot (its
  GROUP BY queries), the session commits it as a download does, and `iter_aggregate_csv` writes
  the breakdown by state under disclosure control;
- Engage from the snapshot: the same download again, reading the snapshot the first one took:
  every download but a survey's very first (the clock takes the daily snapshots, off the
  downloads: the first download's figure is also what the clock's round costs per survey).
Each measurement runs in a fresh subprocess (timed after imports and the first connection; the
first download's subprocess deletes the survey's snapshots before its timer starts); its peak
memory is that process's peak RSS (VmHWM: see `peak_rss`), imports included. One warm-up run
of each step, then 3 runs of each, interleaved; the medians are compared.

Targets, on the download from the snapshot (what the policy team waits for): Engage/ceiling
<= 2.0; and peak RSS < 300 MB for both downloads. The exit status is 1 if one is missed, or if
the two downloads' CSVs differ (from each other, or between the databases) in anything but the
snapshot's id and time. The first download's ratio (the snapshot's cost) is printed, not a
target.
After the table, one more first download per database (not counted) is timed statement by
statement. Figures of the last runs, and where the first download's time goes: bench/RESULTS.md.

The data: respondents answer a survey written by this script (a `state` profile question with
13 states, then choice questions with 6 choices each, in 4 languages) the way the engine writes
rows: one conversation each (some decline, some stop half-way, some of those start again later),
skips and misses included. With the default 9 choice questions, 1,000,000 answers are about
100,000 respondents; `--choice-questions 1` gives the two-question shape (about 500,000).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import random
import resource
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import Engine, event, func, select, text
from sqlalchemy import delete as delete_rows
from sqlalchemy.orm import Session

from engage.db import make_engine
from engage.migrations import upgrade
from engage.models import Answer, ResultSnapshot
from engage.results.disclosure import KEY_RANGE, Rule
from engage.results.writers import iter_aggregate_csv
from engage.services.quiet_hours import STATE_TIMEZONES
from engage.services.results import build_report
from engage.services.surveys import publish_surveys
from engage.survey.definition import Survey
from engage.survey.loader import load_survey_file

ROOT = Path(__file__).resolve().parent.parent
PG_SERVER = os.environ.get("BENCH_PG_SERVER", "postgresql://postgres@127.0.0.1:5432")
PG_DATABASE = os.environ.get("BENCH_PG_DATABASE", "engage_bench_results")
SURVEY_ID = "bench-results"

MAX_RATIO = 2.0
MAX_PEAK_MB = 300  # 10**6 bytes
RULE = Rule(min_cell=11, round_base=5, min_percent_base=30)
STEPS = ("ceiling", "first", "snapshot")
ENGAGE_STEPS = ("first", "snapshot")
STEP_NAMES = {
    "ceiling": "bare GROUP BY query -> CSV",
    "first": "Engage first download, takes snapshot",
    "snapshot": "Engage download from the snapshot",
}

# 13 states, as unequal as real sign-ups: the smallest few make cells that must be hidden.
STATES = {
    "FL": 21, "CA": 18, "GA": 10, "WA": 9, "NC": 9, "NY": 7, "MI": 6,
    "LA": 5, "KY": 4, "TX": 4, "AZ": 3, "OR": 0.2, "other": 3.8,
}  # fmt: skip
STATE_LABELS = {
    "FL": ("Florida", "Florida", "Florid"),
    "CA": ("California", "California", "Kalifoni"),
    "GA": ("Georgia", "Georgia", "Joji"),
    "WA": ("Washington", "Washington", "Washington"),
    "NC": ("Carolina del Norte", "North Carolina", "Kawolin di No"),
    "NY": ("Nueva York", "New York", "Nouyok"),
    "MI": ("Michigan", "Michigan", "Michigan"),
    "LA": ("Luisiana", "Louisiana", "Lwizyan"),
    "KY": ("Kentucky", "Kentucky", "Kentoki"),
    "TX": ("Texas", "Texas", "Teksas"),
    "AZ": ("Arizona", "Arizona", "Arizona"),
    "OR": ("Oregon", "Oregon", "Oregon"),
    "other": ("Otro", "Other", "Lot"),
}
# Survey languages (the first is the default) and how many speak each.
LANGUAGES = {"es": 60, "en": 20, "ht": 14, "mix": 6}
# Six choices, the same for every choice question: (value, es, en, ht).
CHOICES = (
    ("never", "Nunca", "Never", "Janm"),
    ("rarely", "Casi nunca", "Rarely", "Raman"),
    ("sometimes", "A veces", "Sometimes", "Pafwa"),
    ("often", "Seguido", "Often", "Souvan"),
    ("always", "Siempre", "Always", "Toujou"),
    ("unsure", "No se", "Not sure", "Mwen pa konnen"),
)
# (id, es, en, ht) of the choice questions, in order; more are numbered.
TOPICS = (
    ("paid_late", "¿Cada cuanto le pagan tarde?", "How often are you paid late?",
     "Konbyen fwa yo peye ou an reta?"),
    ("unpaid_hours", "¿Cada cuanto trabaja horas sin pago?", "How often do you work unpaid hours?",
     "Konbyen fwa ou travay le san peye?"),
    ("crowded_housing", "¿Cada cuanto su vivienda esta llena de gente?",
     "How often is your housing crowded?", "Konbyen fwa kay ou a plen moun?"),
    ("no_water", "¿Cada cuanto falta agua en el campo?",
     "How often is there no water in the field?", "Konbyen fwa pa gen dlo nan jaden an?"),
    ("no_breaks", "¿Cada cuanto no tiene descansos?", "How often do you get no breaks?",
     "Konbyen fwa ou pa gen repo?"),
    ("pesticides", "¿Cada cuanto trabaja cerca de pesticidas?",
     "How often do you work near pesticides?", "Konbyen fwa ou travay bo pestisid?"),
    ("transport_fee", "¿Cada cuanto le cobran el transporte?",
     "How often are you charged for transport?", "Konbyen fwa yo fe ou peye transpo?"),
    ("threats", "¿Cada cuanto le amenazan en el trabajo?", "How often are you threatened at work?",
     "Konbyen fwa yo menase ou nan travay?"),
    ("documents_held", "¿Cada cuanto le guardan sus documentos?",
     "How often are your documents kept from you?", "Konbyen fwa yo kenbe papye ou?"),
)  # fmt: skip

ANSWER_COLUMNS = (
    "id", "conversation_id", "contact_id", "survey_id", "version", "question_id", "status",
    "value", "raw_text", "language", "profile", "is_simulated", "answered_at", "record_key",
    "is_latest",
)  # fmt: skip
CONVERSATION_COLUMNS = (
    "id", "contact_id", "survey_id", "version", "language", "channel", "status", "pending",
    "misses", "consent_tries", "is_invited", "is_simulated", "started_at", "last_activity_at",
    "ended_at", "last_question_id", "last_profile", "record_key",
)  # fmt: skip
CONTACT_COLUMNS = (
    "id", "phone_hash", "phone_encrypted", "language", "has_consented", "consented_at",
    "consent_source", "is_opted_out", "opted_out_at", "is_menu_open", "is_simulated", "profile",
    "profile_updated_at", "timezone", "created_at", "updated_at", "record_key",
)  # fmt: skip
BATCH_ANSWERS = 100_000  # rows per COPY / executemany round, flushed at a respondent's end


def log(message: str) -> None:
    """Progress on stderr: stdout carries the table."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# -- the survey --------------------------------------------------------------------------------


def choice_question_ids(count: int) -> list[str]:
    return [TOPICS[i][0] if i < len(TOPICS) else f"q{i + 1:02d}" for i in range(count)]


def write_survey(directory: Path, choice_questions: int) -> Survey:
    """Write the bench's survey file (JSON is YAML), load and check it like `surveys check`."""

    def texts(es: str, en: str, ht: str) -> dict[str, str]:
        # Mixteco has no written standard here: staff put the Spanish text, as they often do.
        return {"es": es, "en": en, "ht": ht, "mix": es}

    questions: list[dict[str, Any]] = [
        {
            "id": "state",
            "type": "choice",
            "profile": "state",
            "text": texts(
                "Elija el estado donde trabaja:",
                "Which state do you work in?",
                "Nan ki eta ou travay?",
            ),
            "choices": [{"value": value, "label": texts(*STATE_LABELS[value])} for value in STATES],
        }
    ]
    for index, question_id in enumerate(choice_question_ids(choice_questions)):
        if index < len(TOPICS):
            wording = texts(*TOPICS[index][1:])
        else:
            wording = texts(f"Pregunta {index + 1}", f"Question {index + 1}", f"Kesyon {index + 1}")
        questions.append(
            {
                "id": question_id,
                "type": "choice",
                "text": wording,
                "choices": [
                    {"value": value, "label": texts(es, en, ht)} for value, es, en, ht in CHOICES
                ],
            }
        )
    document = {
        "id": SURVEY_ID,
        "title": texts("Condiciones en el campo", "Conditions in the field", "Kondisyon jaden"),
        "languages": list(LANGUAGES),
        "keywords": {"es": ["CAMPO"], "en": ["FIELD"], "ht": ["JADEN"], "mix": ["ÑUU"]},
        "repeat": False,
        "questions": questions,
    }
    path = directory / f"{SURVEY_ID}.yaml"
    path.write_text(json.dumps(document, ensure_ascii=False, indent=2), encoding="utf-8")
    survey, problems = load_survey_file(path)
    if survey is None:
        raise SystemExit("the bench survey does not load:\n" + "\n".join(map(str, problems)))
    return survey


# -- synthetic data ----------------------------------------------------------------------------


@dataclass
class Batch:
    contacts: list[tuple[Any, ...]] = field(default_factory=list)
    conversations: list[tuple[Any, ...]] = field(default_factory=list)
    answers: list[tuple[Any, ...]] = field(default_factory=list)

    def tables(self) -> list[tuple[str, Sequence[str], list[tuple[Any, ...]]]]:
        """Parents first, so foreign keys hold row by row."""
        return [
            ("contacts", CONTACT_COLUMNS, self.contacts),
            ("conversations", CONVERSATION_COLUMNS, self.conversations),
            ("answers", ANSWER_COLUMNS, self.answers),
        ]


@dataclass
class Totals:
    respondents: int = 0
    contacts: int = 0
    conversations: int = 0
    answers: int = 0


class Generator:
    """Respondents answering the survey, as rows of contacts, conversations and answers.

    Shape: 5 % decline consent (a conversation, no answers); of the rest 85 % complete, the
    others stop after 1 to n-1 questions (abandoned, expired or opted out), and a quarter of
    those who did not opt out start again days later and complete. The state is answered by
    97 % (the rest skip it, so their rows have no state: the `_unknown` group); a choice
    question is skipped by 4 % and missed (three replies not understood) by 2 %. Answers lean
    differently per question and per state. Times spread over 60 days. Each contact has a
    record key from 0 to 255, copied onto its conversations and answers; the keys come from a
    generator of their own, so the rest of the data is what it was before record keys.
    """

    def __init__(self, survey: Survey, target_answers: int, seed: int) -> None:
        self.rng = random.Random(seed)
        self.key_rng = random.Random(f"{seed}-record-keys")
        self.survey = survey
        self.target = target_answers
        self.choice_ids = [q.id for q in survey.questions if q.id != "state"]
        self.states = list(STATES)
        self.state_cum = _cumulative(STATES.values())
        self.languages = list(LANGUAGES)
        self.language_cum = _cumulative(LANGUAGES.values())
        self.values = [c[0] for c in CHOICES]
        self.value_cum: dict[tuple[str, str], list[float]] = {}
        for question_id in self.choice_ids:
            lean = [self.rng.uniform(0.3, 3.0) for _ in CHOICES]
            for state in self.states:
                weights = [w * self.rng.uniform(0.6, 1.6) for w in lean]
                self.value_cum[(question_id, state)] = _cumulative(weights)
        self.totals = Totals()
        self.start = datetime(2025, 5, 5, 12, tzinfo=UTC)
        self.json_cache: dict[Any, str] = {}

    def as_json(self, key: str, value: Any) -> str:
        """{"v": value} and {"state": ...} serialised once per distinct value."""
        cached = self.json_cache.get((key, value))
        if cached is None:
            cached = json.dumps({key: value} if value is not None or key == "v" else {})
            self.json_cache[(key, value)] = cached
        return cached

    def batches(self) -> Iterator[Batch]:
        batch = Batch()
        while self.totals.answers < self.target:
            self.respondent(batch)
            if len(batch.answers) >= BATCH_ANSWERS:
                yield batch
                batch = Batch()
        if batch.contacts:
            yield batch

    def respondent(self, batch: Batch) -> None:
        rng, totals = self.rng, self.totals
        totals.respondents += 1
        totals.contacts += 1
        contact_id = totals.contacts
        record_key = self.key_rng.randrange(KEY_RANGE)
        state = rng.choices(self.states, cum_weights=self.state_cum)[0]
        language = rng.choices(self.languages, cum_weights=self.language_cum)[0]
        channel = "whatsapp" if rng.random() < 0.2 else "sms"
        invited = rng.random() < 0.6
        first_seen = self.start + timedelta(seconds=rng.uniform(0, 60 * 86400))
        known_state: str | None = None
        consented_at = opted_out_at = None
        moment = first_seen
        questions = ["state", *self.choice_ids]
        answers: list[tuple[Any, ...]] = []  # this respondent's rows, in the order written

        plans: list[tuple[str, int]] = []  # (status, how many questions reached)
        if rng.random() < 0.05:
            plans.append(("declined", 0))
        elif rng.random() < 0.85:
            plans.append(("completed", len(questions)))
        else:
            status = rng.choices(("abandoned", "expired", "opted_out"), (6, 3, 1))[0]
            plans.append((status, rng.randint(1, len(questions) - 1)))
            if status != "opted_out" and rng.random() < 0.25:
                plans.append(("completed", len(questions)))

        for number, (status, reached) in enumerate(plans):
            if number:
                moment += timedelta(days=rng.uniform(1, 10))
            totals.conversations += 1
            conversation_id = totals.conversations
            started_at = moment
            moment += timedelta(seconds=rng.uniform(20, 90))  # consent
            if status != "declined":
                consented_at = consented_at or moment
            remaining = self.target - totals.answers
            pending = None
            if reached > remaining:  # the last respondent: still answering
                status, reached, pending = "active", remaining, questions[remaining]
            for question_id in questions[:reached]:
                moment += timedelta(seconds=rng.uniform(15, 180))
                totals.answers += 1
                value, answer_status, raw_text = self.answer(question_id, state, known_state)
                if question_id == "state" and value is not None:
                    known_state = value
                answers.append(
                    (
                        totals.answers,
                        conversation_id,
                        contact_id,
                        self.survey.id,
                        self.survey.version,
                        question_id,
                        answer_status,
                        self.as_json("v", value),
                        raw_text,
                        language,
                        self.as_json("state", known_state),
                        False,
                        moment,
                        record_key,
                    )
                )
            if status == "opted_out":
                opted_out_at = moment
            ended_at = None if status == "active" else moment
            batch.conversations.append(
                (
                    conversation_id,
                    contact_id,
                    self.survey.id,
                    self.survey.version,
                    language,
                    channel,
                    status,
                    pending,
                    '{"texts": []}',
                    1,
                    invited and number == 0,
                    False,
                    started_at,
                    moment,
                    ended_at,
                    questions[reached - 1] if reached else None,
                    self.as_json("state", known_state) if reached else "{}",
                    record_key,
                )
            )
        # is_latest as the conversation service keeps it: only the row written last for a
        # question (the latest by answered_at and id) is the respondent's latest.
        last = {row[5]: index for index, row in enumerate(answers)}
        batch.answers.extend((*row, last[row[5]] == index) for index, row in enumerate(answers))
        batch.contacts.append(
            (
                contact_id,
                hashlib.sha256(f"bench-results-contact-{contact_id}".encode()).hexdigest(),
                "bench-placeholder-not-a-phone",
                language,
                consented_at is not None,
                consented_at,
                "partner-list-2025" if invited else None,
                opted_out_at is not None,
                opted_out_at,
                False,
                False,
                self.as_json("state", known_state),
                "{}",  # profile_updated_at: when each profile key was answered (not read here)
                STATE_TIMEZONES.get(known_state or ""),
                first_seen,
                moment,
                record_key,
            )
        )

    def answer(
        self, question_id: str, state: str, known_state: str | None
    ) -> tuple[str | None, str, str | None]:
        """(value, status, raw text) of one row."""
        draw = self.rng.random()
        if question_id == "state":
            if known_state is not None:  # asked before: the engine records it from the profile
                return known_state, "profile", None
            if draw < 0.97:
                return state, "answered", str(self.states.index(state) + 1)
            return None, "skipped", "SALTAR"
        if draw < 0.04:
            return None, "skipped", "SALTAR"
        if draw < 0.06:
            return None, "missed", "ok"
        value = self.rng.choices(self.values, cum_weights=self.value_cum[(question_id, state)])[0]
        return value, "answered", str(self.values.index(value) + 1)


def _cumulative(weights: Any) -> list[float]:
    total, result = 0.0, []
    for weight in weights:
        total += weight
        result.append(total)
    return result


# -- databases ---------------------------------------------------------------------------------


def prepare_postgresql(survey: Survey, answers: int, seed: int) -> tuple[str, Totals, float]:
    """A fresh database with the schema, the survey published and the data COPYed in."""
    with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {PG_DATABASE} WITH (FORCE)")
        admin.execute(f"CREATE DATABASE {PG_DATABASE}")
    url = f"{PG_SERVER}/{PG_DATABASE}".replace("postgresql://", "postgresql+psycopg://", 1)
    publish(url, survey)
    started = time.perf_counter()
    generator = Generator(survey, answers, seed)
    with psycopg.connect(f"{PG_SERVER}/{PG_DATABASE}") as conn:
        with conn.cursor() as cursor:
            for batch in generator.batches():
                for table, columns, rows in batch.tables():
                    sql = f"COPY {table} ({', '.join(columns)}) FROM STDIN"
                    with cursor.copy(sql) as copy:
                        for row in rows:
                            copy.write_row(row)
            for table in ("contacts", "conversations", "answers"):
                cursor.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), max(id)) FROM {table}"
                )
        conn.commit()
        # What autovacuum does within a minute of a bulk change: statistics and visibility map.
        conn.autocommit = True
        conn.execute("VACUUM ANALYZE")
    return url, generator.totals, time.perf_counter() - started


def prepare_sqlite(
    survey: Survey, answers: int, seed: int, directory: Path
) -> tuple[str, Totals, float]:
    """A fresh SQLite file with the schema, the survey published and the data inserted.

    Engage never runs ANALYZE on SQLite, so neither does this: the planner sees what it would
    see in production.
    """
    path = directory / "engage-results.sqlite"
    path.unlink(missing_ok=True)
    url = f"sqlite:///{path}"
    publish(url, survey)
    started = time.perf_counter()
    generator = Generator(survey, answers, seed)
    conn = sqlite3.connect(path, isolation_level=None)
    for pragma in (
        "synchronous=OFF",
        "foreign_keys=OFF",
        "cache_size=-262144",
        "temp_store=MEMORY",
    ):
        conn.execute(f"PRAGMA {pragma}")
    for batch in generator.batches():
        conn.execute("BEGIN")
        for table, columns, rows in batch.tables():
            marks = ", ".join("?" * len(columns))
            conn.executemany(
                f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})",
                (tuple(map(_sqlite_value, row)) for row in rows),
            )
        conn.execute("COMMIT")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return url, generator.totals, time.perf_counter() - started


def _sqlite_value(value: Any) -> Any:
    """As SQLAlchemy stores it on SQLite: UTC datetimes as text, booleans as 0/1."""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(value, bool):
        return int(value)
    return value


def publish(url: str, survey: Survey) -> None:
    engine = make_engine(url)
    upgrade(engine)
    with Session(engine) as session:
        publish_surveys(session, [survey])
        session.commit()
    engine.dispose()


# -- one measurement (in its own process) ------------------------------------------------------


def ceiling(session: Session, survey_id: str, output: Path) -> int:
    """The bare GROUP BY (question, state, value), fetched and written with the csv module."""
    state = Answer.profile["state"].as_string()
    value = Answer.value["v"].as_string()
    stmt = (
        select(Answer.question_id, state, value, func.count())
        .where(Answer.survey_id == survey_id, Answer.is_simulated.is_(False))
        .group_by(Answer.question_id, state, value)
    )
    rows = session.execute(stmt).all()
    with output.open("w", encoding="utf-8", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(["question_id", "state", "value", "count"])
        writer.writerows(rows)
    return len(rows)


def engage(session: Session, survey_id: str, output: Path) -> int:
    """Engage's download: the breakdown by state under disclosure control, as the aggregate CSV.

    Committed as the web and CLI downloads commit: reading it may have taken the snapshot.
    """
    report = build_report(session, survey_id, ["state"], rule=RULE)
    session.commit()
    with output.open("w", encoding="utf-8", newline="") as stream:
        for chunk in iter_aggregate_csv(report):
            stream.write(chunk)
    with output.open(encoding="utf-8-sig", newline="") as stream:
        return sum(1 for _ in csv.reader(stream)) - 1


def peak_rss() -> int:
    """This process's peak resident set size in bytes.

    VmHWM, the high-water mark of this process image. getrusage's ru_maxrss is not used for the
    target: Linux carries the parent's peak over fork and exec into it, so every child of a
    large parent would report at least the parent's size (it is kept as a cross-check).
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def count_snapshots(engine: Engine, survey_id: str, *, delete: bool = False) -> int:
    """The survey's snapshots (deleted first with `delete`: the next download takes one)."""
    with Session(engine) as session:
        if delete:
            session.execute(
                delete_rows(ResultSnapshot).where(ResultSnapshot.survey_id == survey_id)
            )
            session.commit()
        return session.scalar(select(func.count()).where(ResultSnapshot.survey_id == survey_id))


# What each statement of a download is, by a phrase of its SQL (the first that matches).
STATEMENT_LABELS = (
    ("insert into result_snapshots", "write the snapshot, then the report from it in Python"),
    ("result_snapshots", "read the newest snapshot"),
    ("for update", "lock the survey's versions"),
    ("survey_versions", "read the survey's versions"),
    ("count(distinct answers.contact_id)", "count respondents (new since the last snapshot; all)"),
    ("per_person", "GROUP BY: funnel (conversations per person, attributes)"),
    ("respondents", "GROUP BY: people (respondents by attributes)"),
    ("coalesce(conversations.last_question_id", "GROUP BY: stops"),
    ("jsonb_array_elements", "GROUP BY: multi options"),
    ("json_each", "GROUP BY: multi options"),
    ("latest", "GROUP BY: questions (latest answers by kind, value, attributes)"),
)


class StatementClock:
    """Wall time from each statement's start to the next's (its fetch and the Python reading
    it included), through SQLAlchemy's cursor events; the commit and the rest are their own."""

    def __init__(self, engine: Engine) -> None:
        self.segments: list[list[Any]] = []
        self.mark("before the first statement")
        event.listen(engine, "before_cursor_execute", self.before)
        event.listen(engine, "commit", lambda _conn: self.mark("commit, then the CSV"))

    def mark(self, label: str) -> None:
        self.segments.append([label, time.perf_counter()])

    def before(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        sql = " ".join(statement.lower().split())
        label = next((name for phrase, name in STATEMENT_LABELS if phrase in sql), sql[:60])
        self.mark(label)

    def figures(self, ended: float) -> list[list[Any]]:
        ends = [start for _label, start in self.segments[1:]] + [ended]
        return [
            [label, end - start] for (label, start), end in zip(self.segments, ends, strict=True)
        ]


def measure_once(
    step: str, url: str, survey_id: str, output: Path, *, profile: bool = False
) -> dict[str, Any]:
    """Time one step after imports and the first connection; report the process's peak RSS.

    With `profile`, also the time of each statement (StatementClock).
    """
    engine = make_engine(url)
    snapshots = count_snapshots(engine, survey_id, delete=step == "first")
    if step == "snapshot" and snapshots == 0:
        raise SystemExit("no snapshot to read: the first download runs before this step")
    # The session a download uses: on SQLite a deferred BEGIN, so it never takes the write lock.
    with Session(engine.execution_options(engage_deferred=True)) as session:
        session.execute(text("SELECT 1"))
        baseline = peak_rss()
        clock = StatementClock(engine) if profile else None
        started = time.perf_counter()
        rows = (ceiling if step == "ceiling" else engage)(session, survey_id, output)
        seconds = time.perf_counter() - started
        statements = clock.figures(started + seconds) if clock else []
    taken = count_snapshots(engine, survey_id) - snapshots
    if taken != (1 if step == "first" else 0):
        raise SystemExit(f"{step}: {taken} snapshot(s) taken")
    return {
        "step": step,
        "seconds": seconds,
        "baseline_mb": baseline / 1e6,
        "peak_mb": peak_rss() / 1e6,
        "ru_maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e6,
        "rows": rows,
        "bytes": output.stat().st_size,
        "statements": statements,
    }


def measure(step: str, url: str, output: Path, *, profile: bool = False) -> dict[str, Any]:
    argv = [sys.executable, __file__, "--measure", step, "--url", url, "--output", str(output)]
    argv += ["--profile"] if profile else []
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"measurement {step} failed:\n{done.stderr}")
    return json.loads(done.stdout)


def csv_digest(path: Path) -> str:
    """Of an aggregate CSV less its snapshot line (the snapshot's id and time differ by run)."""
    lines = path.read_bytes().splitlines(keepends=True)
    kept = [line for line in lines if not line.startswith(b"_rule,") or b",snapshot," not in line]
    assert len(kept) == len(lines) - 1, "one snapshot line in the CSV"
    return hashlib.sha256(b"".join(kept)).hexdigest()


@dataclass
class Outcome:
    database: str
    totals: Totals
    load_seconds: float
    runs: dict[str, list[dict[str, Any]]]
    # Of each Engage CSV: the same data must give the same file everywhere.
    engage_digests: dict[str, str]
    profiled: dict[str, Any]  # a first download timed statement by statement

    def median(self, step: str) -> float:
        return statistics.median(run["seconds"] for run in self.runs[step])

    def peak_mb(self, step: str) -> float:
        return max(run["peak_mb"] for run in self.runs[step])

    def ratio(self, step: str) -> float:
        return self.median(step) / self.median("ceiling")


def bench_database(
    database: str, survey: Survey, args: argparse.Namespace, directory: Path
) -> Outcome:
    log(f"{database}: creating the schema, publishing the survey, loading {args.answers:,} answers")
    if database == "postgresql":
        url, totals, load_seconds = prepare_postgresql(survey, args.answers, args.seed)
    else:
        url, totals, load_seconds = prepare_sqlite(survey, args.answers, args.seed, directory)
    log(
        f"{database}: loaded {totals.answers:,} answers, {totals.conversations:,} conversations, "
        f"{totals.contacts:,} contacts in {load_seconds:.1f} s"
    )
    runs: dict[str, list[dict[str, Any]]] = {step: [] for step in STEPS}
    for step in STEPS:
        warm = measure(step, url, directory / f"{database}-{step}-warmup.csv")
        log(f"{database}: warm-up {step}: {warm['seconds']:.3f} s")
    for number in range(1, args.runs + 1):
        for step in STEPS:
            run = measure(step, url, directory / f"{database}-{step}.csv")
            runs[step].append(run)
            log(
                f"{database}: run {number} {step}: {run['seconds']:.3f} s, "
                f"peak RSS {run['peak_mb']:.0f} MB, {run['rows']:,} CSV rows"
            )
    digests = {step: csv_digest(directory / f"{database}-{step}.csv") for step in ENGAGE_STEPS}
    # One more first download, not counted: where its time goes, statement by statement.
    profiled = measure("first", url, directory / f"{database}-profile.csv", profile=True)
    return Outcome(database, totals, load_seconds, runs, digests, profiled)


def print_table(outcomes: list[Outcome]) -> bool:
    """The figures, and whether every target is met."""
    ok = True
    header = (
        f"{'database':<11} {'step':<37} {'median s':>9}  {'runs s':<20} "
        f"{'peak RSS MB':>11} {'before MB':>9} {'CSV rows':>9}"
    )
    print(header)
    print("-" * len(header))
    for outcome in outcomes:
        for step in STEPS:
            runs = outcome.runs[step]
            seconds = " ".join(f"{run['seconds']:.3f}" for run in runs)
            print(
                f"{outcome.database:<11} {STEP_NAMES[step]:<37} {outcome.median(step):>9.3f}  "
                f"{seconds:<20} "
                f"{outcome.peak_mb(step):>11.0f} {runs[-1]['baseline_mb']:>9.0f} "
                f"{runs[-1]['rows']:>9,}"
            )
    print()
    for outcome in outcomes:
        ratio_ok = outcome.ratio("snapshot") <= MAX_RATIO
        peak = max(outcome.peak_mb("first"), outcome.peak_mb("snapshot"))
        memory_ok = peak < MAX_PEAK_MB
        ok = ok and ratio_ok and memory_ok
        print(
            f"{outcome.database:<11} download from the snapshot/ceiling "
            f"{outcome.ratio('snapshot'):5.2f} (target <= {MAX_RATIO}): "
            f"{'met' if ratio_ok else 'MISSED'};  peak RSS {peak:.0f} MB "
            f"(target < {MAX_PEAK_MB}): {'met' if memory_ok else 'MISSED'}"
        )
        print(
            f"{'':<11} first download, taking the snapshot (the clock's work)/ceiling "
            f"{outcome.ratio('first'):5.2f} (not a target)"
        )
    return ok


def print_profile(outcomes: list[Outcome]) -> None:
    """Where a first download's time goes, beside the ceiling's median."""
    for outcome in outcomes:
        profiled = outcome.profiled
        print(
            f"\n{outcome.database}: one first download timed by statement, "
            f"{profiled['seconds']:.3f} s in all (ceiling median {outcome.median('ceiling'):.3f} s)"
        )
        for label, seconds in profiled["statements"]:
            if seconds >= 0.001:
                print(f"  {seconds:8.3f} s  {label}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--answers", type=int, default=1_000_000)
    parser.add_argument("--databases", default="postgresql,sqlite")
    parser.add_argument("--choice-questions", type=int, default=len(TOPICS))
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=20250505)
    # One measurement in this process (what the benchmark runs in each subprocess).
    parser.add_argument("--measure", choices=STEPS, help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--output", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--profile", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.measure:
        figures = measure_once(args.measure, args.url, SURVEY_ID, args.output, profile=args.profile)
        print(json.dumps(figures))
        return 0

    databases = [name.strip() for name in args.databases.split(",") if name.strip()]
    unknown = set(databases) - {"postgresql", "sqlite"}
    if unknown or not databases:
        parser.error(f"--databases: postgresql and/or sqlite, not {', '.join(unknown)}")
    if args.choice_questions < 1:
        parser.error("--choice-questions must be at least 1")
    started = time.perf_counter()
    directory = Path(tempfile.mkdtemp(prefix="engage-results-bench-"))
    try:
        survey = write_survey(directory, args.choice_questions)
        outcomes = [bench_database(name, survey, args, directory) for name in databases]
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    totals = outcomes[0].totals
    print(
        f"\n{totals.answers:,} answers from {totals.respondents:,} respondents "
        f"({totals.conversations:,} conversations); survey: state (13 states) + "
        f"{args.choice_questions} choice question(s) x 6 choices, {len(LANGUAGES)} languages; "
        f"median of {args.runs} runs after a warm-up, each run a fresh process (peak RSS: its "
        f"VmHWM, imports included; 'before': its RSS after imports and connecting)\n"
    )
    ok = print_table(outcomes)
    print_profile(outcomes)
    same = len({digest for o in outcomes for digest in o.engage_digests.values()}) == 1
    where = "in both downloads" + (" and across the databases" if len(outcomes) > 1 else "")
    print(
        f"\nEngage's CSV (less its snapshot line) is {'identical' if same else 'DIFFERENT'} {where}"
    )
    ok = ok and same
    loads = ", ".join(f"{o.database} {o.load_seconds:.0f} s" for o in outcomes)
    print(f"\nloading: {loads}; total runtime {time.perf_counter() - started:.0f} s")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
