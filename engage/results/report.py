"""From grouped counts to disclosure-controlled rows: the shape of every aggregate download."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from engage.results.disclosure import (
    ALL,
    ANSWERED,
    ASKED,
    OTHER,
    SKIPPED,
    Cell,
    CellKey,
    Group,
    Rule,
    Table,
)
from engage.survey.definition import Question

UNKNOWN = "_unknown"
FUNNEL = "_funnel"
FUNNEL_VALUES = ("invited", "started", "consented", "completed")
# Stopped conversations that never reached a question are keyed so.
STOPPED_BEFORE_QUESTIONS = "_none"
STOPPED = "_stopped"
# The fixed columns around the breakdown columns: never renamed, only ever added to.
LEADING_COLUMNS = ("question_id", "question")
TRAILING_COLUMNS = ("value", "label", "count", "percent", "suppressed")
RESERVED_ROW_ORDER = (ANSWERED, ASKED, SKIPPED)

Counts = Mapping[Group, Mapping[str, Cell]]


class BreakdownError(ValueError):
    """A breakdown attribute the survey does not have (or too many of them)."""

    def __init__(self, message: str, valid: Sequence[str]) -> None:
        super().__init__(message)
        self.valid = tuple(valid)


@dataclass(frozen=True)
class AggregateRow:
    """One line of the aggregate CSV: a question, a group, a value and its (maybe hidden) count."""

    question_id: str
    question: str
    group: Group
    value: str
    label: str
    count: int | None
    percent: float | None
    suppressed: bool


@dataclass(frozen=True)
class SurveyVersionInfo:
    version: str
    published_at: datetime
    is_current: bool


@dataclass(frozen=True)
class SurveyInfo:
    """What a download says about its survey: ids, texts, versions; never an answer."""

    id: str
    title: str
    default_language: str
    languages: tuple[str, ...]
    versions: tuple[SurveyVersionInfo, ...]
    # Every question of every version, the current wording first (the codebook).
    questions: tuple[Question, ...] = ()
    # Labels of yes/no answers per language, e.g. {"es": {"yes": "Sí", "no": "No"}}.
    yes_no_labels: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    # The title in each of the survey's languages (`title` is the default language's).
    titles: Mapping[str, str] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        """The `survey` object of the JSON download."""
        return {
            "id": self.id,
            "title": self.title,
            "default_language": self.default_language,
            "languages": list(self.languages),
            "versions": [
                {
                    "version": v.version,
                    "published_at": v.published_at.isoformat(),
                    "is_current": v.is_current,
                }
                for v in self.versions
            ],
        }


@dataclass(frozen=True)
class SnapshotInfo:
    """Which snapshot a download's numbers come from."""

    id: int
    taken_at: datetime


class BreakdownRefusedError(BreakdownError):
    """A breakdown whose groups would single out fewer than the minimum cell of people."""

    def __init__(self, message: str) -> None:
        super().__init__(message, ())


@dataclass
class Report:
    """An aggregate download before it is written: rows may be any iterable, read once."""

    survey: SurveyInfo
    by: tuple[str, ...]
    rule: dict[str, object]
    generated_at: datetime
    snapshot: SnapshotInfo | None
    rows: Iterable[AggregateRow]
    # question id -> group -> median, None where the group's answers are too few or hidden.
    medians: dict[str, dict[Group, float | None]] = field(default_factory=dict)
    # Where stopped conversations stopped: counts under disclosure control, None where hidden.
    funnel_stops: dict[str, Any] = field(default_factory=dict)

    @property
    def columns(self) -> list[str]:
        return aggregate_columns(self.by)


def aggregate_columns(by: Sequence[str]) -> list[str]:
    """The aggregate CSV's header for these breakdown attributes."""
    return [*LEADING_COLUMNS, *by, *TRAILING_COLUMNS]


def group_key(group: Group) -> str:
    """How a group is named in JSON keys: `_all` without breakdown, else its parts joined by |."""
    return "|".join(group) if group else ALL


def roll_up(counts: Counts, dims: int) -> dict[Group, dict[str, Cell]]:
    """Add every `_all` group (each attribute in turn, and both) by summing the finest groups.

    Counts and cell keys both add up: each respondent's counted row sits in exactly one finest
    group, so a parent's count and key are those of the people it counts.
    """
    rolled: dict[Group, dict[str, Cell]] = {}
    for group, values in counts.items():
        for parent in parents(group, dims):
            target = rolled.setdefault(parent, {})
            for value, cell in values.items():
                target.setdefault(value, Cell(0)).add(cell.count, cell.key)
    return rolled


def parents(group: Group, dims: int) -> Iterable[Group]:
    """The group itself and each group that replaces some of its parts by `_all`."""
    for mask in itertools.product((False, True), repeat=dims):
        yield tuple(ALL if hide else part for part, hide in zip(group, mask, strict=True))


def ordered_groups(groups: Iterable[Group]) -> list[Group]:
    """`_all` first, then the values in order, `_unknown` and `_other` last, attribute by
    attribute."""

    def key(group: Group) -> tuple[tuple[int, str], ...]:
        return tuple(
            (0 if part == ALL else 2 if part == UNKNOWN else 3 if part == OTHER else 1, part)
            for part in group
        )

    return sorted(groups, key=key)


