"""Aggregates from snapshots, on SQLite and PostgreSQL, under disclosure control."""

from __future__ import annotations

import csv
import io
import json
import shutil
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from flask.cli import ScriptInfo
from sqlalchemy import event, func, select, update

from engage import db
from engage.cli import main
from engage.models import Answer, Contact, Conversation, ResultSnapshot
from engage.results.disclosure import ALL, OTHER, Rule
from engage.results.report import BreakdownError, BreakdownRefusedError, bin_labels
from engage.results.writers import BOM, iter_aggregate_csv
from engage.services.results import (
    build_report,
    describe_survey,
    take_daily_snapshot,
    take_snapshot,
)
from engage.services.snapshots import SnapshotTooSoonError, count_cells
from engage.survey.definition import Question
from tests.conftest import SHIPPED_SURVEYS, TEST_SURVEYS, Worker, make_app, publish
from tests.results.conftest import T0, FromProfile, Truth, seed_population

HERE = Path(__file__).resolve().parent
RULE = Rule()
LATER = T0 + timedelta(days=400)


def clock(app, now, survey="working-conditions"):
    """The clock's round for one survey: its daily snapshot, if one is due."""
    with app.app_context():
        taken = take_daily_snapshot(db.session(), survey, rule=RULE, now=now)
        db.session().commit()
        return taken


def report(app, by=(), survey="working-conditions", rule=RULE, now=None):
    with app.app_context():
        built = build_report(db.session(), survey, by, rule=rule, now=now or LATER)
        db.session().commit()
        built.rows = list(built.rows)
        return built


def csv_rows(app, by=(), survey="working-conditions", **kwargs) -> list[dict[str, str]]:
    text = "".join(iter_aggregate_csv(report(app, by, survey, **kwargs)))
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
    assert text[len(BOM) :].splitlines()[0] == header


def test_rows_come_with_reserved_values_labels_and_question_texts_in_the_default_language(
    app, seed
):
    seed_population(seed)
    rows = csv_rows(app)
    values = [r["value"] for r in rows if r["question_id"] == "first_season"]
    assert values == ["_answered", "_asked", "_skipped", "yes", "no"]
    assert pick(rows, "first_season", "yes")["label"] == "Sí"
    assert (
        pick(rows, "first_season", "yes")["question"]
        == "¿Es su primera temporada de trabajo en Estados Unidos?"
    )
    assert pick(rows, "main_crop", "berries")["label"] == "Fresa, arándano o mora"
    rule_rows = [r for r in rows if r["question_id"] == "_rule"]
    assert [(r["value"], r["count"]) for r in rule_rows][:4] == [
        ("min_cell", "11"),
        ("round_base", "5"),
        ("smallest_published", "15"),
        ("min_percent_base", "30"),
    ]


# -- counting ----------------------------------------------------------------------------------


STATE_GROUPS = {"CA": {"CA"}, "FL": {"FL"}, OTHER: {"WA", None}, ALL: {"CA", "FL", "WA", None}}


def test_every_published_count_is_its_true_count_rounded_by_its_cell_key(app, seed):
    seed_population(seed)
    truth = Truth.read(app)
    rows = csv_rows(app, ("state",))
    checked = 0
    for r in rows:
        if r["question_id"] not in ("first_season", "state", "main_crop"):
            continue
        if r["suppressed"] == "true":
            continue
        n, key = truth.cell(r["question_id"], r["value"], {"state": STATE_GROUPS[r["state"]]})
        assert int(r["count"]) == RULE.publish(n, key), (r, n, key)
        checked += 1
    assert checked > 20
    # Small values are merged: WA (3) and the unknown (8) make one group of 11.
    assert groups_of(rows, "first_season", ("state",)) == {(ALL,), ("CA",), ("FL",), (OTHER,)}
    # A value nobody gave in a shown group is a true 0.
    assert count(rows, "state", "GA", state=ALL) == 0


