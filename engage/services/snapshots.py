"""Result snapshots: a survey's grouped counts, frozen, so that downloads cannot be differenced.

Two downloads a few minutes apart would otherwise differ only in the cells of the one new
respondent. So every aggregate is computed from a snapshot: the counts as they stood when it was
taken, stored, and never changed. A new one is taken at most once a day, and only once at least
`min_cell` new respondents have answered since the last (an admin may ask sooner, under the same
minimum). Taking one costs several GROUP BY queries over the survey's answers, so the clock takes
them, not the downloads: a download only reads the newest (bench/results_bench.py).

A snapshot stores counts by the finest groups of every breakdown attribute at once, each with
the sum of its people's record keys: any breakdown's counts and cell keys are sums of these.
Group values are a question's own values only (anything else is `_other`), so no free text is
ever stored in a snapshot.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    SQLColumnExpression,
    and_,
    case,
    distinct,
    func,
    literal,
    null,
    or_,
    select,
    true,
)
from sqlalchemy.orm import Session
from sqlalchemy.sql import Subquery

from engage.models import Answer, Conversation, ResultSnapshot, SurveyVersion
from engage.results.disclosure import KEY_RANGE, OTHER, Rule
from engage.results.report import STOPPED_BEFORE_QUESTIONS, UNKNOWN, SurveyInfo, bin_labels

log = logging.getLogger(__name__)

SNAPSHOT_INTERVAL = timedelta(days=1)
ANSWERED_STATUSES = ("answered", "profile")
UNANSWERED_STATUSES = ("skipped", "missed")
# Conversations that ended without completing: where they stopped is worth knowing.
STOPPED_STATUSES = ("abandoned", "declined", "expired", "opted_out")
# Kinds of question rows in a snapshot: answered (with its value), skipped, and a multi's option.
ANSWERED_KIND, SKIPPED_KIND, OPTION_KIND = "a", "s", "o"
BREAKDOWN_TYPES = ("choice", "yes_no")


class SnapshotTooSoonError(RuntimeError):
    """Too few new respondents since the last snapshot for another one."""


def breakdown_values(info: SurveyInfo) -> dict[str, tuple[str, ...]]:
    """Attributes a survey can be broken down by, each with the values a group may take.

    Only profile keys that a `choice` or `yes_no` question asks, and only that question's
    values: a free-text answer can never become a group name.
    """
    values: dict[str, list[str]] = {}
    for question in info.questions:
        if question.profile and question.type in BREAKDOWN_TYPES:
            known = values.setdefault(question.profile, [])
            names = (
                [c.value for c in question.choices] if question.type == "choice" else ["yes", "no"]
            )
            known.extend(v for v in names if v not in known)
    return {attribute: tuple(values[attribute]) for attribute in sorted(values)}


def profile_questions(info: SurveyInfo) -> dict[str, tuple[str, ...]]:
    """Per breakdown attribute, the ids of the questions that save it."""
    found: dict[str, list[str]] = {}
    for question in info.questions:
        if question.profile and question.type in BREAKDOWN_TYPES:
            found.setdefault(question.profile, []).append(question.id)
    return {attribute: tuple(ids) for attribute, ids in found.items()}


def latest_snapshot(
    session: Session, info: SurveyInfo, *, rule: Rule, now: datetime
) -> ResultSnapshot | None:
    """The snapshot downloads read: the newest one.

    Snapshots are taken by the clock (`take_due_snapshot`) and by admins, off the download; only
    a survey that has none yet gets its first one here, once enough people have answered.
    None until then. The caller commits.
    """
    newest = _newest(session, info.id)
    if newest is not None:
        return newest
    return _take(session, info, rule=rule, now=now)


def take_due_snapshot(
    session: Session, info: SurveyInfo, *, rule: Rule, now: datetime
) -> ResultSnapshot | None:
    """The clock's daily snapshot, when a day has passed and enough new people answered."""
    newest = _newest(session, info.id)
    if newest is not None and now - newest.taken_at < SNAPSHOT_INTERVAL:
        return None
    return _take(session, info, rule=rule, now=now, after_day=True)


