"""The attacks found in review, replayed through HTTP on PostgreSQL as a policy user would."""

from __future__ import annotations

import csv
import io
import random
from pathlib import Path

import pytest

from engage.results.report import AggregateRow
from engage.results.writers import BOM
from tests.conftest import SHIPPED_SURVEYS, TEST_SURVEYS, publish
from tests.results.conftest import SKIP
from tests.results.test_attacks import (
    BREAKDOWNS,
    RULE,
    assert_nothing_pinned,
    random_crowd,
    seed_crowd,
)

HERE = Path(__file__).resolve().parent
PASSWORD = "correct horse battery staple"


@pytest.fixture
def database() -> str:
    """These run on PostgreSQL, as production does (the property above runs on both)."""
    return "postgresql"


def download(client, survey_id: str, by: tuple[str, ...] = ()):
    """An aggregate CSV through HTTP, read back as rows; None when refused."""
    query = "&".join(f"by={b}" for b in by)
    response = client.get(f"/results/{survey_id}/export.csv{'?' + query if query else ''}")
    if response.status_code == 400:
        return None
    assert response.status_code == 200, response.get_data(as_text=True)
    text = response.get_data(as_text=True)[len(BOM) :]
    rows = []
    for r in csv.DictReader(io.StringIO(text)):
        if r["question_id"] == "_rule":
            continue
        rows.append(
            AggregateRow(
                r["question_id"],
                r["question"],
                tuple(r[b] for b in by),
                r["value"],
                r["label"],
                int(r["count"]) if r["count"] else None,
                float(r["percent"]) if r["percent"] else None,
                r["suppressed"] == "true",
            )
        )
    return _Download(by, rows)


class _Download:
    def __init__(self, by, rows):
        self.by = by
        self.rows = rows


def cell(rows, question_id, value, group=()):
    found = [r for r in rows if (r.question_id, r.value, r.group) == (question_id, value, group)]
    assert len(found) == 1, (question_id, value, group)
    return found[0]


def fee_crowd(n_yes: int, n_no: int, **extra) -> list[dict[str, str]]:
    return [
        {
            "state": extra.get("state", "FL"),
            "crop": "berries",
            "paid_fee": "yes" if i < n_yes else "no",
            "fee_amount": "under_500" if i < n_yes else "_not_asked",
            "paid_on_time": "yes",
        }
        for i in range(n_yes + n_no)
    ]


def test_h1_a_when_questions_asked_no_longer_gives_the_hidden_cell_away(app, seed, policy):
    """H1: 46 answered paid_fee, fee_amount._asked 40 gave paid_fee 'no' = 6."""
    publish(app, [SHIPPED_SURVEYS, TEST_SURVEYS, HERE / "surveys"])
    respondents = fee_crowd(40, 6)
    seed_crowd(seed, respondents, random.Random(7))
    got = download(policy, "fee-check")
    assert cell(got.rows, "paid_fee", "no", ()).suppressed
    answered = cell(got.rows, "paid_fee", "_answered").count
    asked = cell(got.rows, "fee_amount", "_asked").count
    assert answered is not None and asked is not None
    # What the subtraction gives now is a range, not the 6.
    assert len(difference(answered, asked)) > 1
    assert_nothing_pinned([got], respondents)


def test_h2_comparing_breakdowns_no_longer_gives_a_group_away(app, seed, policy):
    """H2: `_all` yes = 17 and, by state, FL `_answered` 18 with FL's other cells 0 gave
    FL 'no' = 1."""
    publish(app, [SHIPPED_SURVEYS, TEST_SURVEYS, HERE / "surveys"])
    respondents = fee_crowd(17, 1) + fee_crowd(2, 0, state="TX") + fee_crowd(3, 0, state="CA")
    seed_crowd(seed, respondents, random.Random(3))
    downloads = [d for by in BREAKDOWNS if (d := download(policy, "fee-check", by)) is not None]
    # TX and CA are 5 people: merged they are still fewer than 11, so no state breakdown.
    assert [d.by for d in downloads] == [(), ("crop",)]
    assert download(policy, "fee-check", ("state",)) is None
    assert_nothing_pinned(downloads, respondents)