def test_counts_round_up_or_down_by_cell_key_and_never_below_fifteen(app, seed):
    seed.record_key = 0  # every cell key 0: every count rounds up
    seed_population(seed)
    rows = csv_rows(app, ("state",))
    assert count(rows, "first_season", "_asked", state=ALL) == 70  # 66
    assert count(rows, "first_season", "yes", state="CA") == 30  # 28
    assert count(rows, "first_season", "no", state="CA") == 15  # 12: never below 15
    assert count(rows, "first_season", "_answered", state="FL") == 15  # 15: a multiple stays
    assert count(rows, "first_season", "no", state="FL") is None  # 3: hidden


def test_two_attributes_give_every_combination_with_all(app, seed):
    seed_population(seed)
    rows = csv_rows(app, ("state", "crop"))
    groups = groups_of(rows, "first_season", ("state", "crop"))
    assert groups == {
        (ALL, ALL),
        (ALL, "berries"),
        (ALL, "grapes"),
        (ALL, "citrus"),
        (ALL, OTHER),
        ("CA", ALL),
        ("CA", "berries"),
        ("CA", "grapes"),
        ("FL", ALL),
        ("FL", "citrus"),
        (OTHER, ALL),
        (OTHER, OTHER),
    }
    assert count(rows, "first_season", "_answered", state="CA", crop="berries") == 25


def test_a_breakdown_that_would_single_out_a_few_is_refused(app, seed):
    seed_population(seed)
    profile = {"state": "TX", "crop": "berries"}
    for _ in range(12):
        seed.response(
            {"state": "TX", "main_crop": "berries", "first_season": "no"}, profile=profile
        )
    # TX (12) is a group of its own now, and WA with the unknown (11) stay together; every
    # pair of state and crop holds 11 or more (or nobody): allowed.
    rows = csv_rows(app, ("state", "crop"))
    assert ("TX", "berries") in groups_of(rows, "first_season", ("state", "crop"))
    # One CA worker picking citrus makes (CA, citrus) a group of one: the pair is refused,
    # each attribute alone is not (in the next snapshot, with ten more in FL).
    for state in ["CA"] + ["FL"] * 10:
        profile = {"state": state, "crop": "citrus"}
        seed.response(
            {"state": state, "main_crop": "citrus", "first_season": "no"}, profile=profile
        )
    later = LATER + timedelta(days=2)
    assert clock(app, later) is not None
    assert ("TX",) in groups_of(csv_rows(app, ("state",), now=later), "first_season", ("state",))
    with pytest.raises(BreakdownRefusedError):
        report(app, ("state", "crop"), now=later)


def test_one_small_value_left_over_refuses_the_breakdown(app, seed):
    for state, n in (("FL", 40), ("TX", 1)):
        for _ in range(n):
            seed.response({"state": state, "first_season": "yes"}, profile={"state": state})
    with pytest.raises(BreakdownRefusedError, match="fewer than 11 people"):
        report(app, ("state",))
    assert count(csv_rows(app), "first_season", "_answered") in (40, 45)


def test_missed_counts_as_skipped_and_profile_rows_as_answered(app, seed):
    seed_population(seed)
    for _ in range(12):
        seed.response({"state": FromProfile("CA"), "first_season": "yes"}, profile={"state": "CA"})
    truth = Truth.read(app)
    rows = csv_rows(app, ("state",))
    n, key = truth.cell("state", "CA", {"state": {"CA"}})
    assert n == 52
    assert count(rows, "state", "CA", state="CA") == RULE.publish(n, key)
    n, key = truth.cell("hours_per_day", "_skipped")
    assert n == 1  # the missed one: hidden
    assert count(rows, "hours_per_day", "_skipped", state=ALL) is None


def test_simulated_answers_and_conversations_never_count(app, seed):
    seed_population(seed)
    before = csv_rows(app, ("state",), now=LATER)
    for _ in range(20):
        seed.response(
            {"state": "CA", "first_season": "no", "hours_per_day": 20},
            profile={"state": "CA"},
            simulated=True,
            invited=True,
        )
    after = csv_rows(app, ("state",), now=LATER + timedelta(days=2))
    assert after == before
    with app.app_context():
        assert db.session().scalar(select(func.count()).select_from(ResultSnapshot)) == 1