def take_snapshot_now(
    session: Session, info: SurveyInfo, *, rule: Rule, now: datetime, requested_by: int | None
) -> ResultSnapshot:
    """An admin's snapshot, sooner than the daily one but under the same minimum of people.

    Raises SnapshotTooSoonError when fewer than the minimum cell answered since the last.
    """
    snapshot = _take(session, info, rule=rule, now=now, requested_by=requested_by, strict=True)
    assert snapshot is not None  # strict: refused with an error instead
    return snapshot


def _take(
    session: Session,
    info: SurveyInfo,
    *,
    rule: Rule,
    now: datetime,
    after_day: bool = False,
    requested_by: int | None = None,
    strict: bool = False,
) -> ResultSnapshot | None:
    """A new snapshot if at least min_cell people answered since the last one, else None (or
    SnapshotTooSoonError when `strict`)."""
    # One taker at a time per survey: two snapshots moments apart would differ by a person.
    # (SQLite's transactions already hold the write lock from BEGIN.)
    session.execute(
        select(SurveyVersion.id).where(SurveyVersion.survey_id == info.id).with_for_update()
    )
    newest = _newest(session, info.id)
    if newest is not None and after_day and now - newest.taken_at < SNAPSHOT_INTERVAL:
        return None  # another taker was first
    since = newest.max_answer_id if newest is not None else 0
    new_respondents = _respondents_since(session, info.id, since)
    if new_respondents < rule.min_cell:
        if strict:
            raise SnapshotTooSoonError(
                f"{new_respondents} new respondent(s) since the last snapshot; a new one "
                f"needs at least {rule.min_cell}"
            )
        return None
    max_answer_id = _max_answer_id(session, info.id)
    cells = count_cells(session, info)
    snapshot = ResultSnapshot(
        survey_id=info.id,
        taken_at=now,
        max_answer_id=max_answer_id,
        respondents=sum(row[-2] for row in cells["people"]),
        requested_by=requested_by,
        cells=cells,
    )
    session.add(snapshot)
    session.flush()
    log.info("survey %s: snapshot %s taken", info.id, snapshot.id)
    return snapshot


def _newest(session: Session, survey_id: str) -> ResultSnapshot | None:
    return session.scalars(
        select(ResultSnapshot)
        .where(ResultSnapshot.survey_id == survey_id)
        .order_by(ResultSnapshot.taken_at.desc(), ResultSnapshot.id.desc())
        .limit(1)
    ).first()


def _respondents_since(session: Session, survey_id: str, after_id: int) -> int:
    """People with answer rows written after this answer id."""
    if after_id == 0:
        # Everyone so far: a conversation that got an answer row has its last question set,
        # and conversations are a tenth of the answers.
        stmt = select(func.count(distinct(Conversation.contact_id))).where(
            Conversation.survey_id == survey_id,
            Conversation.is_simulated.is_(False),
            Conversation.last_question_id.is_not(None),
        )
    else:
        stmt = select(func.count(distinct(Answer.contact_id))).where(
            Answer.id > after_id, Answer.survey_id == survey_id, Answer.is_simulated.is_(False)
        )
    return int(session.scalar(stmt) or 0)


def _max_answer_id(session: Session, survey_id: str) -> int:
    return int(
        session.scalar(select(func.max(Answer.id)).where(Answer.survey_id == survey_id)) or 0
    )


# -- counting ------------------------------------------------------------------------------------


def count_cells(session: Session, info: SurveyInfo) -> dict[str, Any]:
    """Every count a download may need, by the finest groups, with record key sums.

    `people` are the respondents (people past consent) by their latest attribute values: the
    sizes of the groups.

    {"attributes": [a, …], "questions": [[question, kind, value, g…, n, key], …],
     "people": [[g…, n, key], …], "funnel": [[invited, consented, completed, g…, n, key], …],
     "stops": [[last question, n, key], …]}
    """
    counter = _Counter(session, info)
    funnel = counter.funnel()
    return {
        "attributes": list(counter.attributes),
        "questions": counter.questions() + counter.options(),
        "people": _respondents(funnel),
        "funnel": funnel,
        "stops": counter.stops(),
    }


