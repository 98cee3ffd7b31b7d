"""The downloads: CSV, XLSX and JSON writers, and `engage export` as an operator runs it."""

from __future__ import annotations

import csv
import io
import json
import tracemalloc
import weakref
from collections.abc import Iterator
from datetime import UTC, datetime

import openpyxl
import pytest
from click.testing import CliRunner
from flask.cli import ScriptInfo

from engage.cli import main
from engage.results.disclosure import ALL, Rule
from engage.results.report import (
    AggregateRow,
    Report,
    SnapshotInfo,
    SurveyInfo,
    SurveyVersionInfo,
    aggregate_columns,
)
from engage.results.writers import (
    BOM,
    SAMPLE_NOTE,
    iter_aggregate_csv,
    iter_aggregate_json,
    neutralise,
    write_aggregate_xlsx,
    write_report,
)
from engage.survey.definition import Choice, Question
from tests.results.conftest import seed_population

GENERATED = datetime(2026, 3, 9, 12, 0, tzinfo=UTC)
SNAPSHOT_AT = datetime(2026, 3, 9, 8, 15, tzinfo=UTC)
PREFIXES = ["=", "+", "-", "@", "\t"]
# Formulas behind control characters, which a reader drops (or which end up in front of it).
HIDDEN_FORMULAS = ['\x01=HYPERLINK("http://x")', "\r=1+1", "\x00+1", "\x85@SUM(A1)", "\x1b-2"]
QUESTIONS = (
    Question(
        "paid",
        "yes_no",
        {"es": "¿Le pagan a tiempo?", "en": "Are you paid on time?"},
    ),
    Question(
        "crop",
        "choice",
        {"es": "¿Cultivo?", "en": "Crop?"},
        choices=(Choice("berries", {"es": "Fresa", "en": "Berries"}),),
        profile="crop",
    ),
    Question("hours", "number", {"es": "¿Horas?", "en": "Hours?"}, min=0, max=120, bins=(0, 40)),
)


def survey_info(title: str = "Condiciones") -> SurveyInfo:
    return SurveyInfo(
        id="working-conditions",
        title=title,
        default_language="es",
        languages=("es", "en"),
        versions=(
            SurveyVersionInfo("aaaa", datetime(2026, 1, 5, tzinfo=UTC), False),
            SurveyVersionInfo("bbbb", datetime(2026, 2, 5, tzinfo=UTC), True),
        ),
        questions=QUESTIONS,
        yes_no_labels={"es": {"yes": "Sí", "no": "No"}, "en": {"yes": "Yes", "no": "No"}},
    )


def make_report(rows, by=("state",), medians=None) -> Report:
    return Report(
        survey=survey_info(),
        by=tuple(by),
        rule=Rule().describe(),
        generated_at=GENERATED,
        snapshot=SnapshotInfo(3, SNAPSHOT_AT),
        rows=rows,
        medians=medians or {},
        funnel_stops={"stopped": None, "last_answered": {}},
    )


SAMPLE_ROWS = [
    AggregateRow("paid", "¿Le pagan a tiempo?", (ALL,), "_answered", "", 40, None, False),
    AggregateRow("paid", "¿Le pagan a tiempo?", (ALL,), "yes", "Sí", 31, 77.5, False),
    AggregateRow("paid", "¿Le pagan a tiempo?", (ALL,), "no", "No", None, None, True),
    AggregateRow("paid", "¿Le pagan a tiempo?", ("CA",), "no", "No", 0, 0.0, False),
]


def csv_text(report: Report) -> str:
    return "".join(iter_aggregate_csv(report))


def dangerous_rows() -> list[AggregateRow]:
    return [
        AggregateRow(
            f"{p}q", f"{p}question", (f"{p}group",), f"{p}value", f"{p}label", 12, 40.0, False
        )
        for p in PREFIXES
    ]


# -- CSV -----------------------------------------------------------------------------------------


def test_csv_is_utf8_with_a_bom_and_the_contract_columns():
    text = csv_text(make_report(SAMPLE_ROWS))
    assert text.startswith(BOM)
    rows = list(csv.reader(io.StringIO(text[len(BOM) :])))
    assert rows[0] == aggregate_columns(("state",))
    assert rows[1:5] == [
        ["paid", "¿Le pagan a tiempo?", "_all", "_answered", "", "40", "", "false"],
        ["paid", "¿Le pagan a tiempo?", "_all", "yes", "Sí", "31", "77.5", "false"],
        ["paid", "¿Le pagan a tiempo?", "_all", "no", "No", "", "", "true"],
        ["paid", "¿Le pagan a tiempo?", "CA", "no", "No", "0", "0.0", "false"],
    ]