def test_with_repeat_each_respondent_counts_once_with_the_latest_answer(app, seed):
    publish(app, [SHIPPED_SURVEYS, TEST_SURVEYS, HERE / "surveys"])
    seed.record_key = 0
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
    assert count(rows, "paid", "_answered") == 15  # 12 people, rounded up
    assert count(rows, "paid", "yes") == 15
    assert count(rows, "paid", "no") == 0
    assert count(rows, "_funnel", "started") == 15  # the funnel counts people, not visits


def test_number_answers_are_counted_in_bins_with_medians_from_published_counts(app, seed):
    seed.record_key = 0
    seed_population(seed)
    rows = csv_rows(app)
    bins = [
        (r["value"], r["label"], r["count"])
        for r in rows
        if r["question_id"] == "hours_per_day" and not r["value"].startswith("_")
    ]
    # True counts 7, 15, 23, 15, 5, all rounded up.
    assert bins == [
        ("1-5", "1-5", ""),
        ("6-7", "6-7", "15"),
        ("8-9", "8-9", "25"),
        ("10-11", "10-11", "15"),
        ("12-24", "12-24", ""),
    ]
    medians = report(app, ("state",)).medians["hours_per_day"]
    # From the published 15, 25, 15 alone: the middle (27.5) is 12.5 into 8-9's 25.
    assert medians[(ALL,)] == 9
    # CA: 20 (8 h) and 15 (10 h) published as 20 and 15, 5 (12 h) hidden: 17.5 into 8-9,
    # 9.75, given with one decimal.
    assert medians[("CA",)] == 9.8
    assert medians[("FL",)] is None  # 15 answers: fewer than the percentage base
    assert medians[(OTHER,)] is None


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
    seed.record_key = 0
    seed_population(seed)
    for _ in range(11):
        seed.response({"housing_conditions": ["pests", "broken_bath_kitchen"]})
    rows = csv_rows(app)
    assert count(rows, "housing_conditions", "_answered") == 70  # 69
    assert count(rows, "housing_conditions", "crowded") == 35  # 33
    assert count(rows, "housing_conditions", "pests") == 30  # 26
    assert count(rows, "housing_conditions", "broken_bath_kitchen") == 15  # 11
    assert count(rows, "housing_conditions", "none") is None  # 10 workers: hidden
    assert (
        pick(rows, "housing_conditions", "crowded")["percent"] == "50.0"
    )  # 35 of 70, as published


def test_free_text_answers_never_appear(app, seed):
    seed_population(seed)
    rows = csv_rows(app, ("state",))
    assert [r["value"] for r in rows if r["question_id"] == "comments" and r["state"] == ALL] == [
        "_answered",
        "_asked",
        "_skipped",
    ]
    text = "".join(iter_aggregate_csv(report(app, ("state",))))
    assert "555" not in text and "todo bien" not in text


def test_the_funnel_counts_people_and_the_report_says_where_people_stopped(app, seed):
    seed.record_key = 0
    seed_population(seed)
    for _ in range(12):
        seed.response({}, status="expired", invited=True, profile={"state": "CA"})
    for _ in range(4):
        seed.response({}, status="declined")
    for _ in range(11):
        seed.response(
            {"state": "CA", "first_season": "no"}, status="abandoned", profile={"state": "CA"}
        )
    seed.response({"state": "CA"}, status="active", profile={"state": "CA"})
    built = report(app, ("state",))
    rows = csv_rows(app, ("state",))
    funnel = {
        r["value"]: r["count"] for r in rows if r["question_id"] == "_funnel" and r["state"] == ALL
    }
    # 94 people started, 12 invited, 78 got past consent, 66 completed: rounded up.
    assert funnel == {"invited": "15", "started": "95", "consented": "80", "completed": "70"}
    # The invited never answered the state question: their group is unknown, merged.
    assert count(rows, "_funnel", "invited", state=OTHER) == 15
    assert count(rows, "_funnel", "invited", state="CA") == 0
    assert built.funnel_stops["stopped"] == 30  # 27
    assert built.funnel_stops["last_answered"]["_none"]["count"] == 20  # 16
    assert built.funnel_stops["last_answered"]["first_season"]["count"] == 15  # 11