def _respondents(funnel: list[list[Any]]) -> list[list[Any]]:
    """Respondents by group, from the funnel: the people who got past consent (a conversation
    whose last question is set has answer rows)."""
    people: dict[tuple[Any, ...], list[int]] = {}
    for _invited, consented, _completed, *parts, count, key in funnel:
        if consented:
            total = people.setdefault(tuple(parts), [0, 0])
            total[0] += count
            total[1] = (total[1] + key) % KEY_RANGE
    return [[*parts, count, key] for parts, (count, key) in people.items()]


def _group(raw: ColumnElement[Any], valid: Sequence[str]) -> ColumnElement[Any]:
    """A profile value as a group: one of the question's values, `_unknown`, else `_other`."""
    return case(
        (raw.is_(None), literal(UNKNOWN)),
        (raw == "", literal(UNKNOWN)),
        (raw.in_(list(valid)), raw),
        else_=literal(OTHER),
    )


def _counted(columns: Sequence[ColumnElement[Any]], key: SQLColumnExpression[int]) -> Select[Any]:
    """Count rows grouped by these columns, with the sum of their record keys."""
    return select(*columns, func.count(), func.sum(key)).group_by(*columns)


def _rows(session: Session, stmt: Select[Any]) -> list[list[Any]]:
    """Rows as lists, the last two (count, key sum) as a count and a key modulo 256."""
    return [
        [*row[:-2], int(row[-2]), int(row[-1] or 0) % KEY_RANGE] for row in session.execute(stmt)
    ]


