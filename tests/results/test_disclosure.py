"""Disclosure control: hand-worked tables and properties over random consistent tables."""

from __future__ import annotations

import copy
import itertools
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engage.results.disclosure import (
    ALL,
    ANSWERED,
    ASKED,
    RULE,
    SKIPPED,
    Cell,
    CellKey,
    Group,
    Table,
    apply,
    describe_rule,
)

# --- hand-worked tables -------------------------------------------------------------------------

NONE: tuple[str, ...] = ()
CA, FL, ALL1 = ("CA",), ("FL",), (ALL,)


def build(rows: dict[Group, dict[str, int]], values: list[str], **flags: bool) -> Table:
    """A table from counts per group, in the order given."""
    cells = {
        (group, value): Cell(count)
        for group, counts in rows.items()
        for value, count in counts.items()
    }
    return Table("q1", list(rows), values, cells, **flags)


def hidden_keys(table: Table) -> set[CellKey]:
    return {key for key, cell in table.cells.items() if not cell.shown}


def percents(table: Table) -> dict[CellKey, float]:
    return {key: cell.percent for key, cell in table.cells.items() if cell.percent is not None}


CASES = [
    pytest.param(
        build({NONE: {"a": 25, "b": 5, "c": 30, ANSWERED: 60, ASKED: 60}}, ["a", "b", "c"]),
        11,
        {(NONE, "a"), (NONE, "b")},
        {(NONE, "c"): 50.0},
        id="small cell hides the smallest other value with it",
    ),
    pytest.param(
        build({NONE: {"a": 3, "b": 4, "c": 40, ANSWERED: 47}}, ["a", "b", "c"]),
        5,
        {(NONE, "a"), (NONE, "b")},
        {(NONE, "c"): 85.1},
        id="two small cells that add up to min_cell protect each other",
    ),
    pytest.param(
        build({NONE: {"a": 3, "b": 4, "c": 40, ANSWERED: 47}}, ["a", "b", "c"]),
        11,
        {(NONE, "a"), (NONE, "b"), (NONE, "c")},
        {},
        id="two small cells below min_cell together need a third",
    ),
    pytest.param(
        build({NONE: {"a": 0, "b": 40, "c": 20, ANSWERED: 60}}, ["a", "b", "c"]),
        11,
        set(),
        {(NONE, "a"): 0.0, (NONE, "b"): 66.7, (NONE, "c"): 33.3},
        id="true zeros are shown and get a percent",
    ),
    pytest.param(
        build({NONE: {"a": 12, "b": 13, ANSWERED: 25}}, ["a", "b"]),
        11,
        set(),
        {},
        id="no percent on a base below min_percent_base",
    ),
    pytest.param(
        build({NONE: {"a": 5, "b": 45, ANSWERED: 50}}, ["a", "b"], overlapping=True),
        11,
        {(NONE, "a")},
        {(NONE, "b"): 90.0},
        id="multi options overlap so the answered total reveals nothing",
    ),
    pytest.param(
        build({NONE: {"a": 5, "b": 45, ANSWERED: 50}}, ["a", "b"]),
        11,
        {(NONE, "a"), (NONE, "b")},
        {},
        id="choice values partition the answered total",
    ),
    pytest.param(
        build(
            {NONE: {"a": 20, "b": 25, SKIPPED: 5, ANSWERED: 45, ASKED: 50}},
            ["a", "b", SKIPPED],
        ),
        11,
        {(NONE, SKIPPED)},
        {(NONE, "a"): 44.4, (NONE, "b"): 55.6},
        id="skipped is not part of the answered partition",
    ),
    pytest.param(
        build(
            {NONE: {"a": 20, "b": 25, SKIPPED: 5, ANSWERED: 45, ASKED: 50}},
            ["a", "b", SKIPPED],
            asked_partition=True,
        ),
        11,
        {(NONE, SKIPPED), (NONE, ANSWERED), (NONE, "a")},
        {},
        id="asked partition hides answered and then a value with a small skipped",
    ),
    pytest.param(
        build(
            {
                ALL1: {"yes": 40, "no": 60, ANSWERED: 100},
                CA: {"yes": 35, "no": 30, ANSWERED: 65},
                FL: {"yes": 5, "no": 30, ANSWERED: 35},
            },
            ["yes", "no"],
        ),
        11,
        {(CA, "yes"), (CA, "no"), (FL, "yes"), (FL, "no")},
        {(ALL1, "yes"): 40.0, (ALL1, "no"): 60.0},
        id="a small cell hides a rectangle across groups and values",
    ),
    pytest.param(
        build(
            {
                ALL1: {"yes": 23, "no": 34, ANSWERED: 57},
                CA: {"yes": 20, "no": 30, ANSWERED: 50},
                FL: {"yes": 3, "no": 4, ANSWERED: 7},
            },
            ["yes", "no"],
        ),
        11,
        {(CA, "yes"), (CA, "no"), (CA, ANSWERED), (FL, "yes"), (FL, "no"), (FL, ANSWERED)},
        {(ALL1, "yes"): 40.4, (ALL1, "no"): 59.6},
        id="a small group hides its only sibling group",
    ),
    pytest.param(
        build(
            {
                ALL1: {"yes": 25, "no": 35, ANSWERED: 60},
                ("A",): {"yes": 5, "no": 35, ANSWERED: 40},
                ("B",): {"yes": 20, "no": 0, ANSWERED: 20},
            },
            ["yes", "no"],
        ),
        11,
        {
            (ALL1, "yes"),
            (ALL1, "no"),
            (("A",), "yes"),
            (("A",), "no"),
            (("A",), ANSWERED),
            (("B",), "yes"),
            (("B",), ANSWERED),
        },
        {},
        id="a total is hidden when its line has no other non-zero cell",
    ),
    pytest.param(
        build(
            {
                (ALL, ALL): {"yes": 60, ANSWERED: 60},
                ("CA", ALL): {"yes": 60, ANSWERED: 60},
                (ALL, "berries"): {"yes": 52, ANSWERED: 52},
                (ALL, "_unknown"): {"yes": 8, ANSWERED: 8},
                ("CA", "berries"): {"yes": 52, ANSWERED: 52},
                ("CA", "_unknown"): {"yes": 8, ANSWERED: 8},
            },
            ["yes"],
        ),
        11,
        {
            ((ALL, "berries"), "yes"),
            ((ALL, "berries"), ANSWERED),
            ((ALL, "_unknown"), "yes"),
            ((ALL, "_unknown"), ANSWERED),
            (("CA", "berries"), "yes"),
            (("CA", "berries"), ANSWERED),
            (("CA", "_unknown"), "yes"),
            (("CA", "_unknown"), ANSWERED),
        },
        {((ALL, ALL), "yes"): 100.0, (("CA", ALL), "yes"): 100.0},
        id="two breakdowns hide along both attributes",
    ),
]