# -- disclosure control on real tables -----------------------------------------------------------


@pytest.mark.parametrize("by", [(), ("state",), ("state", "crop")])
def test_no_count_from_1_to_10_and_percents_from_published_counts(app, seed, by):
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
            assert int(r["count"]) == 0 or int(r["count"]) >= 15, r
            assert int(r["count"]) % 5 == 0, r
        if r["percent"]:
            base = answered[(r["question_id"], tuple(r[a] for a in by))]
            assert base and int(base) >= 30, r
            expected = min(100.0, round(100 * int(r["count"]) / int(base), 1))
            assert float(r["percent"]) == expected, r


def test_a_hidden_groups_zeros_are_hidden_too(app, seed):
    """H4: TX `_answered` 3 and `yes` hidden, but `no` = 0 shown, said every TX worker's
    answer. A group with few answers shows nothing at all."""
    for _ in range(20):
        seed.response({"state": "TX", "first_season": "no"}, profile={"state": "TX"})
    for _ in range(3):
        seed.response(
            {"state": "TX", "first_season": "no", "housing_conditions": ["pests"]},
            profile={"state": "TX"},
        )
    rows = csv_rows(app, ("state",))
    for value in ("_answered", "_asked", "pests", "crowded", "none"):
        row = pick(rows, "housing_conditions", value, state="TX")
        assert row["suppressed"] == "true" and row["count"] == "", row
    # And with no breakdown the same: three answers show no zero.
    rows = csv_rows(app)
    assert all(
        r["suppressed"] == "true" for r in rows if r["question_id"] == "housing_conditions"
    ), [r for r in rows if r["question_id"] == "housing_conditions"]


# -- snapshots -----------------------------------------------------------------------------------


def test_downloads_read_a_snapshot_the_clock_takes_daily_after_enough_new_respondents(app, seed):
    for _ in range(10):
        seed.response({"state": "CA", "first_season": "no"}, profile={"state": "CA"})
    # Ten people: not enough for a first snapshot, by a download or by the clock.
    assert report(app, now=LATER).snapshot is None
    assert clock(app, LATER) is None
    seed_population(seed)
    first = report(app, now=LATER)
    assert first.snapshot is not None and first.snapshot.taken_at == LATER
    # One more worker: nothing moves, however long one waits.
    seed.response({"state": "CA", "first_season": "no"}, profile={"state": "CA"})
    for later in (timedelta(minutes=5), timedelta(days=3)):
        assert clock(app, LATER + later) is None
        again = report(app, now=LATER + later)
        assert again.snapshot == first.snapshot
        assert again.rows == first.rows
    # Ten more (11 new in all): the clock takes one once a day has passed, not before.
    for _ in range(10):
        seed.response({"state": "CA", "first_season": "no"}, profile={"state": "CA"})
    assert clock(app, LATER + timedelta(hours=23)) is None
    taken = clock(app, LATER + timedelta(days=4))
    assert taken is not None and taken.taken_at == LATER + timedelta(days=4)
    assert report(app, now=LATER + timedelta(days=4)).snapshot == taken
    # And a download never takes one itself: the next day's is the clock's again.
    for _ in range(11):
        seed.response({"state": "FL", "first_season": "no"}, profile={"state": "FL"})
    assert report(app, now=LATER + timedelta(days=9)).snapshot == taken


def test_the_clock_takes_the_snapshots_of_every_survey(app, seed):
    from engage.clock import run_periodic

    seed_population(seed)
    for _ in range(11):
        seed.response({"water": "yes"}, survey_id="housing-check")
    with app.app_context():
        assert run_periodic()["snapshots"] == 2
        assert run_periodic()["snapshots"] == 0  # within the day
        surveys = db.session().scalars(select(ResultSnapshot.survey_id)).all()
    assert sorted(surveys) == ["housing-check", "working-conditions"]


