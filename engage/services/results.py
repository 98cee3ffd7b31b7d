"""Results for the policy team, counted in the database, and the staff responses file.

Every query groups in SQL: Python only sees one row per question, group and value, so memory does
not grow with the number of answers. The responses file streams rows with `partitions`.

Conventions the download contract leaves open (also written into the XLSX notes):
- each respondent (contact) counts once per question, with their latest answer row (the one
  written last: `answers.is_latest`, kept by the conversation service), for every survey: with
  `repeat` that is the rule, and without it a conversation abandoned and started again would
  otherwise count twice;
- `_asked` counts answered, skipped, missed and profile rows; `_answered` answered and profile
  rows; `_skipped` skipped and missed rows (asked, not answered), so `_asked` is always
  `_answered + _skipped` and no small "missed" count can be had by subtraction;
- the funnel counts conversations; its breakdown uses the profile of each conversation's last
  answer row (`conversations.last_profile`, written with that row), else the contact's profile
  (an invitation nobody answered has no answer rows);
- a profile value becomes its group name as text; a missing or empty one is `_unknown`.
"""

from __future__ import annotations

import dataclasses
import itertools
import re
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, case, distinct, func, null, select, true
from sqlalchemy.orm import Session
from sqlalchemy.sql import Subquery

from engage.config import LOCALES_DIR
from engage.models import Answer, Conversation, SurveyVersion
from engage.results import report as rp
from engage.results.disclosure import (
    ANSWERED,
    ASKED,
    DEFAULT_MIN_CELL,
    DEFAULT_MIN_PERCENT_BASE,
    SKIPPED,
    Group,
    apply,
    describe_rule,
)
from engage.results.report import (
    STOPPED_BEFORE_QUESTIONS,
    AggregateRow,
    BreakdownError,
    Report,
    SurveyInfo,
    SurveyVersionInfo,
)
from engage.results.responses import (
    FIXED_COLUMNS,
    ResponsesExport,
    answer_cell,
    respondent_id,
    stored_value,
)
from engage.services.surveys import parse_version
from engage.survey.definition import Question, Survey
from engage.survey.texts import SystemTexts

MAX_BREAKDOWNS = 2
ANSWERED_STATUSES = ("answered", "profile")
UNANSWERED_STATUSES = ("skipped", "missed")
# Conversations that ended without completing: where they stopped is worth knowing.
STOPPED_STATUSES = ("abandoned", "declined", "expired", "opted_out")
STREAM_BATCH = 10_000


class SurveyNotFoundError(LookupError):
    """No version of this survey was ever published."""


# -- the survey across its versions -------------------------------------------------------------


def describe_survey(session: Session, survey_id: str) -> SurveyInfo:
    """The survey's ids, texts and versions; questions merged across versions by id."""
    rows = session.scalars(
        select(SurveyVersion)
        .where(SurveyVersion.survey_id == survey_id)
        .order_by(SurveyVersion.published_at, SurveyVersion.id)
    ).all()
    if not rows:
        raise SurveyNotFoundError(f"unknown survey {survey_id!r}")
    current = next((row for row in rows if row.is_current), rows[-1])
    newest_first = [current, *(row for row in reversed(rows) if row is not current)]
    surveys = [parse_version(row) for row in newest_first]
    default = surveys[0].default_language
    languages = tuple(dict.fromkeys(lang for s in surveys for lang in s.languages))
    return SurveyInfo(
        id=survey_id,
        title=_text(surveys[0].title, default),
        default_language=default,
        languages=languages,
        versions=tuple(
            SurveyVersionInfo(row.version, row.published_at, row is current) for row in rows
        ),
        questions=tuple(_merged_questions(surveys)),
        yes_no_labels={lang: _yes_no_labels(lang) for lang in languages},
    )


def breakdown_attributes(session: Session, survey_id: str) -> list[str]:
    """The profile attributes results of this survey can be broken down by."""
    return _profile_keys(describe_survey(session, survey_id))


def _profile_keys(info: SurveyInfo) -> list[str]:
    return sorted({q.profile for q in info.questions if q.profile})


def _merged_questions(surveys: list[Survey]) -> list[Question]:
    """Questions of every version, newest wording first; choices of older versions kept."""
    merged: dict[str, Question] = {}
    for survey in surveys:
        for question in survey.questions:
            known = merged.get(question.id)
            if known is None:
                merged[question.id] = question
                continue
            extra = tuple(c for c in question.choices if known.choice_by_value(c.value) is None)
            if extra:
                merged[question.id] = dataclasses.replace(known, choices=known.choices + extra)
    return list(merged.values())


