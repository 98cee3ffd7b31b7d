"""Streaming writers: the aggregate CSV, XLSX and JSON downloads and the staff responses CSV.

Rows are read once, as they come: a writer never holds the whole file (XLSX goes through
openpyxl's write-only mode, which keeps rows on disk until the file is zipped).

Control characters (C0 and C1, except tab and newline) never reach a file. Every string cell that
a spreadsheet would run as a formula (it starts with = + - @, a tab or a carriage return, once
control characters are gone) gets a leading single quote, in every format; numbers stay numbers.

The CSV has no place for notes, so the rule, its parameters and the snapshot are appended as rows
with question_id `_rule`, value = the parameter's name, label = the rule's text and count = the
parameter's value (the snapshot's time as its label): the columns stay exactly the contract's.
XLSX has them on its notes sheet and JSON under "rule" and "snapshot"; neither repeats the
`_rule` rows.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any

from engage.results.report import AggregateRow, Report, SurveyInfo, bin_labels, group_key
from engage.results.responses import ResponsesExport

FORMATS = ("csv", "xlsx", "json")
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
BOM = "\ufeff"
RULE_QUESTION_ID = "_rule"
SAMPLE_NOTE = "An opt-in sample, not statistically representative."
ADD_UP_NOTE = (
    "Published counts are rounded at random and small ones hidden: they need not add up, and "
    "percentages are shares of published counts."
)
# C0 and C1 control characters except tab and newline.
CONTROL_CHARACTERS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")
RULE_PARAMETERS = ("min_cell", "round_base", "smallest_published", "min_percent_base")
CHUNK_ROWS = 500

RESERVED_NOTES = (
    ("_answered", "answered the question in the group (answers from the profile included)"),
    ("_asked", "reached the question: _answered + _skipped"),
    ("_skipped", "asked but not answered: skipped (SALTAR/SKIP) or three answers not understood"),
    ("_all", "in a breakdown column: everyone, whatever that attribute"),
    ("_unknown", "in a breakdown column: the attribute was not known at answer time"),
    ("_other", "in a breakdown column: values held by too few respondents, merged"),
    ("_funnel", "people: invited, started, consented (got past consent), completed"),
    ("respondents", "each person counts once per question, with their latest answer"),
    ("percent", "share of the group's _answered, one decimal"),
    ("median", "number questions only, on the medians sheet; empty where the group is small"),
)


def neutralise(value: Any) -> Any:
    """A string without its control characters, with a leading quote where a spreadsheet would
    run it as a formula; other values are kept."""
    if not isinstance(value, str):
        return value
    # Stripped first: "\x01=HYPERLINK(…)" is a formula once a reader drops the \x01.
    value = CONTROL_CHARACTERS.sub("", value)
    return "'" + value if value.startswith(FORMULA_PREFIXES) else value


# -- CSV -------------------------------------------------------------------------------------------


def iter_csv(columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> Iterator[str]:
    """CSV text in chunks: a BOM (so Excel reads UTF-8 accents), the header, then the rows."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    buffer.write(BOM)
    writer.writerow([neutralise(c) for c in columns])
    for count, row in enumerate(rows, start=1):
        writer.writerow(["" if cell is None else neutralise(cell) for cell in row])
        if count % CHUNK_ROWS == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def iter_aggregate_csv(report: Report) -> Iterator[str]:
    """The aggregate CSV: the contract's columns, then the `_rule` rows."""
    return iter_csv(report.columns, _csv_rows(report))


def _csv_rows(report: Report) -> Iterator[list[Any]]:
    for row in report.rows:
        yield [
            row.question_id,
            row.question,
            *row.group,
            row.value,
            row.label,
            "" if row.count is None else row.count,
            "" if row.percent is None else f"{row.percent:.1f}",
            "true" if row.suppressed else "false",
        ]
    yield from _rule_rows(report)


def _rule_rows(report: Report) -> Iterator[list[Any]]:
    rule = report.rule
    blank = [""] * len(report.by)
    for parameter in RULE_PARAMETERS:
        yield [
            RULE_QUESTION_ID,
            rule["name"],
            *blank,
            parameter,
            rule["text"],
            rule[parameter],
            "",
            "false",
        ]
    yield [
        RULE_QUESTION_ID,
        rule["name"],
        *blank,
        "snapshot",
        snapshot_text(report),
        "",
        "",
        "false",
    ]
    yield [RULE_QUESTION_ID, rule["name"], *blank, "note", ADD_UP_NOTE, "", "", "false"]


def snapshot_text(report: Report) -> str:
    """Which snapshot the numbers come from, as the notes say it."""
    if report.snapshot is None:
        return "no snapshot yet: nobody has answered"
    return f"snapshot {report.snapshot.id} taken {report.snapshot.taken_at.isoformat()}"


def iter_responses_csv(export: ResponsesExport) -> Iterator[str]:
    """The staff responses CSV, one row per response, as it is read from the database."""
    return iter_csv(export.columns, export.rows)


# -- JSON ------------------------------------------------------------------------------------------


def row_object(row: AggregateRow, by: Sequence[str]) -> dict[str, Any]:
    """One aggregate row as a JSON object: numbers as numbers, hidden ones null."""
    return {
        "question_id": neutralise(row.question_id),
        "question": neutralise(row.question),
        **{attribute: neutralise(part) for attribute, part in zip(by, row.group, strict=True)},
        "value": neutralise(row.value),
        "label": neutralise(row.label),
        "count": row.count,
        "percent": row.percent,
        "suppressed": row.suppressed,
    }


