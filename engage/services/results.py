"""Results for the policy team, from snapshots, and the staff responses file.

Aggregates are counted in SQL when a snapshot is taken (engage/services/snapshots.py); a download
sums the snapshot's finest groups into its breakdown, in Python, over one row per question,
group and value. The responses file streams rows with `partitions`.

Conventions the download contract leaves open (also written into the XLSX notes):
- each respondent (contact) counts once per question, with their latest answer row (the one
  written last: `answers.is_latest`, kept by the conversation service), for every survey: with
  `repeat` that is the rule, and without it a conversation abandoned and started again would
  otherwise count twice;
- `_asked` counts answered, skipped, missed and profile rows; `_answered` answered and profile
  rows; `_skipped` skipped and missed rows (asked, not answered);
- question tables break answers down by the profile at answer time; group sizes and the funnel
  by each respondent's latest answer to the question that saves the attribute;
- the funnel counts people: invited, started (a conversation, invited or not), consented (got
  past consent) and completed.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import re
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engage.config import LOCALES_DIR
from engage.models import Answer, Contact, Conversation, SurveyVersion
from engage.privacy import Vault
from engage.results import report as rp
from engage.results.disclosure import (
    ALL,
    ANSWERED,
    ASKED,
    OTHER,
    RESERVED,
    SKIPPED,
    Cell,
    Group,
    Rule,
    protect,
)
from engage.results.report import (
    UNKNOWN,
    AggregateRow,
    BreakdownError,
    BreakdownRefusedError,
    Report,
    SnapshotInfo,
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
from engage.services.snapshots import (
    ANSWERED_KIND,
    SKIPPED_KIND,
    breakdown_values,
    latest_snapshot,
    profile_questions,
    take_due_snapshot,
    take_snapshot_now,
)
from engage.services.surveys import parse_version
from engage.survey.definition import Question, Survey
from engage.survey.texts import SystemTexts

log = logging.getLogger(__name__)

MAX_BREAKDOWNS = 2
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
        titles=dict(surveys[0].title),
    )


def breakdown_attributes(session: Session, survey_id: str) -> list[str]:
    """The profile attributes results of this survey can be broken down by."""
    return _profile_keys(describe_survey(session, survey_id))


def _profile_keys(info: SurveyInfo) -> list[str]:
    return list(breakdown_values(info))


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


def _text_in(texts: Mapping[str, str], language: str, default: str) -> str:
    """A text in this language, else in the default language, else in any."""
    return texts.get(language) or _text(texts, default)


def value_labels(info: SurveyInfo, question: Question, language: str) -> dict[str, str]:
    """A question's values and their labels in a language (the default's where it has none)."""
    default = info.default_language
    if question.type in ("choice", "multi"):
        return {c.value: _text_in(c.label, language, default) for c in question.choices}
    if question.type == "yes_no":
        return dict(info.yes_no_labels.get(language) or info.yes_no_labels.get(default, {}))
    if question.type == "number":
        return {label: label for _low, _high, label in rp.bin_labels(question)}
    return {}  # free text: how many answered, never what


@dataclasses.dataclass(frozen=True)
class PageTexts:
    """A survey's texts for the results pages in one language.

    Downloads keep the default language and the codes (their columns are a contract); pages
    speak the reader's language and name groups by their labels (California, not CA).
    """

    language: str
    title: str
    # question id -> its text
    questions: Mapping[str, str]
    # question id -> value -> label
    labels: Mapping[str, Mapping[str, str]]
    # breakdown attribute -> the text of the question that asks it
    attributes: Mapping[str, str]
    # breakdown attribute -> group value -> label
    groups: Mapping[str, Mapping[str, str]]


def survey_language(info: SurveyInfo, language: str) -> str:
    """The language a page shows this survey in: the page's where the survey has it, else the
    survey's default (first) language."""
    return language if language in info.languages else info.default_language


