"""From grouped counts to disclosure-controlled rows: the shape of every aggregate download."""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from engage.results.disclosure import ALL, ANSWERED, ASKED, SKIPPED, Cell, Group, Table, apply
from engage.survey.definition import Question

UNKNOWN = "_unknown"
FUNNEL = "_funnel"
FUNNEL_VALUES = ("invited", "started", "consented", "completed")
# A later stage is (mostly) a subset of an earlier one: a small difference between two shown
# stages would give away a small count, so the pairs are checked as well as the table's lines.
FUNNEL_CHAIN = (("started", "invited"), ("started", "consented"), ("consented", "completed"))
# Stopped conversations that never reached a question are keyed so.
STOPPED_BEFORE_QUESTIONS = "_none"
STOPPED = "_stopped"
# The fixed columns around the breakdown columns: never renamed, only ever added to.
LEADING_COLUMNS = ("question_id", "question")
TRAILING_COLUMNS = ("value", "label", "count", "percent", "suppressed")
RESERVED_ROW_ORDER = (ANSWERED, ASKED, SKIPPED)

Counts = Mapping[Group, Mapping[str, int]]


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


@dataclass
class Report:
    """An aggregate download before it is written: rows may be any iterable, read once."""

    survey: SurveyInfo
    by: tuple[str, ...]
    rule: dict[str, object]
    generated_at: datetime
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


def group_part(raw: object) -> str:
    """A profile value as a group name: missing (or empty) values form `_unknown`."""
    if raw is None or raw == "":
        return UNKNOWN
    return str(raw)


def group_key(group: Group) -> str:
    """How a group is named in JSON keys: `_all` without breakdown, else its parts joined by |."""
    return "|".join(group) if group else ALL


def roll_up(counts: Counts, dims: int) -> dict[Group, Counter[str]]:
    """Add every `_all` group (each attribute in turn, and both) by summing the finest groups."""
    # Each respondent's counted row sits in exactly one finest group, so the sums are exact.
    rolled: dict[Group, Counter[str]] = {}
    for group, values in counts.items():
        for parent in parents(group, dims):
            rolled.setdefault(parent, Counter()).update(values)
    return rolled


def parents(group: Group, dims: int) -> Iterable[Group]:
    """The group itself and each group that replaces some of its parts by `_all`."""
    for mask in itertools.product((False, True), repeat=dims):
        yield tuple(ALL if hide else part for part, hide in zip(group, mask, strict=True))


def ordered_groups(groups: Iterable[Group]) -> list[Group]:
    """`_all` first, then the values in order, `_unknown` last, attribute by attribute."""

    def key(group: Group) -> tuple[tuple[int, str], ...]:
        return tuple((0 if part == ALL else 2 if part == UNKNOWN else 1, part) for part in group)

    return sorted(groups, key=key)


def question_table(
    question_id: str,
    values: Sequence[str],
    counts: Counts,
    dims: int,
    *,
    overlapping: bool = False,
) -> Table:
    """A question's table: every group someone was asked in, every value (0 where nobody)."""
    rolled = roll_up(counts, dims)
    top: Group = (ALL,) * dims
    # The whole population is always a group, so a question nobody reached shows a true 0.
    rolled.setdefault(top, Counter())
    groups = ordered_groups(g for g, c in rolled.items() if c[ASKED] > 0 or g == top)
    cells = {
        (group, value): Cell(rolled[group][value])
        for group in groups
        for value in (*values, ANSWERED, ASKED, SKIPPED)
    }
    # `_skipped` holds every asked-but-not-answered row, so asked = answered + skipped exactly.
    return Table(question_id, groups, list(values), cells, overlapping, asked_partition=True)