@pytest.mark.parametrize(("table", "min_cell", "expected_hidden", "expected_percents"), CASES)
def test_apply_hides_and_gives_percents_as_worked_by_hand(
    table: Table,
    min_cell: int,
    expected_hidden: set[CellKey],
    expected_percents: dict[CellKey, float],
) -> None:
    table = copy.deepcopy(table)
    counts = {key: cell.count for key, cell in table.cells.items()}

    assert apply(table, min_cell=min_cell) is table

    assert hidden_keys(table) == expected_hidden
    assert percents(table) == expected_percents
    assert {key: cell.count for key, cell in table.cells.items()} == counts


def test_apply_keeps_cells_hidden_beforehand() -> None:
    table = build({NONE: {"a": 20, "b": 25, ANSWERED: 45}}, ["a", "b"])
    table.cells[(NONE, "a")].shown = False

    apply(table)

    assert hidden_keys(table) == {(NONE, "a"), (NONE, "b")}


def test_apply_handles_an_empty_table() -> None:
    assert apply(Table("q1", [], ["a"], {})).cells == {}


@pytest.mark.parametrize(
    ("min_cell", "min_percent_base", "count"), [(0, 30, 1), (11, -1, 1), (11, 30, -1)]
)
def test_apply_refuses_bad_parameters_and_negative_counts(
    min_cell: int, min_percent_base: int, count: int
) -> None:
    table = build({NONE: {"a": count, ANSWERED: count}}, ["a"])
    with pytest.raises(ValueError):
        apply(table, min_cell=min_cell, min_percent_base=min_percent_base)


def test_rule_names_its_parameters() -> None:
    assert RULE == describe_rule(11, 30)
    assert RULE["min_cell"] == 11
    assert RULE["min_percent_base"] == 30
    assert "1 to 10" in str(RULE["text"])
    assert "1 to 4" in str(describe_rule(5, 20)["text"])


# --- random tables ------------------------------------------------------------------------------