def survey_title(info: SurveyInfo, language: str) -> str:
    """The survey's title as a page in this language shows it."""
    shown = survey_language(info, language)
    return _text_in(info.titles, shown, info.default_language) or info.title


def page_texts(info: SurveyInfo, language: str) -> PageTexts:
    """Titles, question texts, value labels and breakdown names for a page in this language."""
    shown = survey_language(info, language)
    default = info.default_language
    by_id = {q.id: q for q in info.questions}
    attributes: dict[str, str] = {}
    groups: dict[str, dict[str, str]] = {}
    for attribute, question_ids in profile_questions(info).items():
        # The newest question that asks the attribute names it; older ones add their values.
        attributes[attribute] = _text_in(by_id[question_ids[0]].text, shown, default)
        labels = groups.setdefault(attribute, {})
        for question_id in question_ids:
            for value, label in value_labels(info, by_id[question_id], shown).items():
                labels.setdefault(value, label)
    return PageTexts(
        language=shown,
        title=survey_title(info, language),
        questions={q.id: _text_in(q.text, shown, default) for q in info.questions},
        labels={q.id: value_labels(info, q, shown) for q in info.questions},
        attributes=attributes,
        groups=groups,
    )


# -- aggregates ------------------------------------------------------------------------------------


def build_report(
    session: Session,
    survey_id: str,
    by: Sequence[str] = (),
    *,
    rule: Rule | None = None,
    now: datetime | None = None,
) -> Report:
    """Aggregates of a survey from its newest snapshot, by up to two profile attributes,
    under disclosure control. Takes the survey's first snapshot if it has none: the caller
    commits.

    Raises SurveyNotFoundError (a LookupError) for an unknown survey, BreakdownError (a
    ValueError) for a `by` attribute the survey cannot be broken down by, and
    BreakdownRefusedError (a ValueError) for a breakdown whose groups would single out fewer
    than the minimum cell of people.
    """
    rule = rule or Rule()
    now = now or datetime.now(UTC)
    info = describe_survey(session, survey_id)
    by = tuple(by)
    _check_breakdown(info, by)
    snapshot = latest_snapshot(session, info, rule=rule, now=now)
    view = _SnapshotView(snapshot.cells if snapshot else _EMPTY, by, rule)
    dims = len(by)
    default = info.default_language

    rows: list[AggregateRow] = []
    funnel = protect(rp.funnel_table(view.funnel(), dims), rule)
    rows.extend(rp.table_rows(funnel, "", {}, reserved=False))

    per_question = view.questions()
    medians: dict[str, dict[Group, float | None]] = {}
    for question in info.questions:
        counts = per_question.get(question.id, {})
        labels = value_labels(info, question, default)
        values = list(labels)
        values += sorted({v for c in counts.values() for v in c} - set(values) - RESERVED)
        table = protect(rp.question_table(question.id, values, counts, dims), rule)
        rows.extend(rp.table_rows(table, _text(question.text, default), labels))
        if question.type == "number":
            medians[question.id] = rp.medians(table, question, rule)

    stops, stopped = view.stops()
    stops_table = protect(rp.stops_table(stops, stopped, [q.id for q in info.questions]), rule)
    return Report(
        survey=info,
        by=by,
        rule=rule.describe(),
        generated_at=now,
        snapshot=SnapshotInfo(snapshot.id, snapshot.taken_at) if snapshot else None,
        rows=rows,
        medians=medians,
        funnel_stops=rp.stops_json(stops_table),
    )


def take_snapshot(
    session: Session,
    survey_id: str,
    *,
    rule: Rule,
    requested_by: int | None,
    now: datetime | None = None,
) -> SnapshotInfo:
    """A new snapshot sooner than the daily one, asked by an admin; the caller commits.

    Raises SnapshotTooSoonError when fewer than the minimum cell have answered since the last.
    """
    info = describe_survey(session, survey_id)
    snapshot = take_snapshot_now(
        session, info, rule=rule, now=now or datetime.now(UTC), requested_by=requested_by
    )
    return SnapshotInfo(snapshot.id, snapshot.taken_at)