def protect(table: Table, min_cell: int, min_percent_base: int) -> Table:
    """Disclosure control for a question's table, sparing `_answered` where `_asked` will do.

    A few skips (1 to min_cell - 1) must be hidden, and one more cell of `_asked = _answered +
    _skipped` with them. Left to itself the rule hides `_answered`, the base of every percent,
    so hide `_asked` first: apply() keeps hidden cells hidden and still checks every line.
    """
    for group in table.groups:
        if 1 <= table.cells[(group, SKIPPED)].count < min_cell:
            table.cells[(group, ASKED)].shown = False
    return apply(table, min_cell, min_percent_base)


def funnel_table(counts: Counts, dims: int, min_cell: int, min_percent_base: int) -> Table:
    """The completion funnel as a table, its stages protected against subtraction too."""
    rolled = roll_up(counts, dims)
    groups = ordered_groups(g for g, c in rolled.items() if c["started"] > 0)
    cells = {
        (group, value): Cell(rolled[group][value]) for group in groups for value in FUNNEL_VALUES
    }
    # Stages overlap like a multi's options: no stage is the sum of the others.
    table = Table(FUNNEL, groups, list(FUNNEL_VALUES), cells, overlapping=True)
    while True:
        apply(table, min_cell, min_percent_base)
        exposed = _exposed_stage(table, min_cell)
        if exposed is None:
            return table
        # Hidden cells stay hidden in apply(): each round hides one more, so this ends.
        table.cells[exposed].shown = False


def _exposed_stage(table: Table, min_cell: int) -> tuple[Group, str] | None:
    for group in table.groups:
        for wider, narrower in FUNNEL_CHAIN:
            a, b = table.cells[(group, wider)], table.cells[(group, narrower)]
            if a.shown and b.shown and 1 <= abs(a.count - b.count) < min_cell:
                return (group, narrower) if b.count > 0 else (group, wider)
    return None


def stops_table(stops: Mapping[str, int], order: Sequence[str]) -> Table:
    """Stopped conversations by the last question they answered, with their total."""
    keys = [k for k in (STOPPED_BEFORE_QUESTIONS, *order) if k in stops]
    keys += sorted(k for k in stops if k not in keys)
    group: Group = ()
    cells = {(group, key): Cell(stops[key]) for key in keys}
    cells[(group, ANSWERED)] = Cell(sum(stops.values()))
    return Table(STOPPED, [group], keys, cells)


def stops_json(table: Table) -> dict[str, Any]:
    """The `funnel_stops` object of the JSON download."""
    total = table.cells[((), ANSWERED)]
    return {
        "stopped": total.count if total.shown else None,
        "last_answered": {
            value: {
                "count": table.cells[((), value)].count if table.cells[((), value)].shown else None,
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
                count=cell.count if cell.shown else None,
                percent=cell.percent if cell.shown else None,
                suppressed=not cell.shown,
            )


def medians(
    table: Table, frequencies: Mapping[Group, Mapping[float, int]], dims: int, min_cell: int
) -> dict[Group, float | None]:
    """The median per group of a number question; None where its `_answered` is not shown."""
    rolled: dict[Group, Counter[float]] = {}
    for group, values in frequencies.items():
        for parent in parents(group, dims):
            rolled.setdefault(parent, Counter()).update(values)
    result: dict[Group, float | None] = {}
    for group in table.groups:
        answered = table.cells[(group, ANSWERED)]
        if not answered.shown or answered.count < min_cell or group not in rolled:
            result[group] = None
        else:
            result[group] = median(rolled[group])
    return result


def median(frequencies: Mapping[float, int]) -> float | None:
    """The median of values given with their counts (the mean of the middle two when even)."""
    total = sum(frequencies.values())
    if total == 0:
        return None
    ordered = sorted(frequencies.items())
    lower_rank, upper_rank = (total - 1) // 2, total // 2
    lower = upper = None
    seen = 0
    for value, count in ordered:
        if lower is None and seen + count > lower_rank:
            lower = value
        if seen + count > upper_rank:
            upper = value
            break
        seen += count
    assert lower is not None and upper is not None
    result = (lower + upper) / 2
    return int(result) if float(result).is_integer() else round(result, 2)


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