def test_csv_ends_with_the_rule_and_its_parameters():
    rows = list(csv.DictReader(io.StringIO(csv_text(make_report(SAMPLE_ROWS))[len(BOM) :])))
    rule_rows = [r for r in rows if r["question_id"] == "_rule"]
    assert rows[-len(rule_rows) :] == rule_rows
    assert [(r["value"], r["count"]) for r in rule_rows] == [
        ("min_cell", "11"),
        ("round_base", "5"),
        ("smallest_published", "15"),
        ("min_percent_base", "30"),
        ("snapshot", ""),
        ("note", ""),
    ]
    assert rule_rows[4]["label"] == f"snapshot 3 taken {SNAPSHOT_AT.isoformat()}"
    assert "need not add up" in rule_rows[5]["label"]
    assert rule_rows[0]["label"] == Rule().describe()["text"]
    assert rule_rows[0]["state"] == ""


@pytest.mark.parametrize("prefix", PREFIXES)
def test_neutralise_quotes_every_formula_prefix_and_keeps_numbers(prefix):
    assert neutralise(f"{prefix}1+1") == f"'{prefix}1+1"
    assert neutralise("¿Le pagan?") == "¿Le pagan?"
    assert neutralise(-5) == -5


@pytest.mark.parametrize("text", HIDDEN_FORMULAS)
def test_neutralise_drops_control_characters_before_looking_for_a_formula(text):
    got = neutralise(text)
    assert got.startswith("'") and got[1] in "=+-@"
    assert not any(ord(c) < 32 and c not in "\t\n" or 0x7F <= ord(c) <= 0x9F for c in got)


def test_formulas_behind_control_characters_are_neutralised_in_every_format():
    rows = [
        AggregateRow("q", text, (text,), text, text, 12, 40.0, False) for text in HIDDEN_FORMULAS
    ]
    report = make_report(rows)
    text = csv_text(report)
    for row in list(csv.reader(io.StringIO(text[len(BOM) :])))[1 : 1 + len(rows)]:
        assert all(cell.startswith("'") for cell in row[1:5]), row
    got = json.loads("".join(iter_aggregate_json(report)))
    assert all(r["question"].startswith("'") for r in got["rows"])
    book = read_xlsx(report)
    for row in list(book["aggregates"].values)[1 : 1 + len(rows)]:
        assert all(str(cell).startswith("'") for cell in row[1:5]), row
    for sheet in book.worksheets:
        for sheet_row in sheet.iter_rows():
            for cell in sheet_row:
                assert cell.data_type != "f", (sheet.title, cell.coordinate, cell.value)


def test_csv_neutralises_formulas_in_every_text_cell():
    text = csv_text(make_report(dangerous_rows()))
    rows = list(csv.reader(io.StringIO(text[len(BOM) :])))[1 : 1 + len(PREFIXES)]
    for prefix, row in zip(PREFIXES, rows, strict=True):
        assert row[:6] == [
            f"'{prefix}q",
            f"'{prefix}question",
            f"'{prefix}group",
            f"'{prefix}value",
            f"'{prefix}label",
            "12",
        ]


# -- XLSX ----------------------------------------------------------------------------------------


def read_xlsx(report: Report) -> openpyxl.Workbook:
    buffer = io.BytesIO()
    write_aggregate_xlsx(report, buffer)
    buffer.seek(0)
    return openpyxl.load_workbook(buffer)


