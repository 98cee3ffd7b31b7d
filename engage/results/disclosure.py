"""Disclosure control for one results table: minimum cell, complementary suppression, percents."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

ALL = "_all"
ANSWERED = "_answered"
ASKED = "_asked"
SKIPPED = "_skipped"
RESERVED = frozenset({ANSWERED, ASKED, SKIPPED})

DEFAULT_MIN_CELL = 11
DEFAULT_MIN_PERCENT_BASE = 30

Group = tuple[str, ...]
CellKey = tuple[Group, str]


@dataclass
class Cell:
    """One count of a table, whether it may be shown, and its share of the group's answers."""

    count: int
    shown: bool = True
    percent: float | None = None


@dataclass
class Table:
    """One question's counts by group and value, with the reserved `_answered`, `_asked` cells.

    `values` are the answer values in order; apart from `_skipped` (allowed in the list, never
    part of the partition) they add up to the group's `_answered` unless `overlapping` (multi).
    `asked_partition` says that `_asked = _answered + _skipped` holds exactly, so it is a line too.
    """

    question_id: str
    groups: list[Group]
    values: list[str]
    cells: dict[CellKey, Cell]
    overlapping: bool = False
    asked_partition: bool = False


@dataclass(frozen=True)
class _Line:
    total: CellKey
    members: tuple[CellKey, ...]


def describe_rule(
    min_cell: int = DEFAULT_MIN_CELL, min_percent_base: int = DEFAULT_MIN_PERCENT_BASE
) -> dict[str, object]:
    """Return the rule and its parameters as written into every download."""
    return {
        "name": "minimum cell with complementary suppression",
        "min_cell": min_cell,
        "min_percent_base": min_percent_base,
        "text": (
            f"No count from 1 to {min_cell - 1} is shown; further cells are hidden so that none "
            f"can be derived from totals; percentages only where the base is at least "
            f"{min_percent_base} and computed from shown counts."
        ),
    }


RULE = describe_rule()


def apply(
    table: Table,
    min_cell: int = DEFAULT_MIN_CELL,
    min_percent_base: int = DEFAULT_MIN_PERCENT_BASE,
) -> Table:
    """Hide small and derivable counts, set percents from shown counts; mutate and return table."""
    if min_cell < 1:
        raise ValueError(f"min_cell must be at least 1, not {min_cell}")
    if min_percent_base < 0:
        raise ValueError(f"min_percent_base must not be negative, not {min_percent_base}")
    cells = table.cells
    for key, cell in cells.items():
        if cell.count < 0:
            raise ValueError(f"table {table.question_id}: negative count in {key}")
        # Cells already hidden (for example to match a linked table) stay hidden.
        if 1 <= cell.count < min_cell:
            cell.shown = False
    lines = _lines(table)
    _hide_complementary(cells, lines, min_cell)
    # Line by line is not enough when two attributes and the values make a three-way table: a
    # hidden cell can follow from several lines together, so check the whole system too. And once
    # such cells are known, a line may give away the small sum of its remaining hidden cells.
    # Every round hides one more cell, so this ends; with everything hidden nothing follows.
    while True:
        determined = _determined(cells, lines)
        small = [key for key in determined if 0 < cells[key].count < min_cell]
        if small:
            hid = _hide_near(cells, lines, small[0])
        elif leaking := _leaking_line(cells, lines, set(determined), min_cell):
            hid = _hide_in(cells, lines, leaking)
        else:
            break
        if not hid:
            break  # only possible when the counts do not add up; nothing left to hide near it
        _hide_complementary(cells, lines, min_cell)
    _set_percents(table, min_percent_base)
    return table


def _lines(table: Table) -> list[_Line]:
    """Every total of the table with the cells that add up to it, in a fixed order."""
    cells = table.cells
    lines: list[_Line] = []
    partition = [value for value in table.values if value not in RESERVED]
    for group in table.groups:
        if not table.overlapping:
            lines.append(_line(cells, (group, ANSWERED), [(group, v) for v in partition]))
        if table.asked_partition:
            lines.append(_line(cells, (group, ASKED), [(group, ANSWERED), (group, SKIPPED)]))
    columns = list(dict.fromkeys([*table.values, SKIPPED, ANSWERED, ASKED]))
    for parent, children in _group_splits(table.groups):
        for column in columns:
            lines.append(_line(cells, (parent, column), [(child, column) for child in children]))
    return [line for line in lines if line.total in cells and line.members]


def _line(cells: dict[CellKey, Cell], total: CellKey, members: list[CellKey]) -> _Line:
    # A group or value with nobody has no cell: it adds nothing, so it is simply not a member.
    return _Line(total, tuple(key for key in members if key in cells))


def _group_splits(groups: list[Group]) -> Iterator[tuple[Group, list[Group]]]:
    """Yield each group with `_all` in some attribute and the groups that split it there."""
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


def _hide_complementary(cells: dict[CellKey, Cell], lines: list[_Line], min_cell: int) -> None:
    """Hide more cells until no line, on its own, gives a hidden count away."""
    # Hiding a cell can expose another line it belongs to, so sweep until a sweep changes nothing;
    # every step hides one more cell, so this ends (at worst with everything hidden).
    changed = True
    while changed:
        changed = False
        for line in lines:
            while _is_exposed(cells, line, min_cell):
                _hide_one(cells, line)
                changed = True