def iter_aggregate_json(report: Report) -> Iterator[str]:
    """The JSON download, its rows written one by one."""
    head = {
        "survey": _neutralised(report.survey.as_json()),
        "generated_at": report.generated_at.isoformat(),
        "rule": report.rule,
        "snapshot": None
        if report.snapshot is None
        else {"id": report.snapshot.id, "taken_at": report.snapshot.taken_at.isoformat()},
        "note": ADD_UP_NOTE,
    }
    yield json.dumps(head, ensure_ascii=False)[:-1] + ', "rows": ['
    for count, row in enumerate(report.rows):
        prefix = "\n" if count == 0 else ",\n"
        yield prefix + json.dumps(row_object(row, report.by), ensure_ascii=False)
    medians = {
        question_id: {group_key(group): value for group, value in by_group.items()}
        for question_id, by_group in report.medians.items()
    }
    tail = {"medians": medians, "funnel_stops": report.funnel_stops}
    yield "\n], " + json.dumps(_neutralised(tail), ensure_ascii=False)[1:] + "\n"


def _neutralised(value: Any) -> Any:
    if isinstance(value, dict):
        return {neutralise(k): _neutralised(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_neutralised(v) for v in value]
    return neutralise(value)


# -- XLSX ------------------------------------------------------------------------------------------


def write_aggregate_xlsx(report: Report, target: str | Path | IO[bytes]) -> None:
    """The XLSX download: aggregates, medians, codebook and notes sheets."""
    # Imported here: every process builds the app, and only this download needs openpyxl.
    from openpyxl import Workbook

    workbook = Workbook(write_only=True)
    aggregates = workbook.create_sheet("aggregates")
    aggregates.append(_xlsx_row(report.columns))
    for row in report.rows:
        aggregates.append(
            _xlsx_row(
                [
                    row.question_id,
                    row.question,
                    *row.group,
                    row.value,
                    row.label,
                    row.count,
                    row.percent,
                    "true" if row.suppressed else "false",
                ]
            )
        )
    medians = workbook.create_sheet("medians")
    medians.append(_xlsx_row(["question_id", "question", *report.by, "median"]))
    questions = {q.id: q for q in report.survey.questions}
    for question_id, by_group in report.medians.items():
        question = questions.get(question_id)
        text = _default_text(question.text, report.survey) if question else ""
        for group, value in by_group.items():
            medians.append(_xlsx_row([question_id, text, *group, value]))
    codebook = workbook.create_sheet("codebook")
    for values in _codebook_rows(report.survey):
        codebook.append(_xlsx_row(values))
    notes = workbook.create_sheet("notes")
    for values in _notes_rows(report):
        notes.append(_xlsx_row(values))
    workbook.save(target)


def _xlsx_row(values: Sequence[Any]) -> list[Any]:
    # neutralise() drops the control characters openpyxl refuses, before the formula check.
    return [neutralise(value) for value in values]


def _default_text(texts: dict[str, str], survey: SurveyInfo) -> str:
    return texts.get(survey.default_language) or next(iter(texts.values()), "")


def _codebook_rows(survey: SurveyInfo) -> Iterator[list[Any]]:
    languages = list(survey.languages)
    yield ["question_id", "row", "type", "value", "notes", *languages]
    for question in survey.questions:
        notes = []
        if question.profile:
            notes.append(f"profile attribute {question.profile}")
        if question.when_source:
            notes.append(f"asked when {question.when_source}")
        if question.optional:
            notes.append("optional")
        if question.type == "number":
            low = "" if question.min is None else f"{question.min:g}"
            high = "" if question.max is None else f"{question.max:g}"
            if low or high:
                notes.append(f"accepted {low}-{high}")
        if question.type == "text":
            notes.append("free text: never in aggregates")
        texts = [question.text.get(lang, "") for lang in languages]
        yield [question.id, "question", question.type, "", "; ".join(notes), *texts]
        if question.type in ("choice", "multi"):
            for choice in question.choices:
                labels = [choice.label.get(lang, "") for lang in languages]
                yield [question.id, "value", question.type, choice.value, "", *labels]
        elif question.type == "yes_no":
            for value in ("yes", "no"):
                labels = [
                    survey.yes_no_labels.get(lang, {}).get(value, value) for lang in languages
                ]
                yield [question.id, "value", question.type, value, "", *labels]
        elif question.type == "number":
            for _low, _high, label in bin_labels(question):
                yield [
                    question.id,
                    "value",
                    question.type,
                    label,
                    "range",
                    *([label] * len(languages)),
                ]


def _notes_rows(report: Report) -> Iterator[list[Any]]:
    survey, rule = report.survey, report.rule
    yield ["item", "value"]
    yield ["survey", survey.id]
    yield ["title", survey.title]
    yield ["generated_at", report.generated_at.isoformat()]
    yield ["breakdown", ", ".join(report.by) or "none"]
    yield ["snapshot", snapshot_text(report)]
    yield ["sample", SAMPLE_NOTE]
    yield ["note", ADD_UP_NOTE]
    yield ["rule", rule["name"]]
    yield ["rule text", rule["text"]]
    for parameter in RULE_PARAMETERS:
        yield [parameter, rule[parameter]]
    for version in survey.versions:
        state = "current" if version.is_current else "earlier"
        published = version.published_at.date().isoformat()
        yield ["version", f"{version.version} ({state}, published {published})"]
    for name, meaning in RESERVED_NOTES:
        yield [name, meaning]


# -- one entry point -------------------------------------------------------------------------------


def write_report(report: Report, fmt: str, stream: IO[bytes]) -> None:
    """Write the aggregate download in one of FORMATS to a binary stream."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; one of {', '.join(FORMATS)}")
    if fmt == "xlsx":
        write_aggregate_xlsx(report, stream)
        return
    chunks = iter_aggregate_csv(report) if fmt == "csv" else iter_aggregate_json(report)
    for chunk in chunks:
        stream.write(chunk.encode("utf-8"))