def test_h2_a_random_search_over_pairs_of_breakdowns_finds_nothing(app, seed, policy):
    """The review's random search found a leak for every pair of breakdowns it tried."""
    publish(app, [SHIPPED_SURVEYS, TEST_SURVEYS, HERE / "surveys"])
    rng = random.Random(2026)
    respondents = [{**p, "state": rng.choice(["FL", "FL", "CA"])} for p in random_crowd(rng) * 2]
    seed_crowd(seed, respondents, rng)
    downloads = [d for by in BREAKDOWNS if (d := download(policy, "fee-check", by)) is not None]
    assert len(downloads) >= 2
    assert_nothing_pinned(downloads, respondents)


def test_h4_a_hidden_groups_zeros_say_nothing(app, seed, policy):
    """H4: TX `_answered` 3 and `yes` hidden, but `no` = 0 shown: every TX respondent's
    passport is held."""
    publish(app, [SHIPPED_SURVEYS, TEST_SURVEYS, HERE / "surveys"])
    # Fourteen in TX (a group), three of whom answered: all three said yes.
    skipped = [{**p, "paid_fee": "_skip", "fee_amount": "_not_asked"} for p in fee_crowd(11, 0)]
    tx = fee_crowd(3, 0, state="TX") + [{**p, "state": "TX"} for p in skipped]
    respondents = fee_crowd(20, 20) + tx
    seed_crowd(seed, respondents, random.Random(4))
    got = download(policy, "fee-check", ("state",))
    assert got is not None
    cells = {r.value: r for r in got.rows if r.group == ("TX",) and r.question_id == "paid_fee"}
    assert cells["_asked"].count == 15  # 14 people: a group
    assert cells["no"].suppressed and cells["no"].count is None  # a true 0, hidden
    assert cells["yes"].suppressed and cells["_answered"].suppressed
    assert_nothing_pinned([got], respondents)


def test_the_one_person_attack_finds_no_group_to_compare(app, seed, policy):
    """With 40 in FL and 1 in TX, `_all` and FL published different numbers exactly when the
    TX worker's answer differed. Now there is no FL group to compare: the breakdown would leave
    one person in `_other`, and is refused (pages say why)."""
    publish(app, [SHIPPED_SURVEYS, TEST_SURVEYS, HERE / "surveys"])
    respondents = fee_crowd(25, 15) + fee_crowd(1, 0, state="TX")
    seed_crowd(seed, respondents, random.Random(5))
    assert download(policy, "fee-check", ("state",)) is None
    assert download(policy, "fee-check", ("state", "crop")) is None
    page = policy.get("/results/fee-check?by=state")
    assert page.status_code == 200
    assert 'id="refused"' in page.get_data(as_text=True)
    everyone = download(policy, "fee-check")
    assert {r.group for r in everyone.rows} == {()}
    # And FL can never be the group `_all` is compared with, whatever else is downloaded.
    crop = download(policy, "fee-check", ("crop",))
    assert crop is None or all("FL" not in r.group for r in crop.rows)


def test_the_shipped_survey_refuses_a_breakdown_by_a_free_text_answer(app, policy):
    """H3: `profile:` on a text question made workers' words group names; breakdowns are by
    choice and yes/no profile questions only."""
    response = policy.get("/results/working-conditions/export.csv?by=comments")
    assert response.status_code == 400
    assert "valid: crop, first_season, state" in response.get_data(as_text=True)


def window(count: int | None, rule=RULE) -> tuple[int, int]:
    """The true counts a published count can come from."""
    assert count is not None
    if count == 0:
        return 0, 0
    if count == rule.smallest_published:
        return rule.min_cell, count + rule.round_base - 1
    return count - rule.round_base + 1, count + rule.round_base - 1


def difference(a: int | None, b: int | None) -> set[int]:
    """What `a - b` can be, from 1 to min_cell - 1 (a hidden count)."""
    (a_low, a_high), (b_low, b_high) = window(a), window(b)
    return set(range(max(1, a_low - b_high), min(RULE.min_cell - 1, a_high - b_low) + 1))


