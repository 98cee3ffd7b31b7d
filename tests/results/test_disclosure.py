"""Disclosure control on its own: random rounding by cell key, and protect() on tables by hand."""

from __future__ import annotations

import dataclasses
import math
from fractions import Fraction

import pytest

from engage.results.disclosure import (
    ALL,
    ANSWERED,
    ASKED,
    KEY_RANGE,
    SKIPPED,
    Cell,
    Group,
    Rule,
    Table,
    protect,
)

RULE = Rule()  # min_cell 11, round_base 5, min_percent_base 30
KEYS = range(KEY_RANGE)


# -- Rule.publish --------------------------------------------------------------------------------


@pytest.mark.parametrize("key", [0, 1, 127, 255])
def test_a_true_zero_stays_zero_whatever_its_key(key):
    assert RULE.publish(0, key) == 0


@pytest.mark.parametrize("count", range(1, 11))
def test_counts_from_one_to_ten_are_hidden_with_every_key(count):
    assert {RULE.publish(count, key) for key in KEYS} == {None}
    assert RULE.is_hidden(count)


@pytest.mark.parametrize(
    ("rule", "count"),
    [(Rule(min_cell=5, round_base=3), 4), (Rule(min_cell=20, round_base=10), 19)],
)
def test_the_largest_hidden_count_follows_min_cell(rule, count):
    assert {rule.publish(count, key) for key in KEYS} == {None}
    assert rule.publish(count + 1, 0) is not None


@pytest.mark.parametrize(
    ("count", "key", "published"),
    [
        # r = 3: up exactly while key * 5 < 3 * 256 = 768, so keys 0..153 up, 154..255 down.
        (23, 0, 25),
        (23, 153, 25),
        (23, 154, 20),
        (23, 255, 20),
        # r = 1: up while key * 5 < 256, keys 0..51.
        (21, 51, 25),
        (21, 52, 20),
        # r = 4: up while key * 5 < 1024, keys 0..204.
        (24, 204, 25),
        (24, 205, 20),
        # r = 2: up while key * 5 < 512, keys 0..102.
        (102, 102, 105),
        (102, 103, 100),
        # A multiple of the base is published as it is, whatever the key.
        (25, 0, 25),
        (25, 255, 25),
        (1000, 77, 1000),
        # Keys are taken modulo 256.
        (23, 153 + 256, 25),
        (23, 154 + 256, 20),
    ],
)
def test_counts_round_to_the_base_up_exactly_when_key_times_base_is_below_remainder_times_256(
    count, key, published
):
    assert RULE.publish(count, key) == published


@pytest.mark.parametrize("count", [11, 12, 13, 14, 15, 16, 17, 18, 19, 23, 37, 99, 100, 1234])
def test_every_key_rounds_by_the_rule_of_the_design(count):
    remainder = count % 5
    for key in KEYS:
        is_up = key * 5 < remainder * 256
        expected = max(count - remainder + (5 if is_up else 0), 15)
        assert RULE.publish(count, key) == expected, (count, key)


@pytest.mark.parametrize(
    ("rule", "count", "key", "published"),
    [
        # Defaults: never below 15, the minimum cell rounded up to the base.
        (RULE, 11, 255, 15),
        (RULE, 11, 0, 15),
        (RULE, 14, 255, 15),
        (RULE, 16, 255, 15),
        (RULE, 16, 0, 20),
        # min_cell 5, base 3: the smallest published is 6.
        (Rule(min_cell=5, round_base=3), 5, 255, 6),
        (Rule(min_cell=5, round_base=3), 7, 255, 6),
        # min_cell 11, base 10: the smallest published is 20, even for 11 rounded down.
        (Rule(min_cell=11, round_base=10), 11, 255, 20),
        (Rule(min_cell=11, round_base=10), 21, 255, 20),
        (Rule(min_cell=11, round_base=10), 21, 0, 30),
        # Base 1: nothing to round, counts from the minimum cell on are exact.
        (Rule(min_cell=11, round_base=1), 11, 255, 11),
        (Rule(min_cell=11, round_base=1), 13, 0, 13),
    ],
)
def test_nothing_is_published_below_the_minimum_cell_rounded_up_to_the_base(
    rule, count, key, published
):
    assert rule.publish(count, key) == published