def _cells(
    rolled: Mapping[Group, Mapping[str, Cell]], groups: Sequence[Group], values: Iterable[str]
) -> dict[CellKey, Cell]:
    names = tuple(values)
    cells: dict[CellKey, Cell] = {}
    for group in groups:
        found = rolled.get(group, {})
        for value in names:
            cell = found.get(value)
            cells[(group, value)] = Cell(cell.count, cell.key) if cell else Cell(0)
    return cells


def question_table(question_id: str, values: Sequence[str], counts: Counts, dims: int) -> Table:
    """A question's table: every group someone was asked in, every value (0 where nobody)."""
    rolled = roll_up(counts, dims)
    top: Group = (ALL,) * dims
    # The whole population is always a group, so a question nobody reached shows a true 0.
    rolled.setdefault(top, {})
    asked = Cell(0)
    groups = ordered_groups(
        g for g, c in rolled.items() if c.get(ASKED, asked).count > 0 or g == top
    )
    cells = _cells(rolled, groups, (*values, ANSWERED, ASKED, SKIPPED))
    return Table(question_id, groups, list(values), cells)


def funnel_table(counts: Counts, dims: int) -> Table:
    """The completion funnel: people at each stage, per group."""
    rolled = roll_up(counts, dims)
    groups = ordered_groups(g for g, c in rolled.items() if c.get("started", Cell(0)).count > 0)
    cells = _cells(rolled, groups, FUNNEL_VALUES)
    # Stages overlap like a multi's options: none is a share of another.
    return Table(FUNNEL, groups, list(FUNNEL_VALUES), cells, size="started", base=None)


def stops_table(stops: Mapping[str, Cell], total: Cell, order: Sequence[str]) -> Table:
    """People whose conversation ended without completing, by the last question answered."""
    keys = [k for k in (STOPPED_BEFORE_QUESTIONS, *order) if k in stops]
    keys += sorted(k for k in stops if k not in keys)
    group: Group = ()
    cells = {(group, key): Cell(stops[key].count, stops[key].key) for key in keys}
    cells[(group, ANSWERED)] = Cell(total.count, total.key)
    return Table(STOPPED, [group], keys, cells, size=None)


def stops_json(table: Table) -> dict[str, Any]:
    """The `funnel_stops` object of the JSON download."""
    total = table.cells[((), ANSWERED)]
    return {
        "stopped": total.published,
        "last_answered": {
            value: {
                "count": table.cells[((), value)].published,
                "percent": table.cells[((), value)].percent,
            }
            for value in table.values
        },
    }


def table_rows(
    table: Table,
    question: str,
    labels: Mapping[str, str],
    *,
    reserved: bool = True,
) -> Iterable[AggregateRow]:
    """The rows of one table after disclosure control: reserved values first, then the values."""
    order = (*RESERVED_ROW_ORDER, *table.values) if reserved else tuple(table.values)
    for group in table.groups:
        for value in order:
            cell = table.cells.get((group, value))
            if cell is None:
                continue
            yield AggregateRow(
                question_id=table.question_id,
                question=question,
                group=group,
                value=value,
                label=labels.get(value, ""),
                count=cell.published,
                percent=cell.percent,
                suppressed=not cell.shown,
            )


def medians(table: Table, question: Question, rule: Rule) -> dict[Group, float | None]:
    """The median per group of a number question, from its published ranges.

    Only for groups whose published `_answered` is at least the percentage base; hidden ranges
    count as nothing, since only published numbers go in (the median of the answers themselves
    would be one worker's answer). Linear within the range holding the middle; None where that
    range is open-ended.
    """
    ranges = bin_labels(question)
    result: dict[Group, float | None] = {}
    for group in table.groups:
        answered = table.cells[(group, ANSWERED)].published
        if not ranges or answered is None or answered < max(rule.min_percent_base, 1):
            result[group] = None
            continue
        published = [table.cells[(group, label)].published or 0 for _low, _high, label in ranges]
        result[group] = grouped_median(
            [
                (low, high, count)
                for (low, high, _label), count in zip(ranges, published, strict=True)
            ]
        )
    return result


def grouped_median(ranges: Sequence[tuple[float | None, float | None, int]]) -> float | None:
    """The median of counts given by range (low, high-exclusive, count), interpolated."""
    total = sum(count for _low, _high, count in ranges)
    if total == 0:
        return None
    half = total / 2
    seen = 0
    for low, high, count in ranges:
        if count and seen + count >= half:
            if low is None or high is None:
                return None
            result = low + (half - seen) / count * (high - low)
            return int(result) if float(result).is_integer() else round(result, 1)
        seen += count
    return None


def bin_labels(question: Question) -> list[tuple[float | None, float | None, str]]:
    """A number question's ranges as (low, high-exclusive, label): `20-39`, last `80+`/`80-120`."""
    edges = list(question.bins)
    if not edges:
        return []
    ranges: list[tuple[float | None, float | None, str]] = []
    if question.min is None or question.min < edges[0]:
        ranges.append((None, edges[0], f"<{_number(edges[0])}"))
    for low, high in itertools.pairwise(edges):
        if float(low).is_integer() and float(high).is_integer():
            label = f"{_number(low)}-{_number(high - 1)}"
        else:
            label = f"{_number(low)}-<{_number(high)}"
        ranges.append((low, high, label))
    last = edges[-1]
    if question.max is not None and question.max > last:
        ranges.append((last, None, f"{_number(last)}-{_number(question.max)}"))
    elif question.max is not None and question.max == last:
        ranges.append((last, None, _number(last)))
    else:
        ranges.append((last, None, f"{_number(last)}+"))
    return ranges


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)