def _yes_no_labels(language: str) -> dict[str, str]:
    # The catalogs hold yes/no as "1 Sí 2 No": the words the worker was shown.
    shown = SystemTexts(LOCALES_DIR, language, "").yes_no_choices()
    found = re.fullmatch(r"1\s+(.+?)\s+2\s+(.+)", shown.strip())
    if found is None:
        return {"yes": "yes", "no": "no"}
    return {"yes": found.group(1), "no": found.group(2)}


def _text(texts: Mapping[str, str], language: str) -> str:
    return texts.get(language) or next(iter(texts.values()), "")


# -- aggregates ------------------------------------------------------------------------------------


def build_report(
    session: Session,
    survey_id: str,
    by: Sequence[str] = (),
    *,
    min_cell: int = DEFAULT_MIN_CELL,
    min_percent_base: int = DEFAULT_MIN_PERCENT_BASE,
    now: datetime | None = None,
) -> Report:
    """Aggregates of a survey, by up to two profile attributes, under disclosure control.

    Raises SurveyNotFoundError (a LookupError) for an unknown survey and BreakdownError (a
    ValueError) for a `by` attribute that is not a profile key of the survey's questions.
    """
    info = describe_survey(session, survey_id)
    by = tuple(by)
    _check_breakdown(info, by)
    dims = len(by)
    counter = _Counter(session, survey_id, by)
    default = info.default_language

    rows: list[AggregateRow] = []
    funnel_counts, stop_counts = counter.funnel()
    funnel = rp.funnel_table(funnel_counts, dims, min_cell, min_percent_base)
    rows.extend(rp.table_rows(funnel, "", {}, reserved=False))

    per_question = counter.question_counts(info.questions)
    multi = counter.multi_values([q.id for q in info.questions if q.type == "multi"])
    medians: dict[str, dict[Group, float | None]] = {}
    for question in info.questions:
        counts = per_question.get(question.id, {})
        labels: dict[str, str]
        if question.type in ("choice", "multi"):
            if question.type == "multi":
                _merge(counts, multi.get(question.id, {}))
            labels = {c.value: _text(c.label, default) for c in question.choices}
        elif question.type == "yes_no":
            labels = dict(info.yes_no_labels.get(default, {}))
        elif question.type == "number":
            labels = {label: label for _low, _high, label in rp.bin_labels(question)}
        else:  # free text: how many answered, never what
            labels = {}
        values = list(labels)
        values += sorted(
            {v for c in counts.values() for v in c} - set(values) - {ANSWERED, ASKED, SKIPPED}
        )
        table = rp.question_table(
            question.id, values, counts, dims, overlapping=question.type == "multi"
        )
        rp.protect(table, min_cell, min_percent_base)
        rows.extend(rp.table_rows(table, _text(question.text, default), labels))
        if question.type == "number":
            frequencies = counter.number_frequencies(question.id)
            medians[question.id] = rp.medians(table, frequencies, dims, min_cell)

    stops = rp.stops_table(stop_counts, [q.id for q in info.questions])
    apply(stops, min_cell, min_percent_base)
    return Report(
        survey=info,
        by=by,
        rule=describe_rule(min_cell, min_percent_base),
        generated_at=now or datetime.now(UTC),
        rows=rows,
        medians=medians,
        funnel_stops=rp.stops_json(stops),
    )


def report_limits(config: Mapping[str, Any]) -> dict[str, int]:
    """The disclosure parameters from an app config, as build_report's keyword arguments."""
    return {
        "min_cell": int(config["ENGAGE_MIN_CELL"]),
        "min_percent_base": int(config["ENGAGE_MIN_PERCENT_BASE"]),
    }


def _check_breakdown(info: SurveyInfo, by: tuple[str, ...]) -> None:
    valid = _profile_keys(info)
    names = ", ".join(valid) or "none"
    if len(by) > MAX_BREAKDOWNS:
        raise BreakdownError(
            f"at most {MAX_BREAKDOWNS} breakdown attributes, got {len(by)}; valid: {names}", valid
        )
    if len(set(by)) != len(by):
        raise BreakdownError(f"a breakdown attribute is repeated; valid: {names}", valid)
    for attribute in by:
        if attribute not in valid:
            raise BreakdownError(
                f"survey {info.id} has no profile attribute {attribute!r}; valid: {names}", valid
            )
        if attribute in rp.LEADING_COLUMNS + rp.TRAILING_COLUMNS:
            raise BreakdownError(f"{attribute!r} clashes with a column name", valid)


def _merge(counts: dict[Group, Counter[str]], more: Mapping[Group, Mapping[str, int]]) -> None:
    for group, values in more.items():
        counts.setdefault(group, Counter()).update(values)