@pytest.mark.parametrize(
    ("rule", "smallest"),
    [
        (RULE, 15),
        (Rule(min_cell=10, round_base=5), 10),
        (Rule(min_cell=5, round_base=3), 6),
        (Rule(min_cell=11, round_base=10), 20),
        (Rule(min_cell=2, round_base=1), 2),
    ],
)
def test_no_published_count_is_below_the_smallest_published(rule, smallest):
    assert rule.smallest_published == smallest
    published = {rule.publish(n, key) for n in range(1, 200) for key in KEYS} - {None}
    assert min(published) == smallest
    assert all(value % rule.round_base == 0 for value in published)


@pytest.mark.parametrize("count", [11, 23, 68, 1234])
def test_the_same_count_and_key_always_publish_the_same_number(count):
    for key in KEYS:
        first = RULE.publish(count, key)
        assert Rule().publish(count, key) == first
        assert RULE.publish(count, key + KEY_RANGE) == first


def _mean_over_keys(rule: Rule, count: int) -> Fraction:
    return Fraction(sum(rule.publish(count, key) for key in KEYS), KEY_RANGE)


@pytest.mark.parametrize("count", [16, 17, 18, 19, 20, 21, 23, 24, 57, 99, 100, 1001, 12345])
@pytest.mark.parametrize("rule", [Rule(round_base=4), Rule(round_base=8), Rule(round_base=2)])
def test_rounding_is_unbiased_over_all_keys_when_the_base_divides_256(rule, count):
    assert _mean_over_keys(rule, count) == count


@pytest.mark.parametrize(
    ("rule", "count"),
    [
        (rule, count)
        for rule in (RULE, Rule(round_base=3), Rule(round_base=10))
        for count in (15, 16, 17, 18, 19, 20, 21, 23, 24, 57, 99, 100, 1001, 12345)
        # Counts below the smallest published are raised to it, by design.
        if count >= rule.smallest_published
    ],
)
def test_rounding_is_unbiased_over_all_keys_within_one_key_step(rule, count):
    # 256 keys cannot be split in exact fifths: ceil(256 r / base) keys of 256 round up, so the
    # mean is above the count by less than base / 256 (under 0.02 with base 5), never below.
    mean = _mean_over_keys(rule, count)
    assert 0 <= mean - count < Fraction(rule.round_base, KEY_RANGE), float(mean)
    remainder = count % rule.round_base
    ups = math.ceil(Fraction(remainder * KEY_RANGE, rule.round_base))  # keys that round up
    expected = count - remainder + Fraction(rule.round_base * ups, KEY_RANGE)
    assert mean == expected


def test_a_negative_count_is_refused():
    with pytest.raises(ValueError, match="negative"):
        RULE.publish(-1, 0)


# -- Rule validation -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"min_cell": 1}, "min_cell"),
        ({"min_cell": 0}, "min_cell"),
        ({"min_cell": -11}, "min_cell"),
        ({"round_base": 0}, "round_base"),
        ({"round_base": -5}, "round_base"),
        ({"min_percent_base": -1}, "min_percent_base"),
    ],
)
def test_a_rule_with_impossible_parameters_is_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Rule(**kwargs)


@pytest.mark.parametrize(
    "kwargs",
    [{"min_cell": 2}, {"round_base": 1}, {"min_percent_base": 0}, {}],
)
def test_the_smallest_allowed_parameters_are_accepted(kwargs):
    rule = Rule(**kwargs)
    assert rule.publish(0, 0) == 0


# -- Rule.describe -------------------------------------------------------------------------------


def test_describe_names_every_parameter_with_its_value():
    rule = Rule(min_cell=7, round_base=3, min_percent_base=40)
    described = rule.describe()
    for parameter in dataclasses.fields(Rule):
        assert described[parameter.name] == getattr(rule, parameter.name)
    assert described["smallest_published"] == 9
    text = described["text"]
    assert "1 to 6" in text
    assert "multiple of 3" in text
    assert "below 9" in text
    assert "fewer than 7" in text
    assert "at least 40" in text


# -- protect() -----------------------------------------------------------------------------------

VALUES = ["yes", "no"]


