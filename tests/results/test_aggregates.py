"""Aggregates counted in the database, on SQLite and PostgreSQL, under disclosure control."""

from __future__ import annotations

import csv
import io
import json
import shutil
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from flask.cli import ScriptInfo
from sqlalchemy import update

from engage import db
from engage.cli import main
from engage.models import Answer, Contact, Conversation
from engage.results.disclosure import ALL
from engage.results.report import UNKNOWN, BreakdownError, bin_labels, funnel_table
from engage.results.writers import BOM, iter_aggregate_csv
from engage.services.results import build_report
from engage.survey.definition import Question
from tests.conftest import SHIPPED_SURVEYS, TEST_SURVEYS, Worker, make_app, publish
from tests.results.conftest import T0, FromProfile, seed_population

HERE = Path(__file__).resolve().parent
EXACT = {"min_cell": 1, "min_percent_base": 0}  # nothing hidden: the raw counts


def report(app, by=(), survey="working-conditions", **limits):
    with app.app_context():
        return build_report(db.session(), survey, by, **limits)


def csv_rows(app, by=(), survey="working-conditions", **limits) -> list[dict[str, str]]:
    text = "".join(iter_aggregate_csv(report(app, by, survey, **limits)))
    assert text.startswith(BOM)
    return list(csv.DictReader(io.StringIO(text[len(BOM) :])))


def pick(rows, question_id: str, value: str, **group: str) -> dict[str, str]:
    found = [
        r
        for r in rows
        if r["question_id"] == question_id
        and r["value"] == value
        and all(r[k] == v for k, v in group.items())
    ]
    assert len(found) == 1, (question_id, value, group, found)
    return found[0]


def count(rows, question_id: str, value: str, **group: str) -> int | None:
    raw = pick(rows, question_id, value, **group)["count"]
    return None if raw == "" else int(raw)


def groups_of(rows, question_id: str, by: tuple[str, ...]) -> set[tuple[str, ...]]:
    return {tuple(r[a] for a in by) for r in rows if r["question_id"] == question_id}


# -- the file's shape --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("by", "header"),
    [
        ((), "question_id,question,value,label,count,percent,suppressed"),
        (("state",), "question_id,question,state,value,label,count,percent,suppressed"),
        (
            ("state", "crop"),
            "question_id,question,state,crop,value,label,count,percent,suppressed",
        ),
    ],
)
def test_the_csv_header_is_the_contract_exactly(app, seed, by, header):
    seed_population(seed)
    text = "".join(iter_aggregate_csv(report(app, by)))
    assert text.startswith(BOM + header + "\r\n")


def test_rows_come_with_reserved_values_labels_and_question_texts_in_the_default_language(
    app, seed
):
    seed_population(seed)
    rows = csv_rows(app, **EXACT)
    values = [r["value"] for r in rows if r["question_id"] == "paid_on_time"]
    assert values == ["_answered", "_asked", "_skipped", "yes", "no"]
    assert pick(rows, "paid_on_time", "yes")["label"] == "Sí"
    assert pick(rows, "paid_on_time", "yes")["question"] == "¿Le pagan a tiempo?"
    assert pick(rows, "crop", "berries")["label"] == "Fresa o arándano"
    rule_rows = [r for r in rows if r["question_id"] == "_rule"]
    assert [(r["value"], r["count"]) for r in rule_rows] == [
        ("min_cell", "1"),
        ("min_percent_base", "0"),
    ]


# -- counting ----------------------------------------------------------------------------------


def test_counts_by_state_include_everyone_and_the_unknown(app, seed):
    seed_population(seed)
    rows = csv_rows(app, ("state",), **EXACT)
    expected = {
        ALL: (60, 59, 1, 44, 15),
        "CA": (40, 40, 0, 28, 12),
        "FL": (15, 15, 0, 12, 3),
        "WA": (3, 3, 0, 3, 0),
        UNKNOWN: (2, 1, 1, 1, 0),
    }
    for state, numbers in expected.items():
        got = tuple(
            count(rows, "paid_on_time", v, state=state)
            for v in ("_asked", "_answered", "_skipped", "yes", "no")
        )
        assert got == numbers, state
    # A group nobody is in is left out; a value nobody gave in an existing group is a true 0.
    assert groups_of(rows, "paid_on_time", ("state",)) == {
        (ALL,),
        ("CA",),
        ("FL",),
        ("WA",),
        (UNKNOWN,),
    }
    assert count(rows, "state", "GA", state=ALL) == 0
    assert pick(rows, "paid_on_time", "no", state="CA")["percent"] == "30.0"