def take_daily_snapshot(
    session: Session, survey_id: str, *, rule: Rule, now: datetime | None = None
) -> SnapshotInfo | None:
    """The clock's snapshot of a survey, where one is due; the caller commits."""
    info = describe_survey(session, survey_id)
    snapshot = take_due_snapshot(session, info, rule=rule, now=now or datetime.now(UTC))
    return SnapshotInfo(snapshot.id, snapshot.taken_at) if snapshot else None


def surveys_with_results(session: Session) -> list[str]:
    """Every survey ever published (each may have results)."""
    return list(
        session.scalars(
            select(SurveyVersion.survey_id).distinct().order_by(SurveyVersion.survey_id)
        )
    )


def report_rule(config: Mapping[str, Any]) -> Rule:
    """The disclosure parameters from an app config."""
    return Rule(
        min_cell=int(config["ENGAGE_MIN_CELL"]),
        round_base=int(config["ENGAGE_ROUND_BASE"]),
        min_percent_base=int(config["ENGAGE_MIN_PERCENT_BASE"]),
    )


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
                f"survey {info.id} has no breakdown attribute {attribute!r}; valid: {names}", valid
            )
        if attribute in rp.LEADING_COLUMNS + rp.TRAILING_COLUMNS:
            raise BreakdownError(f"{attribute!r} clashes with a column name", valid)


_EMPTY: dict[str, Any] = {
    "attributes": [],
    "questions": [],
    "people": [],
    "funnel": [],
    "stops": [],
}


class _SnapshotView:
    """A snapshot's finest counts summed into the groups of one breakdown.

    Attribute values held by fewer than the minimum cell of respondents are merged into
    `_other` (with `_unknown`); a breakdown where `_other`, or a group of the pair, still holds
    1 to min_cell - 1 people is refused: `_all` minus the big groups would be those few.
    """

    def __init__(self, cells: Mapping[str, Any], by: tuple[str, ...], rule: Rule) -> None:
        self.cells = cells
        stored = list(cells.get("attributes", []))
        missing = [a for a in by if a not in stored]
        # An attribute the survey gained after the snapshot: nobody has a value in it yet.
        self.index = [stored.index(a) if a in stored else None for a in by]
        self.rule = rule
        self.by = by
        self.maps = [self._merge(i, attribute) for i, attribute in enumerate(by)]
        if missing:
            log.info("snapshot has no attribute %s: everyone is unknown", ", ".join(missing))
        self._check_groups()

    def _part(self, i: int, parts: Sequence[Any]) -> str:
        position = self.index[i]
        return UNKNOWN if position is None else str(parts[position])

    def _merge(self, i: int, attribute: str) -> dict[str, str]:
        sizes: Counter[str] = Counter()
        for *parts, count, _key in self.cells.get("people", []):
            sizes[self._part(i, parts)] += count
        return {
            value: value if size >= self.rule.min_cell and value != OTHER else OTHER
            for value, size in sizes.items()
        }

    def group(self, parts: Sequence[Any]) -> Group:
        """The breakdown group of a snapshot row's attribute values."""
        return tuple(
            mapping.get(self._part(i, parts), OTHER) for i, mapping in enumerate(self.maps)
        )

    def _check_groups(self) -> None:
        sizes: Counter[Group] = Counter()
        for *parts, count, _key in self.cells.get("people", []):
            group = self.group(parts)
            for parent in rp.parents(group, len(group)):
                sizes[parent] += count
        top = (ALL,) * len(self.by)
        small = [g for g, size in sizes.items() if self.rule.is_hidden(size) and g != top]
        if small:
            raise BreakdownRefusedError(
                f"this breakdown would single out fewer than {self.rule.min_cell} people "
                f"({len(small)} group(s), {OTHER} included, are that small)"
            )

    def questions(self) -> dict[str, dict[Group, dict[str, Cell]]]:
        """Per question and group: `_answered`, `_skipped`, `_asked` and each value."""
        result: dict[str, dict[Group, dict[str, Cell]]] = {}
        for question_id, kind, value, *parts, count, key in self.cells.get("questions", []):
            group = self.group(parts)
            counts = result.setdefault(question_id, {}).setdefault(group, {})
            names: list[str] = []
            if kind == ANSWERED_KIND:
                names = [ANSWERED, ASKED, *([str(value)] if value is not None else [])]
            elif kind == SKIPPED_KIND:
                names = [SKIPPED, ASKED]
            elif value is not None:
                names = [str(value)]
            for name in names:
                counts.setdefault(name, Cell(0)).add(count, key)
        return result

    def funnel(self) -> dict[Group, dict[str, Cell]]:
        """People per group at each stage of the funnel."""
        result: dict[Group, dict[str, Cell]] = {}
        for invited, consented, completed, *parts, count, key in self.cells.get("funnel", []):
            counts = result.setdefault(self.group(parts), {})
            stages = {"started": True, "invited": invited, "consented": consented}
            stages["completed"] = completed
            for stage, reached in stages.items():
                if reached:
                    counts.setdefault(stage, Cell(0)).add(count, key)
        return result

    def stops(self) -> tuple[dict[str, Cell], Cell]:
        """People by where they stopped, and all of them."""
        stops: dict[str, Cell] = {}
        total = Cell(0)
        for last_question, count, key in self.cells.get("stops", []):
            stops.setdefault(str(last_question), Cell(0)).add(count, key)
            total.add(count, key)
        return stops, total