class _Counter:
    """The GROUP BY queries of one report. Each returns {question id: {group: {value: n}}}."""

    def __init__(self, session: Session, survey_id: str, by: tuple[str, ...]) -> None:
        self.session = session
        self.survey_id = survey_id
        self.by = by
        self.dialect = session.get_bind().dialect.name
        self.latest = self._latest()
        self.groups = [self.latest.c[f"g{i}"] for i in range(len(by))]

    def _latest(self) -> Subquery:
        """Each respondent's latest row per question, with its breakdown values.

        `is_latest` is kept when rows are written, so this is a plain filter: no ranking.
        """
        return (
            select(
                Answer.contact_id,
                Answer.question_id,
                Answer.status,
                Answer.value,
                *(Answer.profile[a].as_string().label(f"g{i}") for i, a in enumerate(self.by)),
            )
            .where(
                Answer.survey_id == self.survey_id,
                Answer.is_simulated.is_(False),
                Answer.is_latest.is_(True),
            )
            .subquery("latest")
        )

    def _answered(self, question_ids: Sequence[str]) -> ColumnElement[bool]:
        latest = self.latest.c
        return and_(
            latest.status.in_(ANSWERED_STATUSES),
            latest.question_id.in_(question_ids),
        )

    def _grouped(self, stmt: Select[Any]) -> dict[str, dict[Group, Counter[str]]]:
        """Run a query whose columns are question id, the group parts, a value and a count."""
        dims = len(self.by)
        result: dict[str, dict[Group, Counter[str]]] = {}
        for row in self.session.execute(stmt):
            question_id, parts, value, count = row[0], row[1 : 1 + dims], row[1 + dims], row[-1]
            if value is None:
                continue
            group = tuple(rp.group_part(p) for p in parts)
            result.setdefault(question_id, {}).setdefault(group, Counter())[str(value)] += count
        return result

    def question_counts(
        self, questions: Sequence[Question]
    ) -> dict[str, dict[Group, Counter[str]]]:
        """One pass for every question: `_answered`, `_skipped`, `_asked` and the values.

        The value is the choice or yes/no, or the number's range; none for text (never read)
        and multi (counted per option apart).
        """
        latest = self.latest.c
        number = latest.value["v"].as_float()
        whens: list[tuple[ColumnElement[bool], ColumnElement[Any]]] = []
        scalar_ids = [q.id for q in questions if q.type in ("choice", "yes_no")]
        if scalar_ids:
            whens.append((latest.question_id.in_(scalar_ids), latest.value["v"].as_string()))
        for question in questions:
            ranges = rp.bin_labels(question) if question.type == "number" else []
            if ranges:
                edges = [(number < high, label) for _low, high, label in ranges[:-1]]
                bins = case((number.is_(None), null()), *edges, else_=ranges[-1][2])
                whens.append((latest.question_id == question.id, bins))
        value = case(*whens) if whens else null()
        kind = case((latest.status.in_(ANSWERED_STATUSES), ANSWERED), else_=SKIPPED)
        inner = (
            select(latest.question_id, *self.groups, kind.label("kind"), value.label("val"))
            .where(latest.status.in_(ANSWERED_STATUSES + UNANSWERED_STATUSES))
            .subquery()
        )
        stmt = _count_by(inner)
        dims = len(self.by)
        result: dict[str, dict[Group, Counter[str]]] = {}
        for row in self.session.execute(stmt):
            question_id, parts, (status, val, count) = row[0], row[1 : 1 + dims], row[1 + dims :]
            if not count:
                continue
            group = tuple(rp.group_part(p) for p in parts)
            counts = result.setdefault(question_id, {}).setdefault(group, Counter())
            counts[status] += count
            counts[ASKED] += count
            if status == ANSWERED and val is not None:
                counts[str(val)] += count
        return result

    def multi_values(self, question_ids: Sequence[str]) -> dict[str, dict[Group, Counter[str]]]:
        """Per option: a respondent counts once for each option in their answer list."""
        if not question_ids:
            return {}
        latest = self.latest.c
        if self.dialect == "postgresql":
            options = func.jsonb_array_elements_text(latest.value["v"]).table_valued("value")
            is_list = func.jsonb_typeof(latest.value["v"]) == "array"
        else:
            options = func.json_each(latest.value, "$.v").table_valued("value")
            is_list = func.json_type(latest.value, "$.v") == "array"
        option = options.alias("opt")
        stmt = (
            select(
                latest.question_id,
                *self.groups,
                option.c.value,
                func.count(distinct(latest.contact_id)),
            )
            .select_from(self.latest)
            .join(option, true())
            .where(self._answered(question_ids), is_list)
            .group_by(latest.question_id, *self.groups, option.c.value)
        )
        return self._grouped(stmt)

    def number_frequencies(self, question_id: str) -> dict[Group, dict[float, int]]:
        """How many gave each distinct number, per finest group: enough for exact medians."""
        latest = self.latest.c
        inner = (
            select(latest.question_id, *self.groups, latest.value["v"].as_float().label("val"))
            .where(self._answered([question_id]))
            .subquery()
        )
        dims = len(self.by)
        result: dict[Group, dict[float, int]] = {}
        for row in self.session.execute(_count_by(inner)):
            value = row[1 + dims]
            if value is None:
                continue
            group = tuple(rp.group_part(p) for p in row[1 : 1 + dims])
            bucket = result.setdefault(group, {})
            bucket[float(value)] = bucket.get(float(value), 0) + row[-1]
        return result

    def funnel(self) -> tuple[dict[Group, Counter[str]], Counter[str]]:
        """Conversations per group (invited, started, consented, completed), and where the
        conversations that ended without completing stopped (by last question answered)."""
        # The conversation row carries its last answer's question and profile (written with
        # that row), so the funnel never reads answers.
        parts = [
            Conversation.last_profile[a].as_string().label(f"g{i}") for i, a in enumerate(self.by)
        ]
        inner = (
            select(
                *parts,
                Conversation.status,
                Conversation.is_invited,
                Conversation.last_question_id.label("last_question"),
            )
            .select_from(Conversation)
            .where(Conversation.survey_id == self.survey_id, Conversation.is_simulated.is_(False))
            .subquery()
        )
        columns = [inner.c[f"g{i}"] for i in range(len(self.by))]
        columns += [inner.c.status, inner.c.is_invited, inner.c.last_question]
        stmt = select(*columns, func.count()).group_by(*columns)
        dims = len(self.by)
        result: dict[Group, Counter[str]] = {}
        stops: Counter[str] = Counter()
        for row in self.session.execute(stmt):
            group = tuple(rp.group_part(p) for p in row[:dims])
            status, is_invited, last_question, count = row[dims:]
            counts = result.setdefault(group, Counter())
            counts["started"] += count
            if is_invited:
                counts["invited"] += count
            if last_question is not None or status == "completed":
                counts["consented"] += count
            if status == "completed":
                counts["completed"] += count
            if status in STOPPED_STATUSES:
                stops[last_question or STOPPED_BEFORE_QUESTIONS] += count
        return result, stops


