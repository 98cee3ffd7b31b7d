"""`engage surveys load`: versions by content, never changed once published."""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from engage import db
from engage.models import Answer, Contact, SurveyVersion
from engage.services.surveys import PublishError, publish_surveys
from engage.survey.loader import load_survey_file

TEST_SURVEYS = Path(__file__).resolve().parent / "surveys"


def load(path: Path):
    survey, problems = load_survey_file(path)
    assert survey is not None, problems
    return survey


def versions(app, survey_id="housing-check"):
    with app.app_context():
        rows = db.session().scalars(
            select(SurveyVersion)
            .where(SurveyVersion.survey_id == survey_id)
            .order_by(SurveyVersion.id)
        )
        return [(r.version, r.is_current, r.definition) for r in rows]


def test_a_comment_changes_nothing_a_text_change_is_a_new_version(app, tmp_path, worker):
    path = tmp_path / "housing.yaml"
    shutil.copy(TEST_SURVEYS / "housing-check.yaml", path)
    before = versions(app)
    assert len(before) == 1
    path.write_text("# a new comment\n" + path.read_text())
    with app.app_context(), db.transaction() as session:
        assert publish_surveys(session, [load(path)])[0].action == "unchanged"
    worker().script("HOUSING", "1", "1")  # a conversation on the first version, at `water`
    path.write_text(path.read_text().replace("Thank you.", "Thank you very much."))
    with app.app_context(), db.transaction() as session:
        assert publish_surveys(session, [load(path)])[0].action == "published"
    after = versions(app)
    assert [current for _v, current, _d in after] == [False, True]
    assert after[0][2] == before[0][2]  # the old version's definition is untouched
    # The conversation finishes on the version it started on.
    assert worker().send("1").split("\n\n")[0] == "Thank you."


def test_a_type_change_or_a_dropped_answered_choice_is_refused(app, tmp_path, worker):
    worker().script("HOUSING", "1", "2")  # state = CA answered
    # ...by a real worker (answers given in the simulator never hold a new version back).
    with app.app_context(), db.transaction() as session:
        session.execute(update(Answer).values(is_simulated=False))
    original = (TEST_SURVEYS / "housing-check.yaml").read_text()
    path = tmp_path / "housing.yaml"
    path.write_text(original.replace("type: yes_no", "type: text"))
    with app.app_context(), db.transaction() as session, pytest.raises(PublishError, match="type"):
        publish_surveys(session, [load(path)])
    path.write_text(
        original.replace(
            "      - {value: CA, label: {es: California, en: California}, match: {es: [cali]}}\n",
            "",
        )
    )
    with app.app_context(), db.transaction() as session, pytest.raises(PublishError, match="CA"):
        publish_surveys(session, [load(path)])
    assert len(versions(app)) == 1


def test_a_removed_file_deactivates_its_keywords(app, worker):
    with app.app_context(), db.transaction() as session:
        results = publish_surveys(session, [load(TEST_SURVEYS / "housing-check.yaml")])
    deactivated = {r.survey_id for r in results if r.action == "deactivated"}
    assert deactivated == {"working-conditions", "mixteco-test"}
    w = worker()
    w.send("hello")
    assert "send HOUSING." in w.send("2")  # the pick's reply is the day's no-conversation reply
    with app.app_context(), db.transaction() as session:
        for contact in session.scalars(select(Contact)):
            contact.last_nudged_at -= timedelta(hours=25)
    # WORK is no longer a keyword: a day later it gets the reply naming the active ones.
    assert w.send("WORK") == "To answer a survey, send HOUSING. HELP for information, STOP to quit."