def working_conditions_crowd(seed) -> None:
    """The shapes of the review's findings, in the shipped survey: 46 answered recruit_fee (6
    paid nothing, so debt was asked of 40); 31 answered contract_timing (4 without a contract);
    2 skipped first_season; 3 stopped."""
    rng = random.Random(11)
    for i in range(46):
        seed.record_key = rng.randrange(256)
        answers = {
            "state": "FL",
            "main_crop": "berries",
            "first_season": SKIP if i < 2 else "yes",
            "recruit_fee": "under_200" if i < 30 else "from_500" if i < 40 else "none",
        }
        if i < 40:
            answers["debt"] = "owes" if i < 30 else "no_debt"
        if i < 31:
            answers["contract_timing"] = "no_contract" if i < 4 else "before_visa"
            if i >= 4:
                answers["contract_understood"] = "all"
        seed.response(answers, profile={"state": "FL", "crop": "berries"})
    for _ in range(3):
        seed.response({"state": "FL"}, status="abandoned", profile={"state": "FL"})


@pytest.mark.parametrize(
    ("finding", "hidden", "total", "part"),
    [
        (
            "debt._asked gave recruit_fee none = 6",
            ("recruit_fee", "none"),
            ("recruit_fee", "_answered"),
            ("debt", "_asked"),
        ),
        (
            "contract_understood._asked gave contract_timing no_contract = 4",
            ("contract_timing", "no_contract"),
            ("contract_timing", "_answered"),
            ("contract_understood", "_asked"),
        ),
        (
            "first_season _asked - _answered gave _skipped = 2",
            ("first_season", "_skipped"),
            ("first_season", "_asked"),
            ("first_season", "_answered"),
        ),
        (
            "the funnel's started - completed gave the 3 who stopped",
            None,
            ("_funnel", "started"),
            ("_funnel", "completed"),
        ),
    ],
)
def test_h1_each_subtraction_of_the_review_now_gives_a_range(
    app, seed, policy, finding, hidden, total, part
):
    """H1: each subtraction the review made gave a hidden count exactly; now it gives at least
    two possible values (the solver tests above go further: every combination)."""
    working_conditions_crowd(seed)
    got = download(policy, "working-conditions")
    if hidden is not None:
        assert cell(got.rows, *hidden).suppressed, finding
    possible = difference(cell(got.rows, *total).count, cell(got.rows, *part).count)
    assert len(possible) > 1, (finding, possible)


def test_h3_workers_words_never_reach_a_policy_download_and_nothing_runs(app, seed, policy):
    """H3: replies to a text question saved as a profile became group names in every policy
    download, and one starting with \\x01=HYPERLINK(…) was a live formula in the XLSX."""
    import openpyxl

    words = [
        "Rancho López, Sr. Pedro Ruiz me quitó el pasaporte 555 123 4567",
        '\x01=HYPERLINK("http://x","pasaporte")',
    ]
    # Rows from before profiles on text questions were refused, 11 people each.
    for text in words:
        for _ in range(11):
            seed.response(
                {"state": "FL", "first_season": "yes", "comments": text},
                profile={"state": "FL", "crop": text},
            )
    for fmt in ("csv", "json", "xlsx"):
        for query in ("", "?by=crop", "?by=state&by=crop"):
            response = policy.get(f"/results/working-conditions/export.{fmt}{query}")
            assert response.status_code in (200, 400), (fmt, query)
            if response.status_code == 400:
                continue
            body = response.get_data()
            if fmt == "xlsx":
                book = openpyxl.load_workbook(io.BytesIO(body))
                cells = [c for sheet in book.worksheets for row in sheet.iter_rows() for c in row]
                assert not [c.coordinate for c in cells if c.data_type == "f"]
                text = " ".join(str(c.value) for c in cells if c.value is not None)
            else:
                text = body.decode("utf-8")
            for needle in ("Pedro", "4567", "HYPERLINK", "quitó", "\x01"):
                assert needle not in text, (fmt, query, needle)