def test_xlsx_has_the_aggregates_medians_codebook_and_notes():
    medians = {"hours": {(ALL,): 45, ("CA",): 42.5, ("WA",): None}}
    book = read_xlsx(make_report(SAMPLE_ROWS, medians=medians))
    assert book.sheetnames == ["aggregates", "medians", "codebook", "notes"]
    aggregates = list(book["aggregates"].values)
    assert list(aggregates[0]) == aggregate_columns(("state",))
    assert aggregates[2] == ("paid", "¿Le pagan a tiempo?", "_all", "yes", "Sí", 31, 77.5, "false")
    assert aggregates[3][5:] == (None, None, "true")
    assert list(book["medians"].values) == [
        ("question_id", "question", "state", "median"),
        ("hours", "¿Horas?", "_all", 45),
        ("hours", "¿Horas?", "CA", 42.5),
        ("hours", "¿Horas?", "WA", None),
    ]
    codebook = list(book["codebook"].values)
    assert codebook[0] == ("question_id", "row", "type", "value", "notes", "es", "en")
    assert (
        "paid",
        "question",
        "yes_no",
        None,
        None,
        "¿Le pagan a tiempo?",
        "Are you paid on time?",
    ) in codebook
    assert ("paid", "value", "yes_no", "yes", None, "Sí", "Yes") in codebook
    assert ("crop", "value", "choice", "berries", None, "Fresa", "Berries") in codebook
    assert any(row[0] == "crop" and "profile attribute crop" in (row[4] or "") for row in codebook)
    assert ("hours", "value", "number", "40-120", "range", "40-120", "40-120") in codebook
    notes = dict(row for row in book["notes"].values if row[0] != "version")
    assert notes["sample"] == SAMPLE_NOTE
    assert notes["rule text"] == Rule().describe()["text"]
    assert (notes["min_cell"], notes["round_base"], notes["min_percent_base"]) == (11, 5, 30)
    assert notes["snapshot"] == f"snapshot 3 taken {SNAPSHOT_AT.isoformat()}"
    assert notes["generated_at"] == GENERATED.isoformat()
    versions = [row[1] for row in book["notes"].values if row[0] == "version"]
    assert versions == [
        "aaaa (earlier, published 2026-01-05)",
        "bbbb (current, published 2026-02-05)",
    ]


def test_xlsx_neutralises_formulas_and_keeps_numbers():
    book = read_xlsx(make_report(dangerous_rows()))
    rows = list(book["aggregates"].values)[1:]
    for prefix, row in zip(PREFIXES, rows, strict=True):
        assert row[:5] == tuple(
            f"'{prefix}{name}" for name in ("q", "question", "group", "value", "label")
        )
        assert (row[5], row[6]) == (12, 40.0)
    for sheet in book.worksheets:
        for row in sheet.iter_rows():
            for cell in row:
                assert cell.data_type != "f", (sheet.title, cell.coordinate, cell.value)


# -- JSON ----------------------------------------------------------------------------------------


def test_json_has_the_survey_rule_rows_medians_and_stops():
    report = make_report(SAMPLE_ROWS, medians={"hours": {(ALL,): 45, ("CA",): None}})
    got = json.loads("".join(iter_aggregate_json(report)))
    assert list(got) == [
        "survey",
        "generated_at",
        "rule",
        "snapshot",
        "note",
        "rows",
        "medians",
        "funnel_stops",
    ]
    assert got["snapshot"] == {"id": 3, "taken_at": SNAPSHOT_AT.isoformat()}
    assert got["survey"]["id"] == "working-conditions"
    assert [v["version"] for v in got["survey"]["versions"]] == ["aaaa", "bbbb"]
    assert got["generated_at"] == GENERATED.isoformat()
    assert got["rule"] == Rule().describe()
    assert got["rows"][1] == {
        "question_id": "paid",
        "question": "¿Le pagan a tiempo?",
        "state": "_all",
        "value": "yes",
        "label": "Sí",
        "count": 31,
        "percent": 77.5,
        "suppressed": False,
    }
    assert got["rows"][2]["count"] is None and got["rows"][2]["suppressed"] is True
    assert len(got["rows"]) == len(SAMPLE_ROWS)  # the _rule rows are the CSV's only
    assert got["medians"] == {"hours": {"_all": 45, "CA": None}}
    assert got["funnel_stops"] == {"stopped": None, "last_answered": {}}


def test_json_neutralises_formulas_in_text_and_keys():
    report = make_report(dangerous_rows(), medians={"hours": {("=cmd",): 3}})
    report.survey = survey_info(title="=Title")
    got = json.loads("".join(iter_aggregate_json(report)))
    assert got["survey"]["title"] == "'=Title"
    for prefix, row in zip(PREFIXES, got["rows"], strict=True):
        assert row["question"] == f"'{prefix}question"
        assert row["state"] == f"'{prefix}group"
        assert row["count"] == 12
    assert got["medians"] == {"hours": {"'=cmd": 3}}