def _is_exposed(cells: dict[CellKey, Cell], line: _Line, min_cell: int) -> bool:
    """Whether this line's equation pins a hidden cell or a small hidden sum."""
    # A line is one equation, total = sum of members: a lone hidden cell in it is derivable even
    # when that cell is the total (every member shown), not only by subtracting from a shown total.
    keys = [line.total, *line.members]
    if sum(1 for key in keys if not cells[key].shown and cells[key].count > 0) == 1:
        return True
    if not cells[line.total].shown:
        return False
    hidden_sum = sum(cells[key].count for key in line.members if not cells[key].shown)
    return 1 <= hidden_sum < min_cell


def _hide_one(cells: dict[CellKey, Cell], line: _Line) -> None:
    """Hide the smallest shown non-zero member of the line, or its total if there is none."""
    # A zero adds nothing to the hidden sum, so hiding one would protect nothing.
    candidates = [key for key in line.members if cells[key].shown and cells[key].count > 0]
    if candidates:
        # min() keeps the first of equal counts, so the choice follows the line's order.
        cells[min(candidates, key=lambda key: cells[key].count)].shown = False
    else:
        cells[line.total].shown = False


def _determined(cells: dict[CellKey, Cell], lines: list[_Line]) -> list[CellKey]:
    """Hidden cells whose value follows exactly from the shown cells and all lines."""
    # Gauss-Jordan elimination over the hidden cells, exact in integers (each row kept divided by
    # the gcd of its coefficients). Whether a cell is determined depends only on which cells are
    # hidden, not on the shown values.
    rows: dict[CellKey, dict[CellKey, int]] = {}
    for line in lines:
        row = {
            key: -1 if key == line.total else 1
            for key in (line.total, *line.members)
            if not cells[key].shown
        }
        for pivot, pivot_row in rows.items():
            if pivot in row:
                _eliminate(row, pivot_row, pivot)
        if not row:
            continue
        pivot = next(iter(row))
        for other_row in rows.values():
            if pivot in other_row:
                _eliminate(other_row, row, pivot)
        rows[pivot] = row
    # In reduced row echelon form a cell is determined exactly when its row holds only itself.
    return [pivot for pivot, row in rows.items() if len(row) == 1]


def _eliminate(row: dict[CellKey, int], other: dict[CellKey, int], pivot: CellKey) -> None:
    """Combine row with other in place so that pivot drops out; keep the key order, drop zeros."""
    factor, scale = row[pivot], other[pivot]
    if scale != 1:
        for key in row:
            row[key] *= scale
    for key, value in other.items():
        result = row.get(key, 0) - factor * value
        if result:
            row[key] = result
        else:
            row.pop(key, None)
    divisor = math.gcd(*row.values())
    if divisor > 1:
        for key in row:
            row[key] //= divisor


def _leaking_line(
    cells: dict[CellKey, Cell], lines: list[_Line], determined: set[CellKey], min_cell: int
) -> _Line | None:
    """The first line whose total is known and whose other hidden members add up to 1..min-1."""
    # With the total shown or determined, and the determined members known too, the line's
    # equation gives the sum of its remaining hidden members away.
    for line in lines:
        if cells[line.total].shown or line.total in determined:
            rest = sum(
                cells[key].count
                for key in line.members
                if not cells[key].shown and key not in determined
            )
            if 1 <= rest < min_cell:
                return line
    return None


def _hide_in(cells: dict[CellKey, Cell], lines: list[_Line], line: _Line) -> bool:
    """Hide a cell of the line (as _hide_one) or, with its total already hidden, one near it."""
    if cells[line.total].shown or any(
        cells[key].shown and cells[key].count > 0 for key in line.members
    ):
        _hide_one(cells, line)
        return True
    return _hide_near(cells, lines, line.total)


def _hide_near(cells: dict[CellKey, Cell], lines: list[_Line], key: CellKey) -> bool:
    """Hide the smallest shown non-zero cell nearest to key along the lines; False if none."""
    lines_of: dict[CellKey, list[_Line]] = {}
    for line in lines:
        for cell in (line.total, *line.members):
            lines_of.setdefault(cell, []).append(line)
    seen = {key}
    frontier = [key]
    while frontier:
        near = [
            other
            for cell in frontier
            for line in lines_of.get(cell, [])
            for other in (line.total, *line.members)
            if other not in seen
        ]
        frontier = list(dict.fromkeys(near))
        candidates = [other for other in frontier if cells[other].shown and cells[other].count > 0]
        if candidates:
            cells[min(candidates, key=lambda other: cells[other].count)].shown = False
            return True
        seen.update(frontier)
    return False


def _set_percents(table: Table, min_percent_base: int) -> None:
    """Give each shown answer value its share of a shown, large enough `_answered`."""
    values = set(table.values) - RESERVED
    for (group, value), cell in table.cells.items():
        cell.percent = None
        if not cell.shown or value not in values:
            continue
        base = table.cells.get((group, ANSWERED))
        if base is None or not base.shown or base.count < max(min_percent_base, 1):
            continue
        cell.percent = round(100 * cell.count / base.count, 1)
