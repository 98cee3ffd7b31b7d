"""The `engage` console command itself, run as an operator would run it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ENGAGE = str(Path(sys.executable).with_name("engage"))


def run(*args: str, cwd: Path, env: dict | None = None, stdin: str | None = None):
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("ENGAGE_", "TWILIO_"))}
    full_env.pop("DATABASE_URL", None)
    full_env.pop("REDIS_URL", None)
    full_env.update({"ENGAGE_ENV": "development", "ENGAGE_ORG_NAME": "Centro Campesino"})
    full_env.update(env or {})
    return subprocess.run(
        [ENGAGE, *args],
        cwd=cwd,
        env=full_env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_shipped_survey_passes_the_check_with_segment_costs():
    result = run("surveys", "check", str(ROOT / "surveys"), cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "working-conditions (version " in result.stdout
    lines = result.stdout.splitlines()
    # The consent is measured as sent on SMS, in plain GSM-7 spelling.
    assert any(line.split()[:4] == ["consent", "es", "GSM-7", "2"] for line in lines)
    assert not any("warning" in line for line in lines), result.stdout


def test_surveys_check_shows_both_spellings_and_warns_on_what_sms_sends(tmp_path):
    source = (ROOT / "surveys" / "h2a-working-conditions.yaml").read_text(encoding="utf-8")
    plain = run("surveys", "check", str(ROOT / "surveys"), cwd=ROOT).stdout.splitlines()
    # As written, the accents make this question UCS-2 and two segments; plain, it is one.
    days = next(line for line in plain if line.split()[:2] == ["days_worked", "es"])
    assert days.split()[2:4] == ["GSM-7", "1"], days
    assert "(plain; as written: UCS-2 2)" in days
    as_written = tmp_path / "as-written.yaml"
    as_written.write_text(source.replace('\nsms_spelling: "plain"\n', "\n", 1))
    result = run("surveys", "check", str(as_written), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = {tuple(line.split()[:2]): line for line in result.stdout.splitlines()}
    days = lines[("days_worked", "es")]
    assert days.split()[2:4] == ["UCS-2", "2"], days
    assert "(as written; plain: GSM-7 1)" in days
    # The characters that make it UCS-2 are named, so the author knows what to change.
    assert days.endswith("UCS-2 because of: á í ó ú"), days
    # The crop list is 4 segments as written: the warning names the cost SMS would send.
    assert "warning: more than 2 segments on SMS" in lines[("main_crop", "es")]


def test_surveys_check_warns_when_the_sms_cost_is_over_budget(tmp_path):
    long_question = "¿" + "Cuántas horas trabajó " * 8 + "?"
    text = (
        "id: long-question\n"
        "title: {es: Demo, en: Demo}\n"
        "languages: [es, en]\n"
        "keywords: {es: [LARGA], en: [LONGQ]}\n"
        "questions:\n"
        f"  - {{id: q, type: yes_no, text: {{es: '{long_question}', en: b}}}}\n"
    )
    path = tmp_path / "long.yaml"
    path.write_text(text, encoding="utf-8")
    written = run("surveys", "check", str(path), cwd=tmp_path).stdout
    line = next(ln for ln in written.splitlines() if ln.split()[:2] == ["q", "es"])
    assert "warning: more than 2 segments on SMS" in line
    path.write_text(text.replace("questions:", "sms_spelling: plain\nquestions:"))
    plain = run("surveys", "check", str(path), cwd=tmp_path).stdout
    line = next(ln for ln in plain.splitlines() if ln.split()[:2] == ["q", "es"])
    assert "warning" not in line, line


BROKEN = """\
id: broken-survey
title: {es: Roto, en: Broken}
languages: [es, en]
keywords: {es: [ROTO], en: [BROKEN]}
questions:
  - id: hours
    type: number
    min: 10
    max: 5
    text: {es: "¿Horas?"}
  - id: paid
    type: yes_no
    when: "later == 'yes'"
    text: {es: "¿Pagado?", en: "Paid?"}
  - id: later
    type: yes_no
    colour: blue
    text: {es: "¿Luego?", en: "Later?"}
"""


def test_a_broken_survey_is_reported_by_file_and_line(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text(BROKEN)
    result = run("surveys", "check", str(path), cwd=tmp_path)
    assert result.returncode == 1
    out = result.stdout
    assert f"{path}:10: " in out and "'en'" in out  # the missing translation
    assert any(
        line.startswith(f"{path}:8:") or line.startswith(f"{path}:9:") for line in out.splitlines()
    ), out  # min > max
    assert any(line.startswith(f"{path}:13:") and "later" in line for line in out.splitlines())
    assert any(line.startswith(f"{path}:17:") and "colour" in line for line in out.splitlines())


LONG_INTRO = """\
id: long-intro
title: {es: Demo, en: Demo}
languages: [es, en]
keywords: {es: [LARGO], en: [LONG]}
intro: {es: "%s", en: "Hello"}
questions:
  - {id: q, type: yes_no, text: {es: a, en: b}}