LEVELS = (("A", "B", "_unknown"), ("x", "y", "_unknown"))
# Mostly small counts, where suppression happens, and some large ones.
counts = st.integers(0, 15) | st.integers(0, 15) | st.integers(0, 300)
rules = st.tuples(st.sampled_from([5, 11]), st.sampled_from([10, 30]))


@st.composite
def tables(draw: st.DrawFn) -> Table:
    """A consistent table: leaf groups drawn, `_all` groups and totals added up from them."""
    values = [f"v{i}" for i in range(draw(st.integers(1, 4)))]
    overlapping = draw(st.booleans())
    asked_partition = draw(st.booleans())
    has_skipped = draw(st.booleans())
    dims = draw(st.integers(0, 2))
    levels = [
        draw(st.lists(st.sampled_from(LEVELS[dim]), min_size=1, max_size=3, unique=True))
        for dim in range(dims)
    ]
    leaves: dict[Group, dict[str, int]] = {}
    for leaf in itertools.product(*levels):
        row = {value: draw(counts) for value in values}
        if overlapping:
            # Each respondent picks at least one option, so options add up to at least _answered.
            row[ANSWERED] = draw(st.integers(max(row.values()), sum(row.values())))
        else:
            row[ANSWERED] = sum(row.values())
        row[SKIPPED] = draw(counts) if has_skipped else 0
        missed = 0 if asked_partition else draw(st.integers(0, 3))
        row[ASKED] = row[ANSWERED] + row[SKIPPED] + missed
        if not has_skipped:
            del row[SKIPPED]
        if row[ASKED] > 0 or not dims:  # groups with nobody are left out
            leaves[leaf] = row
    if has_skipped and draw(st.booleans()):
        values.append(SKIPPED)
    rows: dict[Group, dict[str, int]] = {}
    for group in itertools.product(*[[ALL, *level] for level in levels]):
        under = [row for leaf, row in leaves.items() if is_under(leaf, group)]
        if under:
            rows[group] = {column: sum(row[column] for row in under) for column in under[0]}
    return build(rows, values, overlapping=overlapping, asked_partition=asked_partition)


def is_under(leaf: Group, group: Group) -> bool:
    return all(part in (ALL, leaf_part) for part, leaf_part in zip(group, leaf, strict=True))


def lines_of(table: Table) -> list[tuple[CellKey, list[CellKey]]]:
    """Each shown-or-hidden total with the cells that add up to it."""
    cells = table.cells
    lines = []
    for group in table.groups:
        if not table.overlapping:
            parts = [v for v in table.values if v != SKIPPED]
            lines.append(((group, ANSWERED), [(group, v) for v in parts]))
        if table.asked_partition:
            lines.append(((group, ASKED), [(group, ANSWERED), (group, SKIPPED)]))
    columns = {value for _, value in cells}
    for parent in table.groups:
        for dim in [dim for dim, part in enumerate(parent) if part == ALL]:
            levels = {group[dim] for group in table.groups} - {ALL}
            children = [parent[:dim] + (level,) + parent[dim + 1 :] for level in sorted(levels)]
            for column in columns:
                lines.append(((parent, column), [(child, column) for child in children]))
    return [
        (total, [key for key in members if key in cells])
        for total, members in lines
        if total in cells
    ]


def equations(table: Table) -> list[dict[CellKey, int]]:
    """What a reader knows holds in any such table: each equation's terms add up to 0."""
    cells = table.cells
    leaves = [group for group in table.groups if ALL not in group]
    result = []
    for group in table.groups:
        if ALL in group:
            under = [leaf for leaf in leaves if is_under(leaf, group)]
            for cell_group, column in [key for key in cells if key[0] == group]:
                equation = {(cell_group, column): -1}
                equation.update({(leaf, column): 1 for leaf in under if (leaf, column) in cells})
                result.append(equation)
        if not table.overlapping:
            equation = {(group, v): 1 for v in table.values if v != SKIPPED}
            result.append({**equation, (group, ANSWERED): -1})
        if table.asked_partition:
            equation = {(group, ANSWERED): 1, (group, ASKED): -1}
            if (group, SKIPPED) in cells:
                equation[(group, SKIPPED)] = 1
            result.append(equation)
    return result


