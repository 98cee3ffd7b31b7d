"""Engage's cell keys against ONS's reference code (`cell-key-perturbation` on PyPI, MIT).

ONS's `create_perturbed_table` tabulates microdata (one row per person) and gives each cell its
count and its cell key: the sum of the cell's record keys modulo the ptable's largest key + 1.
Only that arithmetic is used here. The ptable given to it perturbs nothing (every pvalue 0) and
its threshold is 0: ONS's shipped 10-5 ptable zeroes small counts, which is not Engage's rule.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import pandas as pd
import pytest
from cell_key_perturbation.create_perturbed_table import create_perturbed_table
from sqlalchemy import select

from engage import db
from engage.models import ResultSnapshot
from engage.results import report as rp
from engage.results.disclosure import ALL, ANSWERED, ASKED, KEY_RANGE, SKIPPED, Rule
from engage.services.results import _SnapshotView, build_report
from tests.results.conftest import SKIP, T0

RULE = Rule()
SURVEY = "working-conditions"
STATES = {"CA": 40, "FL": 25, "TX": 15}
HOUSING = ("crowded", "no_clean_water", "broken_bath_kitchen", "pests")
# Record keys and answers of the seeded people: random, but the same in every run.
SEED = 20131011


@dataclass
class Person:
    state: str
    first_season: str  # yes, no, or SKIPPED
    housing: list[str] = field(default_factory=list)
    record_key: int = 0


def people() -> list[Person]:
    rng = random.Random(SEED)
    found = []
    for state, n in STATES.items():
        for _ in range(n):
            paid = rng.choices(["yes", "no", SKIPPED], weights=[6, 3, 1])[0]
            housing = [option for option in HOUSING if rng.random() < 0.4] or ["none"]
            found.append(Person(state, paid, housing, rng.randrange(KEY_RANGE)))
    return found


def microdata(crowd: list[Person]) -> pd.DataFrame:
    """One row per person, as ONS's code takes it: the variables and the record key."""
    return pd.DataFrame(
        {
            "state": [p.state for p in crowd],
            "first_season": [p.first_season for p in crowd],
            ASKED: [ASKED] * len(crowd),
            ANSWERED: [ANSWERED if p.first_season != SKIPPED else "-" for p in crowd],
            **{option: [option in p.housing for p in crowd] for option in HOUSING},
            "record_key": [p.record_key for p in crowd],
        }
    )


def no_perturbation() -> pd.DataFrame:
    """A ptable over Engage's key range (0 to 255) that changes no count."""
    rows = [(pcv, ckey, 0) for pcv in range(1, 751) for ckey in range(KEY_RANGE)]
    return pd.DataFrame(rows, columns=["pcv", "ckey", "pvalue"])


def ons_cells(data: pd.DataFrame, geog: list[str], tab_vars: list[str]) -> dict[tuple, tuple]:
    """ONS's (count, cell key) per cell, keyed by the cell's values (geography first)."""
    table = create_perturbed_table(
        data=data,
        ptable=no_perturbation(),
        geog=geog,
        tab_vars=tab_vars,
        record_key="record_key",
        use_existing_ons_id=False,
        threshold=0,
    )
    assert (table["count"] == table["pre_sdc_count"]).all()  # nothing perturbed
    return {
        tuple(row[geog + tab_vars]): (int(row["pre_sdc_count"]), int(row["ckey"]))
        for _, row in table.iterrows()
    }


def seed_people(seed, crowd: list[Person]) -> None:
    for person in crowd:
        seed.record_key = person.record_key
        first = SKIP if person.first_season == SKIPPED else person.first_season
        seed.response(
            {"state": person.state, "first_season": first, "housing_conditions": person.housing},
            profile={"state": person.state},
        )


def engage_cells(app, by: tuple[str, ...]) -> dict[str, dict[tuple, tuple[int, int]]]:
    """Per question, Engage's (count, cell key) per (group, value): the snapshot's finest
    cells summed into this breakdown as a download sums them, before disclosure control."""
    with app.app_context():
        session = db.session()
        report = build_report(session, SURVEY, by, rule=RULE, now=T0)
        session.commit()
        cells = session.scalars(select(ResultSnapshot.cells)).one()
    assert report.snapshot is not None
    view = _SnapshotView(cells, by, RULE)
    found: dict[str, dict[tuple, tuple[int, int]]] = {}
    for question_id, counts in view.questions().items():
        values = sorted({v for c in counts.values() for v in c})
        table = rp.question_table(question_id, values, counts, len(by))
        found[question_id] = {
            (*group, value): (cell.count, cell.key) for (group, value), cell in table.cells.items()
        }
    return found


def published(app, by: tuple[str, ...]) -> dict[tuple, int | None]:
    """The download's counts of first_season, by (group…, value)."""
    with app.app_context():
        report = build_report(db.session(), SURVEY, by, rule=RULE, now=T0)
        return {
            (*row.group, row.value): row.count
            for row in report.rows
            if row.question_id == "first_season"
        }


@pytest.fixture
def crowd(seed) -> list[Person]:
    crowd = people()
    seed_people(seed, crowd)
    return crowd


def test_the_seeded_keys_sum_past_256(crowd):
    # Otherwise a forgotten modulo would go unnoticed.
    assert sum(p.record_key for p in crowd) > 4 * KEY_RANGE
    assert len({p.record_key for p in crowd}) > 40


def test_one_way_cell_keys_are_those_of_ons_reference_code(app, crowd):
    data = microdata(crowd)
    expected = ons_cells(data, [], ["first_season"])
    expected |= ons_cells(data, [], [ASKED])
    expected |= {k: v for k, v in ons_cells(data, [], [ANSWERED]).items() if k != ("-",)}
    engage = engage_cells(app, ())["first_season"]
    assert {key: engage[key] for key in expected} == expected
    assert set(engage) == {(v,) for v in ("yes", "no", ANSWERED, ASKED, SKIPPED)}
    # And the download publishes each of ONS's counts rounded by ONS's cell key.
    counts = published(app, ())
    for (value,), (n, key) in expected.items():
        assert counts[(value,)] == RULE.publish(n, key), value


def test_two_way_cell_keys_are_those_of_ons_reference_code(app, crowd):
    data = microdata(crowd)
    by_state = ons_cells(data, ["state"], ["first_season"])
    overall = ons_cells(data, [], ["first_season"])
    expected = by_state | {(ALL, value): cell for (value,), cell in overall.items()}
    engage = engage_cells(app, ("state",))["first_season"]
    assert {key: engage[key] for key in expected} == expected
    # Every state has someone in every value: no cell is a key of 0 by default.
    assert all(n > 0 for n, _key in by_state.values())
    assert len(by_state) == len(STATES) * 3
    counts = published(app, ("state",))
    for key, (n, cell_key) in expected.items():
        assert counts[key] == RULE.publish(n, cell_key), key


def test_cell_keys_of_a_multi_choice_count_each_person_once_per_option(app, crowd):
    data = microdata(crowd)
    engage = engage_cells(app, ("state",))["housing_conditions"]
    for option in HOUSING:
        by_state = ons_cells(data, ["state"], [option])
        expected = {(state, option): by_state[(state, True)] for state in STATES}
        expected[(ALL, option)] = ons_cells(data, [], [option])[(True,)]
        assert {key: engage[key] for key in expected} == expected, option