def _count_by(inner: Subquery) -> Select[Any]:
    """Count the rows of a subquery grouped by all of its columns (last column: the count)."""
    columns = list(inner.c)
    return select(*columns, func.count()).group_by(*columns)


# -- the staff responses file -------------------------------------------------------------------


def export_responses(session: Session, survey_id: str, *, secret_key: str) -> ResponsesExport:
    """One row per response (conversation with answers), streamed; for staff, never policy.

    Raises SurveyNotFoundError at once; rows are read while the result is iterated, so the
    session must stay open until then.
    """
    info = describe_survey(session, survey_id)
    questions = {q.id: q for q in info.questions}
    columns = [*FIXED_COLUMNS, *questions]
    return ResponsesExport(
        survey_id, columns, _response_rows(session, survey_id, questions, secret_key)
    )


def _response_rows(
    session: Session, survey_id: str, questions: Mapping[str, Question], secret_key: str
) -> Iterator[list[Any]]:
    stmt = (
        select(
            Answer.conversation_id,
            Answer.contact_id,
            Answer.question_id,
            Answer.status,
            # As text: decoding every row's JSON costs more than the rest of the row together.
            Answer.value["v"].as_string(),
            Answer.answered_at,
            Conversation.version,
            Conversation.language,
            Conversation.status,
        )
        .join(Conversation, Conversation.id == Answer.conversation_id)
        .where(
            Answer.survey_id == survey_id,
            Answer.is_simulated.is_(False),
            Conversation.is_simulated.is_(False),
        )
        .order_by(Answer.conversation_id, Answer.id)
    )
    # Core rows (no ORM loading) and partitions with a size: with yield_per that streams, while
    # partitions() without one made psycopg buffer the whole result (docs/performance.md).
    result = session.connection().execute(stmt.execution_options(yield_per=STREAM_BATCH))
    rows = itertools.chain.from_iterable(result.partitions(STREAM_BATCH))
    types = {question_id: question.type for question_id, question in questions.items()}
    for _conversation, answers in itertools.groupby(rows, key=lambda row: row[0]):
        cells: dict[str, Any] = {}
        for row in answers:
            _id, contact_id, question_id, status, text, answered_at, *conversation = row
            question_type = types.get(question_id)
            value = stored_value(question_type, text)
            cells[question_id] = answer_cell(question_type, status, value)
        version, language, conversation_status = conversation
        yield [
            respondent_id(contact_id, secret_key),
            version,
            language,
            conversation_status,
            answered_at.date().isoformat(),
            *(cells.get(question_id, "") for question_id in types),
        ]