def derivable(table: Table) -> dict[CellKey, Fraction]:
    """Hidden cells whose value follows from the shown ones by the equations, with that value."""
    hidden = hidden_keys(table)
    pivots: dict[CellKey, tuple[dict[CellKey, Fraction], Fraction]] = {}
    for equation in equations(table):
        row: dict[CellKey, Fraction] = {}
        constant = Fraction(0)
        for key, coefficient in equation.items():
            if key in hidden:
                row[key] = row.get(key, Fraction(0)) + coefficient
            else:
                constant -= coefficient * table.cells[key].count
        # Reduce by the pivots so far (Gauss-Jordan over the rationals: exact).
        for pivot, (pivot_row, pivot_constant) in pivots.items():
            factor = row.get(pivot, 0)
            if factor:
                for key, coefficient in pivot_row.items():
                    row[key] = row.get(key, Fraction(0)) - factor * coefficient
                constant -= factor * pivot_constant
        row = {key: coefficient for key, coefficient in row.items() if coefficient}
        if not row:
            assert constant == 0, "the generated table is inconsistent"
            continue
        pivot = min(row)
        scale = row[pivot]
        row = {key: coefficient / scale for key, coefficient in row.items()}
        constant /= scale
        for other, (other_row, other_constant) in list(pivots.items()):
            factor = other_row.get(pivot, 0)
            if factor:
                merged = dict(other_row)
                for key, coefficient in row.items():
                    merged[key] = merged.get(key, Fraction(0)) - factor * coefficient
                merged = {key: coefficient for key, coefficient in merged.items() if coefficient}
                pivots[other] = (merged, other_constant - factor * constant)
        pivots[pivot] = (row, constant)
    # In reduced row echelon form a variable is determined exactly when its row is only itself.
    return {pivot: constant for pivot, (row, constant) in pivots.items() if len(row) == 1}


def assert_no_small_count_derivable(table: Table, min_cell: int) -> None:
    """No hidden cell, nor the rest of a line once those are known, gives away 1..min_cell-1."""
    known = derivable(table)
    for key, value in known.items():
        assert value == table.cells[key].count
        assert not 1 <= value < min_cell, key
    # Nor can subtraction along a line give a small sum once the derivable cells are known.
    for total, members in lines_of(table):
        if table.cells[total].shown or total in known:
            rest = [key for key in members if not table.cells[key].shown and key not in known]
            hidden_sum = sum(table.cells[key].count for key in rest)
            assert hidden_sum == 0 or hidden_sum >= min_cell, (total, members)


def test_line_hides_more_when_a_derivable_member_leaves_a_small_sum() -> None:
    # Found by the property below: (B, y) v1 = 11 followed from all the lines together (allowed,
    # it is not small), and then (B, _all) v1 = 21 minus it left (B, x) + (B, _unknown) = 4 + 6.
    def row(*counts: int) -> dict[str, int]:
        return {**dict(zip(["v0", "v1", "v2"], counts, strict=True)), ANSWERED: sum(counts)}

    rows = {
        (ALL, ALL): row(33, 35, 24),
        (ALL, "x"): row(7, 9, 6),
        (ALL, "y"): row(21, 20, 7),
        (ALL, "_unknown"): row(5, 6, 11),
        ("A", ALL): row(8, 14, 13),
        ("A", "x"): row(0, 5, 6),
        ("A", "y"): row(4, 9, 0),
        ("A", "_unknown"): row(4, 0, 7),
        ("B", ALL): row(25, 21, 11),
        ("B", "x"): row(7, 4, 0),
        ("B", "y"): row(17, 11, 7),
        ("B", "_unknown"): row(1, 6, 4),
    }
    for counts in rows.values():
        counts[ASKED] = counts[ANSWERED]
    table = build(rows, ["v0", "v1", "v2"])

    apply(table, min_cell=11, min_percent_base=10)

    assert_no_small_count_derivable(table, 11)
    assert not table.cells[(("B", ALL), "v1")].shown
    assert derivable(table) == {}
    first = copy.deepcopy(table)
    assert apply(table, min_cell=11, min_percent_base=10) == first


