"""Web surveys: drafts checked as files are, published beside file surveys, never overwritten
unseen, and never overwritten by a deploy."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from sqlalchemy import select

from engage import db
from engage.db import utcnow
from engage.models import Conversation, SurveyDraft, SurveyRecord, SurveyVersion
from engage.privacy import parse_sender
from engage.services import web_surveys
from engage.services.conversations import handle_inbound, settings_from
from engage.services.web_surveys import StaleDraftError, SurveyEditError
from engage.survey.loader import check_text
from tests.test_audit import run

TEST_SURVEYS = Path(__file__).resolve().parent / "surveys"
ORG = "Centro Campesino"


def harvest(**changes) -> dict:
    document = {
        "id": "harvest-pay",
        "title": {"es": "Pago de cosecha", "en": "Harvest pay"},
        "languages": ["es", "en"],
        "keywords": {"es": ["COSECHA"], "en": ["HARVEST"]},
        "questions": [
            {
                "id": "crop",
                "type": "choice",
                "text": {"es": "¿Qué cosecha?", "en": "Which crop?"},
                "choices": [
                    {"value": "berries", "label": {"es": "Fresas", "en": "Berries"}},
                    {"value": "apples", "label": {"es": "Manzanas", "en": "Apples"}},
                ],
            },
            {
                "id": "paid",
                "type": "yes_no",
                "text": {"es": "¿Le pagan por hora?", "en": "Are you paid by the hour?"},
            },
            {
                "id": "hours",
                "type": "number",
                "min": 0,
                "max": 24,
                "text": {"es": "¿Cuántas horas?", "en": "How many hours?"},
            },
        ],
        "closing": {"es": "Gracias.", "en": "Thank you."},
    }
    document.update(changes)
    return document


def new_draft(session, survey_id="harvest-pay"):
    return web_surveys.create_draft(
        session, survey_id, title="Pago", languages=["es", "en"], user_id=None, now=utcnow()
    )


def save(session, document, revision):
    return web_surveys.save_draft(
        session, "harvest-pay", document=document, revision=revision, user_id=None, now=utcnow()
    )


def step(app, phone: str, text: str) -> list[str]:
    with app.app_context(), db.engine().begin() as connection:
        result = handle_inbound(
            connection,
            settings_from(app.config, app.extensions["engage.vault"]),
            sender=parse_sender(phone),
            to="+15550000000",
            body=text,
        )
    return result.replies


def test_a_draft_is_saved_as_survey_yaml_that_the_checker_passes(app):
    with app.app_context(), db.transaction() as session:
        draft = new_draft(session)
        assert draft.revision == 1
        draft = save(session, harvest(), draft.revision)
        assert draft.revision == 2
        checked = check_text("harvest-pay.yaml", draft.text)
        assert checked.survey is not None, checked.problems
        # Fields in the order files use, whatever order the editor sent them in.
        assert draft.text.index("id:") < draft.text.index("title:") < draft.text.index("questions:")


def test_a_save_over_someone_elses_newer_save_is_refused(app):
    with app.app_context(), db.transaction() as session:
        opened = new_draft(session).revision
        save(session, harvest(), opened)  # someone else saves first
        with pytest.raises(StaleDraftError):
            save(session, harvest(closing={"es": "Adiós", "en": "Bye"}), opened)
        assert "Adiós" not in session.get(SurveyDraft, "harvest-pay").text


def test_the_check_names_the_field_of_each_problem_and_the_characters_that_force_ucs2(app):
    broken = harvest()
    broken["questions"][1]["text"] = {"es": "¿Le pagan por hora?"}  # no English
    broken["questions"][0]["text"]["es"] = "¿Qué cosecha trabajó en el último mes?"  # ú
    with app.app_context(), db.transaction() as session:
        draft = save(session, broken, new_draft(session).revision)
        report = web_surveys.check_draft_text(session, "harvest-pay", draft.text, org_name=ORG)
        assert not report.can_publish
        paths = {p.path for p in report.problems if not p.is_warning}
        assert paths == {"questions.1.text"}
        fixed = broken.copy()
        fixed["questions"][1]["text"] = {"es": "¿Le pagan por hora?", "en": "Paid hourly?"}
        draft = save(session, fixed, draft.revision)
        report = web_surveys.check_draft_text(session, "harvest-pay", draft.text, org_name=ORG)
        assert report.can_publish, report.problems
        crop_es = next(c for c in report.costs if c.message == "crop" and c.language == "es")
        assert crop_es.encoding == "UCS-2" and crop_es.ucs2_characters == "óú"
        crop_en = next(c for c in report.costs if c.message == "crop" and c.language == "en")
        assert crop_en.encoding == "GSM-7" and crop_en.ucs2_characters == ""


def test_a_draft_may_not_change_its_id_or_use_another_surveys_keyword(app):
    with app.app_context(), db.transaction() as session:
        opened = new_draft(session).revision
        draft = save(session, harvest(keywords={"es": ["VIVIENDA"], "en": ["HARVEST"]}), opened)
        text = draft.text.replace("id: harvest-pay", "id: other-id")
        report = web_surveys.check_draft_text(session, "harvest-pay", text, org_name=ORG)
        messages = [p.message for p in report.problems]
        assert any("cannot change" in m for m in messages)
        assert any("VIVIENDA" in m and "housing-check" in m for m in messages)
        assert report.survey is None


@pytest.fixture
def drafted(app):
    with app.app_context(), db.transaction() as session:
        new_draft(session)
        save(session, harvest(), 1)
    return app


def test_publishing_makes_the_keyword_start_the_survey_and_retiring_stops_it(drafted):
    app = drafted
    with app.app_context(), db.transaction() as session:
        result, _report, retired = web_surveys.publish_draft(
            session, "harvest-pay", org_name=ORG, now=utcnow()
        )
        assert result.action == "published" and retired is None
    step(app, "+15550101002", "COSECHA")  # the consent question first
    replies = step(app, "+15550101002", "1")
    assert any("¿Qué cosecha?" in r for r in replies), replies
    with app.app_context():
        conversation = (
            db.session()
            .scalars(select(Conversation).where(Conversation.survey_id == "harvest-pay"))
            .one()
        )
        assert conversation.version == result.version
    with app.app_context(), db.transaction() as session:
        web_surveys.retire(session, "harvest-pay", now=utcnow())
    replies = step(app, "+15550101003", "COSECHA")
    with app.app_context():
        started = (
            db.session()
            .scalars(select(Conversation).where(Conversation.survey_id == "harvest-pay"))
            .all()
        )
        assert len(started) == 1, replies


def test_the_draft_keyword_does_nothing_before_publishing(drafted):
    step(drafted, "+15550101004", "COSECHA")
    with drafted.app_context():
        assert (
            not db.session()
            .scalars(select(Conversation).where(Conversation.survey_id == "harvest-pay"))
            .all()
        )


def test_publishing_is_refused_with_the_problems_when_the_check_fails(app):
    broken = harvest()
    del broken["questions"][2]["text"]["en"]
    with app.app_context(), db.transaction() as session:
        save(session, broken, new_draft(session).revision)
        with pytest.raises(SurveyEditError) as refused:
            web_surveys.publish_draft(session, "harvest-pay", org_name=ORG, now=utcnow())
        assert refused.value.code == "check_failed"
        assert [p.path for p in refused.value.params["problems"]] == ["questions.2.text"]
        assert not session.scalars(
            select(SurveyVersion).where(SurveyVersion.survey_id == "harvest-pay")
        ).all()


@pytest.mark.parametrize(
    ("survey_id", "code"),
    [
        ("working-conditions", "file_id"),
        ("new", "reserved_id"),
        ("import", "reserved_id"),
        ("Bad Id", "bad_id"),
        ("x" * 101, "bad_id"),
    ],
)
def test_a_new_web_survey_cannot_take_a_file_surveys_or_a_reserved_id(app, survey_id, code):
    with app.app_context(), db.transaction() as session:
        with pytest.raises(SurveyEditError) as refused:
            new_draft(session, survey_id)
        assert refused.value.code == code


def test_file_surveys_are_read_only(app):
    with app.app_context(), db.transaction() as session:
        with pytest.raises(SurveyEditError) as refused:
            web_surveys.save_draft(
                session,
                "housing-check",
                text="id: housing-check\n",
                revision=1,
                user_id=None,
                now=utcnow(),
            )
        assert refused.value.code == "read_only"


def test_copy_to_edit_takes_over_the_file_surveys_keywords_and_a_deploy_keeps_it(app, tmp_path):
    with app.app_context(), db.transaction() as session:
        draft = web_surveys.copy_to_edit(
            session, "housing-check", "housing-2027", user_id=None, now=utcnow()
        )
        report = web_surveys.check_draft_text(session, "housing-2027", draft.text, org_name=ORG)
        assert report.can_publish
        assert any(p.is_warning and "retires 'housing-check'" in p.message for p in report.problems)
        _result, _report, retired = web_surveys.publish_draft(
            session, "housing-2027", org_name=ORG, now=utcnow()
        )
        assert retired == "housing-check"
        assert session.get(SurveyRecord, "housing-check").retired_at is not None
    step(app, "+15550101005", "VIVIENDA")
    with app.app_context():
        started = {c.survey_id for c in db.session().scalars(select(Conversation)).all()}
        assert started == {"housing-2027"}
    # A deploy with the file still there reports it and publishes nothing over staff's survey.
    directory = tmp_path / "deploy"
    directory.mkdir()
    shutil.copy(TEST_SURVEYS / "housing-check.yaml", directory)
    result = run(app, "surveys", "load", str(directory))
    assert result.exit_code == 0, result.output
    assert "housing-check.yaml:2: warning: survey 'housing-check' was retired" in result.output
    with app.app_context():
        current = set(
            db.session().scalars(
                select(SurveyVersion.survey_id).where(SurveyVersion.is_current.is_(True))
            )
        )
        assert "housing-2027" in current and "housing-check" not in current


def test_a_deploy_skips_a_file_with_a_web_surveys_id_or_keyword(drafted, tmp_path):
    app = drafted
    with app.app_context(), db.transaction() as session:
        web_surveys.publish_draft(session, "harvest-pay", org_name=ORG, now=utcnow())
    directory = tmp_path / "deploy"
    directory.mkdir()
    same_id = (
        (TEST_SURVEYS / "housing-check.yaml")
        .read_text()
        .replace("id: housing-check", "id: harvest-pay")
        .replace("VIVIENDA", "VIVIENDAS")
        .replace("HOUSING]", "HOUSES]")
    )
    (directory / "a.yaml").write_text(same_id)
    same_keyword = (
        (TEST_SURVEYS / "housing-check.yaml")
        .read_text()
        .replace("id: housing-check", "id: housing-new")
        .replace("VIVIENDA", "COSECHA")
        .replace("HOUSING]", "HOMES]")
    )
    (directory / "b.yaml").write_text(same_keyword)
    result = run(app, "surveys", "load", str(directory))
    assert result.exit_code == 0, result.output
    assert "a.yaml:2: warning: survey id 'harvest-pay' belongs to a survey made in the browser" in (
        result.output
    )
    assert "b.yaml:5: warning: keyword 'COSECHA' starts survey 'harvest-pay'" in result.output
    with app.app_context():
        current = set(
            db.session().scalars(
                select(SurveyVersion.survey_id).where(SurveyVersion.is_current.is_(True))
            )
        )
    # The web survey stays; the file surveys not in this directory went, as files do.
    assert current == {"harvest-pay"}


def test_deleting_a_never_published_draft_frees_its_id(app):
    with app.app_context(), db.transaction() as session:
        new_draft(session)
        assert web_surveys.delete_draft(session, "harvest-pay") is True
        assert session.get(SurveyRecord, "harvest-pay") is None
        new_draft(session)  # the id is free again


def test_the_survey_list_shows_source_and_status(drafted):
    with drafted.app_context(), db.transaction() as session:
        web_surveys.retire(session, "housing-check", now=utcnow())
        summaries = {s.id: s for s in web_surveys.list_surveys(session)}
    assert summaries["harvest-pay"].source == "web"
    assert summaries["harvest-pay"].status == "draft" and summaries["harvest-pay"].has_draft
    assert summaries["harvest-pay"].title["en"] == "Harvest pay"
    assert summaries["housing-check"].status == "retired"
    assert summaries["working-conditions"].source == "file"
    assert summaries["working-conditions"].status == "published"
    assert summaries["working-conditions"].versions == 1


@pytest.mark.parametrize(
    "data",
    [
        b"a: &a [x, x, x, x, x, x, x, x, x]\n"
        + b"".join(
            f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]\n".encode()
            for i in range(8)
        ),
        b"id: x\ntitle: !!python/object/apply:os.system ['true']\n",
        b"id: x\n" + b"#" * 1_000_001,
        b"id: \xff\xfe\n",
        b"id: [unclosed\n",
    ],
    ids=["alias bomb", "tag", "over 1 MB", "not UTF-8", "not YAML"],
)
def test_a_hostile_upload_is_refused_and_nothing_saved(app, data):
    with app.app_context(), db.transaction() as session:
        draft, checked = web_surveys.import_yaml(
            session, "upload.yaml", data, user_id=None, now=utcnow()
        )
        assert draft is None and not checked.is_yaml and checked.problems
        assert not session.scalars(select(SurveyRecord).where(SurveyRecord.source == "web")).all()


def test_an_upload_with_problems_is_saved_as_written(app):
    text = (
        (TEST_SURVEYS / "housing-check.yaml")
        .read_text()
        .replace("id: housing-check", "id: housing-draft")
        .replace("VIVIENDA", "VIVIENDA2")
        .replace("HOUSING]", "HOUSING2]")
    )
    text = text.replace('en: "Do you have clean water where you live?"', "")
    with app.app_context(), db.transaction() as session:
        draft, checked = web_surveys.import_yaml(
            session, "housing.yaml", text.encode(), user_id=None, now=utcnow()
        )
        assert draft is not None and draft.text == text  # comments kept
        assert checked.survey is None and checked.problems