def test_an_admin_may_ask_sooner_but_never_with_fewer_new_respondents(app, seed):
    seed_population(seed)
    first = report(app, now=LATER)
    with app.app_context():
        with pytest.raises(SnapshotTooSoonError, match="0 new respondent"):
            take_snapshot(db.session(), "working-conditions", rule=RULE, requested_by=None)
        db.session().rollback()
    for _ in range(11):
        seed.response({"state": "FL", "first_season": "no"}, profile={"state": "FL"})
    with app.app_context():
        taken = take_snapshot(
            db.session(), "working-conditions", rule=RULE, requested_by=None, now=LATER
        )
        db.session().commit()
    assert taken.id != first.snapshot.id
    assert report(app, now=LATER + timedelta(minutes=1)).snapshot == taken


def test_no_snapshot_while_nobody_has_answered(app):
    assert report(app).snapshot is None
    assert count(csv_rows(app), "first_season", "_asked") == 0


# -- versions, errors -------------------------------------------------------------------------


def test_versions_are_merged_by_question_id_with_the_current_texts(app, seed):
    seed.record_key = 0
    for _ in range(11):
        seed.response({"water": "no"}, survey_id="housing-check")
    changed = Path(app.instance_path).parent / "surveys"
    shutil.copytree(TEST_SURVEYS, changed)
    path = changed / "housing-check.yaml"
    path.write_text(path.read_text().replace("¿Tiene agua limpia", "¿Hay agua limpia"))
    publish(app, [SHIPPED_SURVEYS, changed])
    for _ in range(12):
        seed.response({"water": "yes"}, survey_id="housing-check")
    built = report(app, survey="housing-check")
    assert len(built.survey.versions) == 2
    rows = csv_rows(app, survey="housing-check")
    assert count(rows, "water", "_answered") == 25  # 23
    assert pick(rows, "water", "yes")["question"].startswith("¿Hay agua limpia")


def test_a_bad_breakdown_names_the_valid_attributes(app):
    with pytest.raises(BreakdownError, match="valid: crop, first_season, state") as caught:
        report(app, ("farm",))
    assert caught.value.valid == ("crop", "first_season", "state")
    with pytest.raises(BreakdownError, match="valid: state"):
        report(app, ("crop",), survey="housing-check")
    with pytest.raises(BreakdownError, match="at most 2"):
        report(app, ("state", "crop", "state"))


def test_an_unknown_survey_is_a_lookup_error(app):
    with pytest.raises(LookupError, match="no-such-survey"):
        report(app, survey="no-such-survey")


def test_a_profile_value_that_is_not_the_questions_value_never_names_a_group(app, seed):
    """H3: free text (or a formula) saved as a profile value became a group name."""
    for text in ('=HYPERLINK("http://x")', "Rancho López, Sr. Pedro Ruiz 555 123 4567"):
        for _ in range(11):
            seed.response({"water": "yes"}, survey_id="housing-check", profile={"state": text})
    for _ in range(11):
        seed.response(
            {"state": "CA", "water": "no"}, survey_id="housing-check", profile={"state": "CA"}
        )
    rows = csv_rows(app, ("state",), survey="housing-check")
    assert groups_of(rows, "water", ("state",)) == {(ALL,), ("CA",), (OTHER,)}
    text = "".join(iter_aggregate_csv(report(app, ("state",), survey="housing-check")))
    assert "HYPERLINK" not in text and "Pedro" not in text and "4567" not in text


# -- end to end: conversations by text, then the export ------------------------------------------


