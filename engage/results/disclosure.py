"""Disclosure control for published tables: a minimum cell and random rounding by cell key.

The cell key method of the Australian Bureau of Statistics (Thompson, Broadfoot and Elazar 2013),
as the UK's ONS applies it to its flexible census tables: every respondent has a random record key
from 0 to 255, and a count's cell key is the sum of the record keys of the people it counts,
modulo 256. Here the cell key decides which way a count is rounded to a multiple of the base, so
the same people give the same published number in every table of a snapshot, while a table that
counts one person more or less may round the other way. Counts from 1 to `min_cell - 1` are never
published, and a published count is never below `min_cell` rounded up to the base.

Per-table suppression with complementary cells was not enough: hidden counts were recovered by
comparing a `when` question's `_asked` with the question it depends on, and by comparing downloads
with different breakdowns. Rounding gives every published count an uncertainty that sums and
differences only widen.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

ALL = "_all"
OTHER = "_other"
ANSWERED = "_answered"
ASKED = "_asked"
SKIPPED = "_skipped"
RESERVED = frozenset({ANSWERED, ASKED, SKIPPED})

DEFAULT_MIN_CELL = 11
DEFAULT_ROUND_BASE = 5
DEFAULT_MIN_PERCENT_BASE = 30
KEY_RANGE = 256

Group = tuple[str, ...]
CellKey = tuple[Group, str]


@dataclass(frozen=True)
class Rule:
    """The parameters of disclosure control, as configured (ENGAGE_MIN_CELL, …)."""

    min_cell: int = DEFAULT_MIN_CELL
    round_base: int = DEFAULT_ROUND_BASE
    min_percent_base: int = DEFAULT_MIN_PERCENT_BASE

    def __post_init__(self) -> None:
        if self.min_cell < 2:
            raise ValueError(f"min_cell must be at least 2, not {self.min_cell}")
        if self.round_base < 1:
            raise ValueError(f"round_base must be at least 1, not {self.round_base}")
        if self.min_percent_base < 0:
            raise ValueError(f"min_percent_base must not be negative, not {self.min_percent_base}")

    @property
    def smallest_published(self) -> int:
        """The smallest non-zero count ever published: min_cell rounded up to the base."""
        return math.ceil(self.min_cell / self.round_base) * self.round_base

    def is_hidden(self, count: int) -> bool:
        """Whether a true count is too small to publish (zero is not: true zeros are shown)."""
        return 0 < count < self.min_cell

    def publish(self, count: int, cell_key: int) -> int | None:
        """The published value of a count with its cell key: None when hidden."""
        if count < 0:
            raise ValueError(f"negative count {count}")
        if count == 0:
            return 0
        if self.is_hidden(count):
            return None
        remainder = count % self.round_base
        # Up with probability remainder/base over uniform cell keys: unbiased on average, and
        # the same people (the same key) always round the same way.
        is_up = (cell_key % KEY_RANGE) * self.round_base < remainder * KEY_RANGE
        rounded = count - remainder + (self.round_base if is_up else 0)
        return max(rounded, self.smallest_published)

    def describe(self) -> dict[str, object]:
        """The rule and its parameters as written into every download."""
        return {
            "name": "cell key random rounding with a minimum cell",
            "min_cell": self.min_cell,
            "round_base": self.round_base,
            "smallest_published": self.smallest_published,
            "min_percent_base": self.min_percent_base,
            "text": (
                f"Counts from 1 to {self.min_cell - 1} are hidden. Every other count is rounded "
                f"at random to a multiple of {self.round_base} (the same way in every download "
                f"of a snapshot) and never published below {self.smallest_published}; true "
                f"zeros stay 0. Within a table, a group smaller than {self.min_cell} is hidden "
                f"whole, and so is a group that, with the hidden ones, would single them out. "
                f"Attribute values held by fewer than {self.min_cell} respondents are merged "
                f"into {OTHER}; a breakdown that would still single out fewer is refused. "
                f"Percentages and medians come from published counts, only where the group's "
                f"published {ANSWERED} is at least {self.min_percent_base}. Published numbers "
                f"need not add up."
            ),
        }


@dataclass
class Cell:
    """One true count with its cell key, and what is published of it."""

    count: int
    key: int = 0
    shown: bool = True
    published: int | None = None
    percent: float | None = None

    def add(self, count: int, key: int) -> None:
        self.count += count
        self.key = (self.key + key) % KEY_RANGE


@dataclass
class Table:
    """One table's cells by group and value.

    `size` names the value that says how many people a group holds in this table (`_asked` for a
    question, `started` for the funnel); `base` the value percentages are shares of, if any.
    """

    question_id: str
    groups: list[Group]
    values: list[str]
    cells: dict[CellKey, Cell]
    size: str | None = ASKED
    base: str | None = ANSWERED


def protect(table: Table, rule: Rule) -> Table:
    """Hide small groups and small counts, round the rest, set percentages; returns the table."""
    hidden_groups = _hidden_groups(table, rule)
    for (group, value), cell in table.cells.items():
        if group in hidden_groups or _is_in_hidden_base(table, group, value, rule):
            cell.shown = False
            cell.published = None
        else:
            cell.published = rule.publish(cell.count, cell.key)
            cell.shown = cell.published is not None
    _set_percents(table, rule)
    return table


def _is_in_hidden_base(table: Table, group: Group, value: str, rule: Rule) -> bool:
    """A value of a group whose base is hidden: its zeros would tell what the few answered."""
    if table.base is None or value in RESERVED or value == table.base:
        return False
    base = table.cells.get((group, table.base))
    return base is not None and rule.is_hidden(base.count)


def _hidden_groups(table: Table, rule: Rule) -> set[Group]:
    """Groups hidden whole in this table: the small ones, and a lone shown sibling of them.

    A group of 1 to min_cell - 1 people is hidden with its zeros (a hidden group's 0 would say
    what all of it answered). And where a parent (`_all` in one attribute) splits into hidden
    groups of a few people and only one shown group, the parent and that group would differ by
    those few people alone: whether their published numbers differ would give them away, so that
    group is hidden too.
    """
    if table.size is None:
        return set()
    sizes = {group: table.cells[(group, table.size)].count for group in table.groups}
    hidden = {group for group, size in sizes.items() if rule.is_hidden(size)}
    changed = True
    while changed:
        changed = False
        for _parent, children in _splits(table.groups):
            shown = [child for child in children if child not in hidden]
            hidden_people = sum(sizes[child] for child in children if child in hidden)
            if len(shown) == 1 and rule.is_hidden(hidden_people):
                hidden.add(shown[0])
                changed = True
    return hidden


def _splits(groups: list[Group]) -> Iterable[tuple[Group, list[Group]]]:
    """Each group with `_all` in some attribute and the groups that split it there."""
    for parent in groups:
        for dim, part in enumerate(parent):
            if part != ALL:
                continue
            children = [
                group
                for group in groups
                if group[dim] != ALL
                and group[:dim] == parent[:dim]
                and group[dim + 1 :] == parent[dim + 1 :]
            ]
            if children:
                yield parent, children


def _set_percents(table: Table, rule: Rule) -> None:
    """Shares of the group's published base, from published counts, capped at 100."""
    for (group, value), cell in table.cells.items():
        cell.percent = None
        if table.base is None or value in RESERVED or value == table.base or not cell.shown:
            continue
        base = table.cells.get((group, table.base))
        if base is None or base.published is None:
            continue
        if base.published < max(rule.min_percent_base, 1):
            continue
        cell.percent = min(100.0, round(100 * (cell.published or 0) / base.published, 1))