# -- the staff responses file -------------------------------------------------------------------


def export_responses(
    session: Session, survey_id: str, *, secret_key: str, vault: Vault
) -> ResponsesExport:
    """One row per response (conversation with answers), streamed; for staff, never policy.

    Free-text answers are read with their contact's key (an erased contact's are gone).

    Raises SurveyNotFoundError at once; rows are read while the result is iterated, so the
    session must stay open until then.
    """
    info = describe_survey(session, survey_id)
    questions = {q.id: q for q in info.questions}
    columns = [*FIXED_COLUMNS, *questions]
    return ResponsesExport(
        survey_id, columns, _response_rows(session, survey_id, questions, secret_key, vault)
    )


def _response_rows(
    session: Session,
    survey_id: str,
    questions: Mapping[str, Question],
    secret_key: str,
    vault: Vault,
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
            # A free-text answer, under the contact's key, and that key.
            Answer.value["c"].as_string(),
            Contact.key_encrypted,
        )
        .join(Conversation, Conversation.id == Answer.conversation_id)
        .join(Contact, Contact.id == Answer.contact_id)
        .where(
            Answer.survey_id == survey_id,
            Answer.is_simulated.is_(False),
            Conversation.is_simulated.is_(False),
        )
        .order_by(Answer.conversation_id, Answer.id)
    )
    # Core rows (no ORM loading) and partitions with a size: with yield_per that streams, while
    # partitions() without one made psycopg buffer the whole result.
    result = session.connection().execute(stmt.execution_options(yield_per=STREAM_BATCH))
    rows = itertools.chain.from_iterable(result.partitions(STREAM_BATCH))
    types = {question_id: question.type for question_id, question in questions.items()}
    for _conversation, answers in itertools.groupby(rows, key=lambda row: row[0]):
        cells: dict[str, Any] = {}
        cipher = None
        for row in answers:
            _id, contact_id, question_id, status, text, answered_at, *conversation = row
            *conversation, encrypted, key_encrypted = conversation
            if encrypted is not None:
                # One conversation is one contact's: its key is unwrapped once.
                cipher = cipher or vault.contact_cipher(key_encrypted)
                text = cipher.decrypt(encrypted)
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