""" % ("a" * 1601)


def write_hostile_surveys(directory: Path) -> tuple[Path, Path]:
    """A file nested 100,000 levels deep, and one whose intro is too long for a message."""
    directory.mkdir(exist_ok=True)
    deep = directory / "deep.yaml"
    deep.write_text("id: deep\nintro: " + "[" * 100_000 + "]" * 100_000 + "\n")
    long = directory / "long.yaml"
    long.write_text(LONG_INTRO)
    return deep, long


def test_surveys_check_reports_a_100000_deep_file_and_the_files_after_it(tmp_path):
    deep, long = write_hostile_surveys(tmp_path / "surveys")
    result = run("surveys", "check", str(deep), str(long), cwd=tmp_path)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr and "RecursionError" not in result.stderr
    assert result.stdout.splitlines() == [
        f"{deep}:2: nested more than 50 levels deep",
        f"{long}:5: text of 1,601 characters: at most 1,600 (the most one message can carry)",
    ]


def test_surveys_load_reports_every_bad_file_and_publishes_nothing(tmp_path):
    surveys = tmp_path / "surveys"
    deep, long = write_hostile_surveys(surveys)
    (surveys / "h2a.yaml").symlink_to(ROOT / "surveys" / "h2a-working-conditions.yaml")
    assert run("db", "upgrade", cwd=tmp_path).returncode == 0
    refused = run("surveys", "load", cwd=tmp_path)
    assert refused.returncode == 1
    assert "Traceback" not in refused.stderr
    assert "surveys/deep.yaml:2: nested more than 50 levels deep" in refused.stderr
    assert "surveys/long.yaml:5: text of 1,601 characters" in refused.stderr
    assert "2 problem(s): nothing published" in refused.stderr
    deep.unlink()
    long.unlink()
    loaded = run("surveys", "load", cwd=tmp_path)
    assert "working-conditions: published" in loaded.stdout  # so nothing was before


def test_simulate_prints_only_the_replies_and_keeps_phones_out_of_the_logs(tmp_path):
    (tmp_path / "surveys").symlink_to(ROOT / "surveys")
    assert run("db", "upgrade", cwd=tmp_path).returncode == 0
    loaded = run("surveys", "load", cwd=tmp_path)
    assert "working-conditions: published" in loaded.stdout
    assert "working-conditions: unchanged" in run("surveys", "load", cwd=tmp_path).stdout
    first = run("simulate", "+15557654321", "TRABAJO", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("Centro Campesino le pregunta sobre su trabajo.")
    assert first.stdout.count("\n") == 1  # one reply, nothing else on stdout
    second = run("simulate", "+15557654321", "1", cwd=tmp_path)
    assert second.stdout.startswith("Gracias.")
    for out in (first, second):
        assert "7654321" not in out.stderr
        assert "TRABAJO" not in out.stderr  # the worker's own text is never logged
    assert "contact-1" in second.stderr


def test_chat_is_an_interactive_conversation(tmp_path):
    (tmp_path / "surveys").symlink_to(ROOT / "surveys")
    run("db", "upgrade", cwd=tmp_path)
    run("surveys", "load", cwd=tmp_path)
    result = run("chat", "+15557654000", cwd=tmp_path, stdin="WORK\n1\ncali\n")
    assert result.returncode == 0, result.stderr
    assert "Join? 1=Yes 2=No" in result.stdout
    assert "Which state do you work in now?" in result.stdout
    assert "Which crop do you work in most?" in result.stdout


def test_simulate_refuses_production(tmp_path):
    from cryptography.fernet import Fernet

    env = {
        "ENGAGE_ENV": "production",
        "ENGAGE_SECRET_KEY": "5b0e9c27d4a1f83e6c2b7d90a4e1f5c8",
        "ENGAGE_PII_KEY": Fernet.generate_key().decode(),
        "TWILIO_ACCOUNT_SID": "AC" + "1" * 32,
        "TWILIO_AUTH_TOKEN": "t",
        "ENGAGE_PUBLIC_URL": "https://example.org",
        # Production refuses SQLite; the refusal comes before any connection is made.
        "DATABASE_URL": "postgresql://engage@127.0.0.1:9/engage",
    }
    result = run("simulate", "+15557654321", "hola", cwd=tmp_path, env=env)
    assert result.returncode != 0
    assert "--allow-production" in result.stderr


@pytest.mark.parametrize("command", [["worker.py"]])
def test_worker_starts(command, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENGAGE_")}
    env.update({"ENGAGE_ENV": "development", "ENGAGE_WORKER_BURST": "1"})
    result = subprocess.run(
        [sys.executable, str(ROOT / command[0])],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