def test_three_way_table_hides_counts_that_only_several_lines_together_reveal() -> None:
    # Found by the property below: line by line every hidden sum was fine, yet (A, y) v1 = 2
    # followed from the lines of both attributes and the values taken together.
    rows = {
        (ALL, ALL): {"v0": 0, "v1": 5, "v2": 6, ANSWERED: 11, ASKED: 11},
        (ALL, "y"): {"v0": 0, "v1": 2, "v2": 3, ANSWERED: 5, ASKED: 5},
        (ALL, "_unknown"): {"v0": 0, "v1": 3, "v2": 3, ANSWERED: 6, ASKED: 6},
        ("A", ALL): {"v0": 0, "v1": 2, "v2": 3, ANSWERED: 5, ASKED: 5},
        ("A", "y"): {"v0": 0, "v1": 2, "v2": 0, ANSWERED: 2, ASKED: 2},
        ("A", "_unknown"): {"v0": 0, "v1": 0, "v2": 3, ANSWERED: 3, ASKED: 3},
        ("B", ALL): {"v0": 0, "v1": 3, "v2": 3, ANSWERED: 6, ASKED: 6},
        ("B", "y"): {"v0": 0, "v1": 0, "v2": 3, ANSWERED: 3, ASKED: 3},
        ("B", "_unknown"): {"v0": 0, "v1": 3, "v2": 0, ANSWERED: 3, ASKED: 3},
    }
    table = build(rows, ["v0", "v1", "v2"], asked_partition=True)

    apply(table, min_cell=5, min_percent_base=10)

    assert derivable(table) == {}
    assert {key for key, cell in table.cells.items() if cell.shown and cell.count} == {
        ((ALL, ALL), "v1"),
        ((ALL, ALL), "v2"),
        ((ALL, ALL), ANSWERED),
        ((ALL, ALL), ASKED),
        (("A", ALL), ANSWERED),
        (("A", ALL), ASKED),
        (("B", ALL), ANSWERED),
        (("B", ALL), ASKED),
    }
    assert percents(table) == {
        ((ALL, ALL), "v0"): 0.0,
        ((ALL, ALL), "v1"): 45.5,
        ((ALL, ALL), "v2"): 54.5,
    }


@settings(max_examples=300, deadline=None)
@given(tables(), rules)
def test_no_shown_count_is_small(table: Table, rule: tuple[int, int]) -> None:
    min_cell, min_percent_base = rule
    apply(table, min_cell, min_percent_base)
    for cell in table.cells.values():
        assert not (cell.shown and 1 <= cell.count < min_cell)


@settings(max_examples=300, deadline=None)
@given(tables(), rules)
def test_lines_with_a_shown_total_hide_zero_or_enough(table: Table, rule: tuple[int, int]) -> None:
    min_cell, min_percent_base = rule
    apply(table, min_cell, min_percent_base)
    for total, members in lines_of(table):
        if not table.cells[total].shown:
            continue
        hidden = [table.cells[key].count for key in members if not table.cells[key].shown]
        assert sum(hidden) == 0 or sum(hidden) >= min_cell, (total, members)
        assert sum(1 for count in hidden if count > 0) != 1, (total, members)


@settings(max_examples=200, deadline=None)
@given(tables(), rules)
def test_no_small_hidden_count_can_be_derived_from_all_lines_together(
    table: Table, rule: tuple[int, int]
) -> None:
    min_cell, min_percent_base = rule
    apply(table, min_cell, min_percent_base)
    assert_no_small_count_derivable(table, min_cell)


@settings(max_examples=300, deadline=None)
@given(tables(), rules)
def test_percents_come_from_shown_counts_on_large_bases(
    table: Table, rule: tuple[int, int]
) -> None:
    min_cell, min_percent_base = rule
    apply(table, min_cell, min_percent_base)
    for (group, value), cell in table.cells.items():
        base = table.cells.get((group, ANSWERED))
        has_base = base is not None and base.shown and base.count >= min_percent_base
        if cell.shown and has_base and value in table.values and value != SKIPPED:
            assert cell.percent == round(100 * cell.count / base.count, 1)
        else:
            assert cell.percent is None


@settings(max_examples=200, deadline=None)
@given(tables(), rules)
def test_apply_is_deterministic_and_idempotent(table: Table, rule: tuple[int, int]) -> None:
    min_cell, min_percent_base = rule
    first = apply(copy.deepcopy(table), min_cell, min_percent_base)
    second = apply(copy.deepcopy(table), min_cell, min_percent_base)
    assert first == second
    assert apply(copy.deepcopy(first), min_cell, min_percent_base) == first


@settings(max_examples=200, deadline=None)
@given(tables(), rules)
def test_table_without_small_counts_is_shown_whole(table: Table, rule: tuple[int, int]) -> None:
    min_cell, min_percent_base = rule
    for cell in table.cells.values():
        if 1 <= cell.count < min_cell:
            cell.count += min_cell  # may break the totals; nothing should be hidden anyway
    apply(table, min_cell, min_percent_base)
    assert hidden_keys(table) == set()