def test_conversations_held_by_text_reach_the_export(request, tmp_path, database):
    pg = request.getfixturevalue("pg_url") if database == "postgresql" else None
    app = make_app(tmp_path, database, pg, ENGAGE_MIN_CELL="2", ENGAGE_ROUND_BASE="1")
    try:
        publish(app, [SHIPPED_SURVEYS, TEST_SURVEYS])
        for phone, state, water in (
            ("+15551230001", "cali", "1"),
            ("+15551230002", "California", "si"),
            ("+15551230003", "1", "2"),
            ("+15551230004", "florida", "no"),
            ("+15551230005", "FL", "no"),
        ):
            replies = Worker(app, phone).script("HOUSING", "1", state, water)
            assert replies[-1].startswith("Thank you.")

        def export() -> dict:
            result = CliRunner().invoke(
                main,
                ["export", "housing-check", "--by", "state", "--format", "json"],
                obj=ScriptInfo(create_app=lambda: app),
            )
            assert result.exit_code == 0, result.output + repr(result.exception)
            got = json.loads(result.stdout)
            return {(r["question_id"], r["state"], r["value"]): r["count"] for r in got["rows"]}

        # `engage simulate` marks its contacts simulated: they never count, and while nobody
        # real has answered there is no snapshot to wait for.
        assert export()[("water", ALL, "_asked")] == 0
        # ...so count them as real workers to see the export follow the conversations.
        with app.app_context(), db.transaction() as session:
            for model in (Contact, Conversation, Answer):
                session.execute(update(model).values(is_simulated=False))
        counts = export()
        assert counts[("state", ALL, "CA")] == 2
        assert counts[("state", ALL, "FL")] == 3
        assert counts[("water", "CA", "yes")] == 2
        assert counts[("water", "CA", "no")] == 0
        assert counts[("water", "FL", "no")] == 3
        assert counts[("_funnel", ALL, "completed")] == 5
    finally:
        app.extensions["engage.engine"].dispose()


@pytest.mark.parametrize(("role", "status"), [("policy", 403), ("staff", 403), ("admin", 302)])
def test_only_an_admin_asks_for_a_snapshot_and_it_is_audited(web_app, seed, role, status):
    from engage.models import AuditEntry
    from tests.test_web_access import csrf_token, sign_in

    seed_population(seed)
    client = web_app.test_client()
    sign_in(client, role)
    page = "/results/working-conditions"
    assert client.get(page).status_code == 200  # takes the first snapshot
    token = csrf_token(client, page) if role == "admin" else csrf_token(client, "/login")
    # Nobody new: refused (the page says so), nothing recorded.
    response = client.post(f"{page}/snapshot", data={"csrf_token": token})
    assert response.status_code == status
    if role != "admin":
        return
    assert response.location.endswith("snapshot=refused")
    for _ in range(11):
        seed.response({"state": "FL", "first_season": "no"}, profile={"state": "FL"})
    response = client.post(f"{page}/snapshot", data={"csrf_token": token})
    assert response.status_code == 302 and "refused" not in response.location
    with web_app.app_context():
        entries = (
            db.session().scalars(select(AuditEntry).where(AuditEntry.action == "snapshot")).all()
        )
        assert [(e.actor, e.survey_id) for e in entries] == [
            ("admin@example.org", "working-conditions")
        ]
        assert db.session().scalar(select(func.count()).select_from(ResultSnapshot)) == 2
    # Without the CSRF token: refused.
    assert client.post(f"{page}/snapshot").status_code == 400


@pytest.mark.parametrize("database", ["sqlite"])
def test_on_sqlite_each_person_is_joined_to_their_groups_by_an_index(app, seed, database):
    """A snapshot's counts join every person to their attribute values. Searched any other way
    (all answers to the question, once per person) a snapshot of 100,000 people took minutes on
    SQLite instead of seconds: every such join must look the person up."""
    seed_population(seed)  # three attributes
    publish(app, [SHIPPED_SURVEYS, TEST_SURVEYS, HERE / "surveys"])
    for state in ("CA", "FL", "CA"):  # one attribute, saved by one question
        seed.response({"state": state, "paid": "yes"}, survey_id="repeat-check")
    with app.app_context():
        session = db.session()
        statements: list[tuple[str, Any]] = []

        def record(_conn, _cursor, statement, parameters, _context, _executemany) -> None:
            if statement.lstrip().upper().startswith(("SELECT", "WITH")):
                statements.append((statement, parameters))

        engine = app.extensions["engage.engine"]
        event.listen(engine, "before_cursor_execute", record)
        try:
            for survey_id in ("working-conditions", "repeat-check"):
                count_cells(session, describe_survey(session, survey_id))
        finally:
            event.remove(engine, "before_cursor_execute", record)
        joins = [
            line
            for statement, parameters in statements
            for *_, line in session.connection().exec_driver_sql(
                f"EXPLAIN QUERY PLAN {statement}", parameters
            )
            if "LEFT-JOIN" in line
        ]
    assert joins, statements
    assert all("(contact_id=?)" in line for line in joins), joins