def test_two_attributes_give_every_combination_with_all(app, seed):
    seed_population(seed)
    rows = csv_rows(app, ("state", "crop"), **EXACT)
    groups = groups_of(rows, "paid_on_time", ("state", "crop"))
    assert {
        (ALL, ALL),
        (ALL, "berries"),
        ("CA", ALL),
        ("CA", "berries"),
        ("CA", "grapes"),
    } <= groups
    assert {(UNKNOWN, UNKNOWN), (ALL, UNKNOWN), (UNKNOWN, ALL)} <= groups
    assert ("FL", "berries") not in groups  # nobody
    assert count(rows, "paid_on_time", "_answered", state="CA", crop="berries") == 25
    assert count(rows, "paid_on_time", "_answered", state=ALL, crop="grapes") == 15
    assert count(rows, "paid_on_time", "_answered", state="FL", crop=ALL) == 15


def test_missed_counts_as_skipped_and_profile_rows_as_answered(app, seed):
    seed_population(seed)
    for _ in range(12):
        seed.response({"state": FromProfile("CA"), "paid_on_time": "yes"}, profile={"state": "CA"})
    rows = csv_rows(app, ("state",), **EXACT)
    assert count(rows, "state", "CA", state="CA") == 52
    assert count(rows, "state", "_answered", state=ALL) == 70
    assert count(rows, "hours_last_week", "_skipped", state=UNKNOWN) == 1  # missed
    assert count(rows, "hours_last_week", "_asked", state=UNKNOWN) == 2


def test_simulated_answers_and_conversations_never_count(app, seed):
    seed_population(seed)
    before = csv_rows(app, ("state",))
    for _ in range(20):
        seed.response(
            {"state": "CA", "paid_on_time": "no", "hours_last_week": 99},
            profile={"state": "CA"},
            simulated=True,
            invited=True,
        )
    assert csv_rows(app, ("state",)) == before
    assert count(before, "_funnel", "started", state=ALL) == 60


def test_with_repeat_each_respondent_counts_once_with_the_latest_answer(app, seed):
    publish(app, [SHIPPED_SURVEYS, TEST_SURVEYS, HERE / "surveys"])
    for _ in range(12):
        contact_id = seed.contact({"state": "CA"})
        for day, paid in ((0, "no"), (7, "no"), (14, "yes")):
            seed.response(
                {"state": FromProfile("CA"), "paid": paid},
                profile={"state": "CA"},
                contact_id=contact_id,
                survey_id="repeat-check",
                at=T0 + timedelta(days=day),
            )
    rows = csv_rows(app, survey="repeat-check")
    assert count(rows, "paid", "_answered") == 12
    assert count(rows, "paid", "yes") == 12
    assert count(rows, "paid", "no") == 0
    assert count(rows, "_funnel", "started") == 36  # the funnel counts conversations


def test_a_later_row_wins_a_tie_on_answer_time(app, seed):
    publish(app, [SHIPPED_SURVEYS, TEST_SURVEYS, HERE / "surveys"])
    contact_id = seed.contact()
    for paid in ("no", "yes"):
        seed.response({"paid": paid}, contact_id=contact_id, survey_id="repeat-check", at=T0)
    rows = csv_rows(app, survey="repeat-check", **EXACT)
    assert (count(rows, "paid", "yes"), count(rows, "paid", "no")) == (1, 0)


def test_number_answers_are_counted_in_bins_with_medians_in_the_report(app, seed):
    seed_population(seed)
    rows = csv_rows(app, **EXACT)
    bins = [
        (r["value"], r["label"], r["count"])
        for r in rows
        if r["question_id"] == "hours_last_week" and not r["value"].startswith("_")
    ]
    assert bins == [
        ("0-19", "0-19", "1"),
        ("20-39", "20-39", "15"),
        ("40-59", "40-59", "23"),
        ("60-79", "60-79", "15"),
        ("80-120", "80-120", "5"),
    ]
    medians = report(app, ("state",)).medians["hours_last_week"]
    assert medians[(ALL,)] == 45
    assert medians[("CA",)] == 55  # 20 x 45 then 15 x 65: the mean of the middle two
    assert medians[("WA",)] is None  # 3 answers: fewer than the minimum cell
    assert medians[(UNKNOWN,)] is None