class _Counter:
    """The GROUP BY queries of one snapshot."""

    def __init__(self, session: Session, info: SurveyInfo) -> None:
        self.session = session
        self.info = info
        self.values = breakdown_values(info)
        self.attributes = tuple(self.values)
        self.dialect = session.get_bind().dialect.name

    def _latest(self) -> Subquery:
        """Each respondent's latest row per question, with its groups at answer time."""
        return (
            select(
                Answer.contact_id,
                Answer.question_id,
                Answer.status,
                Answer.value,
                Answer.record_key,
                *(
                    _group(Answer.profile[a].as_string(), self.values[a]).label(f"g{i}")
                    for i, a in enumerate(self.attributes)
                ),
            )
            .where(
                Answer.survey_id == self.info.id,
                Answer.is_simulated.is_(False),
                Answer.is_latest.is_(True),
            )
            .subquery("latest")
        )

    def questions(self) -> list[list[Any]]:
        """Per question, group and kind: answered rows by value, skipped rows.

        The value is the choice or yes/no, or the number's range; none for text (never read)
        and multi (its options are counted apart).
        """
        latest = self._latest()
        c = latest.c
        number = c.value["v"].as_float()
        whens: list[tuple[ColumnElement[bool], ColumnElement[Any]]] = []
        scalar_ids = [q.id for q in self.info.questions if q.type in ("choice", "yes_no")]
        if scalar_ids:
            whens.append((c.question_id.in_(scalar_ids), c.value["v"].as_string()))
        for question in self.info.questions:
            ranges = bin_labels(question) if question.type == "number" else []
            if ranges:
                edges = [(number < high, label) for _low, high, label in ranges[:-1]]
                bins = case((number.is_(None), null()), *edges, else_=ranges[-1][2])
                whens.append((c.question_id == question.id, bins))
        answered = c.status.in_(ANSWERED_STATUSES)
        value = case((answered, case(*whens) if whens else null()), else_=null())
        kind = case((answered, ANSWERED_KIND), else_=SKIPPED_KIND)
        inner = (
            select(
                c.question_id,
                kind.label("kind"),
                value.label("val"),
                *self._groups(latest),
                c.record_key,
            )
            .where(c.status.in_(ANSWERED_STATUSES + UNANSWERED_STATUSES))
            .subquery()
        )
        columns = [inner.c.question_id, inner.c.kind, inner.c.val, *self._groups(inner)]
        return _rows(self.session, _counted(columns, inner.c.record_key))

    def options(self) -> list[list[Any]]:
        """Per multi question, group and option: the people who chose it."""
        ids = [q.id for q in self.info.questions if q.type == "multi"]
        if not ids:
            return []
        latest = self._latest()
        c = latest.c
        if self.dialect == "postgresql":
            options = func.jsonb_array_elements_text(c.value["v"]).table_valued("value")
            is_list = func.jsonb_typeof(c.value["v"]) == "array"
        else:
            options = func.json_each(c.value, "$.v").table_valued("value")
            is_list = func.json_type(c.value, "$.v") == "array"
        option = options.alias("opt")
        columns = [c.question_id, literal(OPTION_KIND), option.c.value, *self._groups(latest)]
        stmt = (
            _counted(columns, c.record_key)
            .select_from(latest)
            .join(option, true())
            .where(c.status.in_(ANSWERED_STATUSES), c.question_id.in_(ids), is_list)
        )
        return _rows(self.session, stmt)

    def _groups(self, source: Any) -> list[ColumnElement[Any]]:
        return [source.c[f"g{i}"] for i in range(len(self.attributes))]

    def _with_groups(
        self, base: Subquery, columns: Sequence[ColumnElement[Any]], name: str
    ) -> Subquery:
        """Join each person of `base` (by contact_id) to their latest value of every
        attribute (their latest answer to the question that saves it); missing values are
        `_unknown`."""
        owners = profile_questions(self.info)
        stmt = select(base.c.contact_id, *columns)
        joined: Any = base
        for i, attribute in enumerate(self.attributes):
            # Grouped by person even where one question saves the attribute (one latest row
            # each): SQLite then materializes it and joins each person by an automatic index on
            # contact_id; as a plain subquery it searched every answer to the question once per
            # person (minutes for 100,000 people).
            value = (
                select(Answer.contact_id, func.max(Answer.value["v"].as_string()).label("v"))
                .where(
                    Answer.survey_id == self.info.id,
                    Answer.is_simulated.is_(False),
                    Answer.is_latest.is_(True),
                    Answer.status.in_(ANSWERED_STATUSES),
                    Answer.question_id.in_(owners[attribute]),
                )
                .group_by(Answer.contact_id)
                .subquery(f"p{i}")
            )
            joined = joined.outerjoin(value, value.c.contact_id == base.c.contact_id)
            stmt = stmt.add_columns(_group(value.c.v, self.values[attribute]).label(f"g{i}"))
        return stmt.select_from(joined).subquery(name)

    def funnel(self) -> list[list[Any]]:
        """People by the stages they reached (invited, consented, completed) and groups."""

        def reached(condition: ColumnElement[bool]) -> ColumnElement[int]:
            return func.max(case((condition, 1), else_=0))

        completed = Conversation.status == "completed"
        per_person = (
            select(
                Conversation.contact_id,
                func.max(Conversation.record_key).label("record_key"),
                reached(Conversation.is_invited.is_(True)).label("invited"),
                reached(or_(Conversation.last_question_id.is_not(None), completed)).label(
                    "consented"
                ),
                reached(completed).label("completed"),
            )
            .where(Conversation.survey_id == self.info.id, Conversation.is_simulated.is_(False))
            .group_by(Conversation.contact_id)
            .subquery("per_person")
        )
        stages = [per_person.c.invited, per_person.c.consented, per_person.c.completed]
        people = self._with_groups(per_person, [per_person.c.record_key, *stages], "funnel")
        columns = [people.c.invited, people.c.consented, people.c.completed, *self._groups(people)]
        return _rows(self.session, _counted(columns, people.c.record_key))

    def stops(self) -> list[list[Any]]:
        """People whose latest stopped conversation ended without completing, by the last
        question it got an answer to."""
        stopped = and_(
            Conversation.survey_id == self.info.id,
            Conversation.is_simulated.is_(False),
            Conversation.status.in_(STOPPED_STATUSES),
        )
        latest = select(func.max(Conversation.id)).where(stopped).group_by(Conversation.contact_id)
        last = func.coalesce(Conversation.last_question_id, STOPPED_BEFORE_QUESTIONS)
        stmt = _counted([last], Conversation.record_key).where(Conversation.id.in_(latest))
        return _rows(self.session, stmt)