def make_table(
    groups: dict[Group, dict[str, tuple[int, int]]],
    values: list[str] | None = None,
    *,
    size: str | None = ASKED,
    base: str | None = ANSWERED,
) -> Table:
    """A table by hand: per group, value -> (count, cell key); values not given are 0."""
    values = VALUES if values is None else values
    names = [*values, *((ANSWERED, ASKED, SKIPPED) if size == ASKED else ())]
    cells = {
        (group, value): Cell(*given.get(value, (0, 0)))
        for group, given in groups.items()
        for value in names
    }
    return Table("q", list(groups), values, cells, size=size, base=base)


def answered(yes: int, no: int, skipped: int = 0, key: int = 0) -> dict[str, tuple[int, int]]:
    """A group's cells, every one with the same cell key (0 by default: every count rounds up)."""
    return {
        "yes": (yes, key),
        "no": (no, key),
        ANSWERED: (yes + no, key),
        SKIPPED: (skipped, key),
        ASKED: (yes + no + skipped, key),
    }


def shown(table: Table, group: Group) -> dict[str, bool]:
    return {value: table.cells[(group, value)].shown for (g, value) in table.cells if g == group}


def published(table: Table, group: Group) -> dict[str, int | None]:
    return {
        value: table.cells[(group, value)].published for (g, value) in table.cells if g == group
    }


@pytest.mark.parametrize("size", [1, 5, 10])
def test_a_group_smaller_than_the_minimum_cell_is_hidden_whole_zeros_included(size):
    table = protect(
        make_table(
            {
                (ALL,): answered(40 + size, 27),
                ("CA",): answered(20, 15),
                ("FL",): answered(20, 12),
                ("TX",): answered(size, 0),
            }
        ),
        RULE,
    )
    assert set(shown(table, ("TX",)).values()) == {False}
    assert set(published(table, ("TX",)).values()) == {None}
    # Its "no" is a true 0 and would say what all of them answered: hidden too.
    assert table.cells[(("TX",), "no")].count == 0
    for group in [(ALL,), ("CA",), ("FL",)]:
        assert set(shown(table, group).values()) == {True}, group


def test_a_group_of_the_minimum_cell_is_shown():
    table = protect(
        make_table(
            {
                (ALL,): answered(51, 25),
                ("CA",): answered(20, 15),
                ("FL",): answered(20, 10),
                ("TX",): answered(11, 0),
            }
        ),
        RULE,
    )
    assert published(table, ("TX",))["no"] == 0
    assert published(table, ("TX",))[ASKED] == 15


def test_values_of_a_group_whose_answered_is_hidden_are_hidden_even_when_zero():
    # 30 asked, 25 skipped, 5 answered (all "yes"): _asked and _skipped may show, but a 0 for
    # "no" next to them would tell that the 5 all said yes.
    table = protect(make_table({(ALL,): answered(5, 0, skipped=25)}), RULE)
    assert table.cells[((ALL,), "no")].count == 0
    assert published(table, (ALL,)) == {
        "yes": None,
        "no": None,
        ANSWERED: None,
        ASKED: 30,
        SKIPPED: 25,
    }
    assert shown(table, (ALL,)) == {
        "yes": False,
        "no": False,
        ANSWERED: False,
        ASKED: True,
        SKIPPED: True,
    }


def test_a_zero_is_shown_where_the_group_answered_enough():
    table = protect(make_table({(ALL,): answered(11, 0, skipped=25)}), RULE)
    assert published(table, (ALL,))["no"] == 0
    assert shown(table, (ALL,))["no"] is True


@pytest.mark.parametrize(
    ("small", "is_fl_hidden"),
    [
        ({"TX": 1}, True),
        ({"TX": 10}, True),
        ({"TX": 3, "WA": 4}, True),  # 7 people together: still fewer than 11
        ({"TX": 6, "WA": 7}, False),  # 13 together: _all minus FL is not a few people
        ({"TX": 11}, False),  # TX is shown: FL is not alone
    ],
)
def test_the_lone_shown_sibling_of_small_hidden_groups_is_hidden(small, is_fl_hidden):
    fl_yes, fl_no = 30, 12
    groups = {
        (ALL,): answered(fl_yes + sum(small.values()), fl_no),
        ("FL",): answered(fl_yes, fl_no),
    }
    groups.update({(state,): answered(n, 0) for state, n in small.items()})
    table = protect(make_table(groups), RULE)
    # _all minus FL is the small groups: if both were shown, comparing them gives them away.
    assert set(shown(table, ("FL",)).values()) == {not is_fl_hidden}
    assert set(shown(table, (ALL,)).values()) == {True}
    for state, n in small.items():
        assert set(shown(table, (state,)).values()) == {not RULE.is_hidden(n)}