def test_json_without_rows_is_still_valid():
    got = json.loads("".join(iter_aggregate_json(make_report([], by=()))))
    assert got["rows"] == []


# -- streaming -----------------------------------------------------------------------------------


def synthetic_rows(n: int) -> Iterator[AggregateRow]:
    for i in range(n):
        yield AggregateRow(
            f"q{i % 50}", "¿Pregunta?", (f"s{i % 7}",), f"v{i}", "Etiqueta", i, 12.5, False
        )


class Sink(io.RawIOBase):
    """A binary stream that keeps nothing but the number of bytes written."""

    def __init__(self) -> None:
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self.size += len(data)
        return len(data)


def test_the_csv_writer_streams_200k_rows_in_little_memory():
    sink = Sink()
    tracemalloc.start()
    try:
        write_report(make_report(synthetic_rows(200_000)), "csv", sink)
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert sink.size > 200_000 * 40
    # The same rows held in a list take about 78 MB.
    assert peak < 4 * 1024 * 1024, peak


@pytest.mark.parametrize(("fmt", "rows"), [("csv", 50_000), ("json", 50_000), ("xlsx", 5_000)])
def test_every_writer_lets_each_row_go_before_reading_the_next_ones(fmt, rows):
    alive = Alive()
    write_report(make_report(alive.rows(synthetic_rows(rows))), fmt, Sink())
    assert alive.created == rows
    assert alive.most <= 2, alive.most


class Alive:
    """Counts rows created and not yet freed: a writer that held them would keep them all."""

    def __init__(self) -> None:
        self.created = 0
        self.now = 0
        self.most = 0

    def _freed(self) -> None:
        self.now -= 1

    def rows(self, source: Iterator[AggregateRow]) -> Iterator[AggregateRow]:
        for row in source:
            self.created += 1
            self.now += 1
            self.most = max(self.most, self.now)
            weakref.finalize(row, self._freed)
            yield row
            del row


# -- `engage export` -----------------------------------------------------------------------------


def run_export(app, *args: str):
    return CliRunner().invoke(main, ["export", *args], obj=ScriptInfo(create_app=lambda: app))


def test_export_writes_csv_to_standard_output(app, seed):
    seed_population(seed)
    result = run_export(app, "working-conditions", "--by", "state", "--by", "crop")
    assert result.exit_code == 0, result.output
    assert result.stdout_bytes.startswith(BOM.encode("utf-8"))
    header = "question_id,question,state,crop,value,label,count,percent,suppressed"
    assert result.stdout.lstrip(BOM).splitlines()[0] == header


def test_export_writes_json_and_xlsx(app, seed, tmp_path):
    seed.record_key = 0  # every count rounds up: a median of the published 15, 25, 15
    seed_population(seed)
    result = run_export(app, "working-conditions", "--format", "json")
    assert result.exit_code == 0, result.output
    got = json.loads(result.stdout)
    assert got["rule"]["min_cell"] == 11
    assert got["medians"]["hours_per_day"] == {"_all": 9}
    target = tmp_path / "results.xlsx"
    result = run_export(app, "working-conditions", "--format", "xlsx", "-o", str(target))
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    book = openpyxl.load_workbook(target)
    assert book.sheetnames == ["aggregates", "medians", "codebook", "notes"]


def test_export_refuses_xlsx_to_standard_output(app):
    result = run_export(app, "working-conditions", "--format", "xlsx")
    assert result.exit_code == 2
    assert "-o FILE" in result.output


def test_export_names_the_valid_attributes_for_a_bad_breakdown(app):
    result = run_export(app, "working-conditions", "--by", "farm")
    assert result.exit_code == 1
    assert "valid: crop, first_season, state" in result.output
    assert result.stdout == "" or "question_id" not in result.stdout


def test_export_of_an_unknown_survey_fails_clearly(app):
    result = run_export(app, "no-such-survey")
    assert result.exit_code == 1
    assert "unknown survey 'no-such-survey'" in result.output


def test_export_responses_is_csv_only(app):
    result = run_export(app, "working-conditions", "--responses", "--format", "json")
    assert result.exit_code == 2
