"""Attacks on published results: nothing from 1 to min_cell - 1 can be seen or worked out.

Each attack found in review is replayed against a running app; the property test gives an exact
solver every download of a snapshot of random crowds and checks that it pins no small count.
"""

from __future__ import annotations

import os
import random
from datetime import timedelta
from pathlib import Path

import pytest

from engage import db
from engage.results.disclosure import Rule
from engage.results.report import BreakdownRefusedError
from engage.services.results import build_report
from tests.conftest import SHIPPED_SURVEYS, TEST_SURVEYS, publish
from tests.results.attacker import Attacker, QuestionShape
from tests.results.conftest import SKIP, T0

HERE = Path(__file__).resolve().parent
RULE = Rule()
LATER = T0 + timedelta(days=400)
BREAKDOWNS = [(), ("state",), ("crop",), ("state", "crop")]
# More crowds on demand (ENGAGE_ATTACK_CROWDS=200) for a deeper search than every run makes.
CROWDS = int(os.environ.get("ENGAGE_ATTACK_CROWDS", "8"))
FEE_CHECK = [
    QuestionShape("state", ("FL", "TX", "CA"), profile="state", can_skip=False),
    QuestionShape("crop", ("berries", "citrus"), profile="crop", can_skip=False),
    QuestionShape("paid_fee", ("yes", "no")),
    QuestionShape("fee_amount", ("under_500", "from_500"), when=lambda p: p["paid_fee"] == "yes"),
    QuestionShape("paid_on_time", ("yes", "no")),
]


def seed_crowd(seed, respondents: list[dict[str, str]], rng: random.Random) -> None:
    """Each respondent as the conversation service writes them, with a random record key."""
    for respondent in respondents:
        seed.record_key = rng.randrange(256)
        answers = {
            question: SKIP if value == "_skip" else value
            for question, value in respondent.items()
            if value != "_not_asked"
        }
        profile = {"state": respondent["state"], "crop": respondent["crop"]}
        seed.response(answers, profile=profile, survey_id="fee-check")


def random_crowd(rng: random.Random) -> list[dict[str, str]]:
    """A crowd with small cells: a big state and small ones, rare answers; every other crowd
    is bigger and balanced, so that breakdowns are allowed and small cells sit inside them."""
    people = []
    if rng.random() < 0.5:
        weights = {"FL": rng.uniform(0.5, 0.9), "TX": rng.uniform(0.02, 0.2)}
        weights["CA"] = rng.uniform(0, 0.3)
        crops, size = [0.7, 0.3], rng.randint(15, 60)
    else:
        weights = {"FL": rng.uniform(0.3, 0.5), "TX": rng.uniform(0.2, 0.35)}
        weights["CA"] = rng.uniform(0.2, 0.35)
        crops, size = [0.5, 0.5], rng.randint(50, 130)
    fee_yes = rng.uniform(0.3, 0.9)
    no_pay = rng.uniform(0.02, 0.25)
    for _ in range(size):
        paid_fee = rng.choices(["yes", "no", "_skip"], [fee_yes, 1 - fee_yes, 0.08])[0]
        people.append(
            {
                "state": rng.choices(list(weights), list(weights.values()))[0],
                "crop": rng.choices(["berries", "citrus"], crops)[0],
                "paid_fee": paid_fee,
                "fee_amount": rng.choices(["under_500", "from_500", "_skip"], [0.75, 0.2, 0.05])[0]
                if paid_fee == "yes"
                else "_not_asked",
                "paid_on_time": rng.choices(["yes", "no", "_skip"], [1 - no_pay, no_pay, 0.05])[0],
            }
        )
    return people


def every_download(app, survey_id: str, rule: Rule = RULE):
    """Every breakdown of the snapshot the attacker may download (refused ones give nothing)."""
    reports = []
    with app.app_context():
        for by in BREAKDOWNS:
            try:
                built = build_report(db.session(), survey_id, by, rule=rule, now=LATER)
            except BreakdownRefusedError:
                continue
            db.session().commit()
            built.rows = list(built.rows)
            reports.append(built)
    return reports


def assert_nothing_pinned(reports, respondents, questions=FEE_CHECK, rule: Rule = RULE):
    attacker = Attacker(questions, rule)
    for built in reports:
        attacker.read(built)
    crowd = attacker.crowd_vector(respondents)
    pinned = attacker.pinned(crowd, attacker.targets())
    assert not pinned, pinned


# -- the property --------------------------------------------------------------------------------


@pytest.mark.parametrize("crowd_seed", range(CROWDS))
def test_no_download_combination_pins_a_small_count(app, seed, crowd_seed):
    """For random crowds with small cells, every download of a snapshot (no breakdown, each
    attribute, the pair) and the survey's structure leave every count from 1 to 10 open."""
    publish(app, [SHIPPED_SURVEYS, TEST_SURVEYS, HERE / "surveys"])
    rng = random.Random(crowd_seed)
    respondents = random_crowd(rng)
    seed_crowd(seed, respondents, rng)
    reports = every_download(app, "fee-check")
    assert reports, "at least the download without breakdown"
    assert_nothing_pinned(reports, respondents)


def test_the_old_rule_would_have_been_caught(app, seed):
    """The solver is not blind: with counts published exactly (a base of 1, as rounding off),
    the `when` question's _asked gives the hidden 'no' of the question it depends on away."""
    publish(app, [SHIPPED_SURVEYS, TEST_SURVEYS, HERE / "surveys"])
    rng = random.Random(1)
    respondents = [
        {
            "state": "FL",
            "crop": "berries",
            "paid_fee": "yes" if i < 40 else "no",
            "fee_amount": "under_500" if i < 40 else "_not_asked",
            "paid_on_time": "yes",
        }
        for i in range(46)
    ]
    seed_crowd(seed, respondents, rng)
    exact = Rule(min_cell=11, round_base=1, min_percent_base=30)
    reports = every_download(app, "fee-check", exact)
    with pytest.raises(AssertionError, match="paid_fee"):
        assert_nothing_pinned(reports, respondents, rule=exact)