def test_the_lone_sibling_rule_works_within_each_attribute_of_a_pair():
    # By state and crop: (FL, berries) is the only shown crop of FL; (FL, grapes) holds 4.
    groups = {
        (ALL, ALL): answered(50, 20),
        (ALL, "berries"): answered(46, 20),
        (ALL, "grapes"): answered(4, 0),
        ("FL", ALL): answered(34, 10),
        ("FL", "berries"): answered(30, 10),
        ("FL", "grapes"): answered(4, 0),
        ("CA", ALL): answered(16, 10),
        ("CA", "berries"): answered(16, 10),
    }
    table = protect(make_table(groups), RULE)
    hidden = {group for group in groups if not any(shown(table, group).values())}
    # grapes are small; berries alone are left beside them under (_all, _all) and under FL;
    # and CA's berries are CA's only crop (no hidden people beside them): shown.
    assert hidden == {(ALL, "grapes"), ("FL", "grapes"), (ALL, "berries"), ("FL", "berries")}


@pytest.mark.parametrize(
    ("yes", "answered_", "percent"),
    [
        # yes 23 (key 0: up to 25) of _answered 40 (40): 62.5 from the published numbers, not
        # 57.5 from the true ones.
        ((23, 0), (40, 0), 62.5),
        # yes 32 up to 35, _answered 33 down to 30: 116.7 capped at 100.
        ((32, 0), (33, 255), 100.0),
        # _answered 28 rounds up to 30: at the base, shown.
        ((15, 0), (28, 0), 50.0),
        # _answered 28 rounds down to 25: under the base, no percentage.
        ((15, 0), (28, 255), None),
        # yes 14 (up to 15) of 31 (down to 30): 50.0, where the true share is 45.2.
        ((14, 0), (31, 255), 50.0),
    ],
)
def test_percentages_come_from_published_counts_capped_at_100_where_the_base_is_big_enough(
    yes, answered_, percent
):
    cells = {"yes": yes, ANSWERED: answered_, ASKED: answered_}
    table = protect(make_table({(ALL,): cells}), RULE)
    assert table.cells[((ALL,), "yes")].percent == percent
    # Reserved values never carry a percentage.
    for value in (ANSWERED, ASKED, SKIPPED):
        assert table.cells[((ALL,), value)].percent is None


@pytest.mark.parametrize(("min_percent_base", "percent"), [(0, 50.0), (30, 50.0), (31, None)])
def test_the_percentage_base_is_read_from_the_rule(min_percent_base, percent):
    rule = Rule(min_percent_base=min_percent_base)
    cells = {"yes": (15, 0), ANSWERED: (30, 0), ASKED: (30, 0)}
    table = protect(make_table({(ALL,): cells}), rule)
    assert table.cells[((ALL,), "yes")].percent == percent


def test_hidden_values_and_zeros_of_hidden_groups_have_no_percentage():
    cells = {"yes": (35, 0), "no": (5, 0), ANSWERED: (40, 0), ASKED: (40, 0)}
    table = protect(make_table({(ALL,): cells}), RULE)
    assert table.cells[((ALL,), "yes")].percent == 87.5
    assert table.cells[((ALL,), "no")].published is None
    assert table.cells[((ALL,), "no")].percent is None


def test_a_table_without_a_base_has_no_percentages():
    # The funnel: stages overlap, none is a share of another.
    values = ["invited", "started", "consented", "completed"]
    groups = {(): {"invited": (20, 0), "started": (40, 0), "consented": (30, 0)}}
    table = protect(make_table(groups, values, size="started", base=None), RULE)
    assert published(table, ()) == {"invited": 20, "started": 40, "consented": 30, "completed": 0}
    assert {cell.percent for cell in table.cells.values()} == {None}


def test_protect_publishes_every_shown_count_by_its_own_cell_key():
    cells = {
        "yes": (23, 153),
        "no": (23, 154),
        ANSWERED: (46, 0),
        SKIPPED: (4, 9),
        ASKED: (50, 9),
    }
    table = protect(make_table({(ALL,): cells}), RULE)
    assert published(table, (ALL,)) == {
        "yes": 25,
        "no": 20,
        ANSWERED: 50,
        SKIPPED: None,
        ASKED: 50,
    }