@pytest.mark.parametrize(
    ("bins", "low", "high", "labels"),
    [
        ((0, 20, 40, 60, 80), 0, 120, ["0-19", "20-39", "40-59", "60-79", "80-120"]),
        ((0, 20, 40), 0, None, ["0-19", "20-39", "40+"]),
        ((10, 20), None, 20, ["<10", "10-19", "20"]),
        ((0, 2.5), 0, 5, ["0-<2.5", "2.5-5"]),
        ((), 0, 10, []),
    ],
)
def test_bin_labels(bins, low, high, labels):
    question = Question("q", "number", {"es": "?"}, min=low, max=high, bins=bins)
    assert [label for _low, _high, label in bin_labels(question)] == labels


def test_multi_counts_each_option_once_per_respondent(app, seed):
    seed_population(seed)
    for _ in range(11):
        seed.response({"housing": ["pests", "pests", "broken_bath_kitchen"]})
    rows = csv_rows(app)
    assert count(rows, "housing", "_answered") == 69
    assert count(rows, "housing", "crowded") == 33
    assert count(rows, "housing", "pests") == 26
    assert count(rows, "housing", "broken_bath_kitchen") == 11
    assert count(rows, "housing", "none") is None  # 10 workers: hidden
    assert pick(rows, "housing", "crowded")["percent"] == "47.8"


def test_free_text_answers_never_appear(app, seed):
    seed_population(seed)
    rows = csv_rows(app, ("state",), **EXACT)
    assert [r["value"] for r in rows if r["question_id"] == "comments" and r["state"] == ALL] == [
        "_answered",
        "_asked",
        "_skipped",
    ]
    text = "".join(iter_aggregate_csv(report(app, ("state",), **EXACT)))
    assert "555" not in text and "todo bien" not in text


def test_the_funnel_counts_conversations_and_the_report_says_where_people_stopped(app, seed):
    seed_population(seed)
    for _ in range(12):
        seed.response({}, status="expired", invited=True, profile={"state": "CA"})
    for _ in range(4):
        seed.response({}, status="declined")
    for _ in range(11):
        seed.response(
            {"state": "CA", "paid_on_time": "no"}, status="abandoned", profile={"state": "CA"}
        )
    seed.response({"state": "CA"}, status="active", profile={"state": "CA"})
    built = report(app, ("state",))
    rows = csv_rows(app, ("state",))
    funnel = {
        r["value"]: r["count"] for r in rows if r["question_id"] == "_funnel" and r["state"] == ALL
    }
    assert funnel == {"invited": "12", "started": "88", "consented": "72", "completed": "60"}
    assert count(rows, "_funnel", "invited", state="CA") == 12  # the contact's profile
    assert built.funnel_stops["stopped"] == 27
    assert built.funnel_stops["last_answered"]["_none"]["count"] == 16
    assert built.funnel_stops["last_answered"]["paid_on_time"]["count"] == 11


def test_funnel_stages_hide_a_small_difference():
    counts = {(): {"invited": 0, "started": 60, "consented": 60, "completed": 55}}
    table = funnel_table(counts, 0, 11, 30)
    shown = {value: cell.count for (_g, value), cell in table.cells.items() if cell.shown}
    # 5 stopped after consenting: showing both 60 and 55 would give that 5 away.
    assert "completed" not in shown and shown["started"] == 60


# -- disclosure control on real tables -----------------------------------------------------------


@pytest.mark.parametrize("by", [(), ("state",), ("state", "crop")])
def test_no_small_count_is_shown_and_percents_need_a_base_of_30(app, seed, by):
    seed_population(seed)
    rows = [r for r in csv_rows(app, by) if r["question_id"] != "_rule"]
    assert any(r["suppressed"] == "true" for r in rows)
    answered = {
        (r["question_id"], tuple(r[a] for a in by)): r["count"]
        for r in rows
        if r["value"] == "_answered"
    }
    for r in rows:
        assert (r["count"] == "") == (r["suppressed"] == "true"), r
        if r["count"]:
            assert int(r["count"]) == 0 or int(r["count"]) >= 11, r
        if r["percent"]:
            base = answered[(r["question_id"], tuple(r[a] for a in by))]
            assert base and int(base) >= 30, r
            assert r["percent"] == f"{100 * int(r['count']) / int(base):.1f}"


def test_a_few_skips_hide_asked_rather_than_the_base_of_the_percents(app, seed):
    seed_population(seed)
    rows = csv_rows(app)
    assert count(rows, "paid_on_time", "_skipped") is None  # 1 skip
    assert count(rows, "paid_on_time", "_asked") is None
    assert count(rows, "paid_on_time", "_answered") == 59
    assert pick(rows, "paid_on_time", "yes")["percent"] == "74.6"


# -- versions, errors -------------------------------------------------------------------------


def test_versions_are_merged_by_question_id_with_the_current_texts(app, seed, tmp_path):
    for _ in range(11):
        seed.response({"water": "no"}, survey_id="housing-check")
    changed = tmp_path / "surveys"
    shutil.copytree(TEST_SURVEYS, changed)
    path = changed / "housing-check.yaml"
    path.write_text(path.read_text().replace("¿Tiene agua limpia", "¿Hay agua limpia"))
    publish(app, [SHIPPED_SURVEYS, changed])
    for _ in range(12):
        seed.response({"water": "yes"}, survey_id="housing-check")
    built = report(app, survey="housing-check")
    assert len(built.survey.versions) == 2
    rows = csv_rows(app, survey="housing-check")
    assert count(rows, "water", "_answered") == 23
    assert pick(rows, "water", "yes")["question"].startswith("¿Hay agua limpia")


def test_a_bad_breakdown_names_the_valid_attributes(app):
    with pytest.raises(BreakdownError, match="valid: crop, state") as caught:
        report(app, ("farm",))
    assert caught.value.valid == ("crop", "state")
    with pytest.raises(BreakdownError, match="valid: state"):
        report(app, ("crop",), survey="housing-check")
    with pytest.raises(BreakdownError, match="at most 2"):
        report(app, ("state", "crop", "state"))


def test_an_unknown_survey_is_a_lookup_error(app):
    with pytest.raises(LookupError, match="no-such-survey"):
        report(app, survey="no-such-survey")


def test_a_profile_value_that_looks_like_a_formula_is_neutralised(app, seed):
    for _ in range(11):
        seed.response(
            {"water": "yes"}, survey_id="housing-check", profile={"state": '=HYPERLINK("http://x")'}
        )
    rows = csv_rows(app, ("state",), survey="housing-check")
    assert groups_of(rows, "water", ("state",)) == {(ALL,), ('\'=HYPERLINK("http://x")',)}


# -- end to end: conversations by text, then the export ------------------------------------------


def test_conversations_held_by_text_reach_the_export(request, tmp_path, database):
    pg = request.getfixturevalue("pg_url") if database == "postgresql" else None
    # No suppression, to see every count: below the floor config.load keeps, so set directly.
    app = make_app(tmp_path, database, pg, ENGAGE_MIN_CELL=1, ENGAGE_MIN_PERCENT_BASE=0)
    try:
        publish(app, [SHIPPED_SURVEYS, TEST_SURVEYS])
        for phone, state, water in (
            ("+15551230001", "cali", "1"),
            ("+15551230002", "California", "no"),
            ("+15551230003", "1", "2"),
        ):
            replies = Worker(app, phone).script("HOUSING", "1", state, water)
            assert replies[-1] == "Thank you."

        def export() -> dict:
            result = CliRunner().invoke(
                main,
                ["export", "housing-check", "--by", "state", "--format", "json"],
                obj=ScriptInfo(create_app=lambda: app),
            )
            assert result.exit_code == 0, result.output + repr(result.exception)
            got = json.loads(result.stdout)
            return {(r["question_id"], r["state"], r["value"]): r["count"] for r in got["rows"]}

        # `engage simulate` marks its contacts simulated: they never count...
        assert export()[("water", ALL, "_asked")] == 0
        # ...so count them as real workers to see the export follow the conversations.
        with app.app_context(), db.transaction() as session:
            for model in (Contact, Conversation, Answer):
                session.execute(update(model).values(is_simulated=False))
        counts = export()
        assert counts[("state", ALL, "CA")] == 2
        assert counts[("state", ALL, "FL")] == 1
        assert counts[("water", "CA", "yes")] == 1
        assert counts[("water", "CA", "no")] == 1
        assert counts[("water", "FL", "no")] == 1
        assert counts[("_funnel", ALL, "completed")] == 3
    finally:
        app.extensions["engage.engine"].dispose()
