"""The shipped survey, second edition (`surveys/h2a-working-conditions.yaml`): how it reads
replies."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from engage import db
from engage.models import Conversation
from engage.survey.definition import Survey
from engage.survey.engine import render_question, spell_for_channel
from engage.survey.loader import load_survey_file
from engage.survey.segments import count_segments, is_gsm7
from tests.test_conversations import sms_texts

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "surveys" / "h2a-working-conditions.yaml"
START = {"es": "TRABAJO", "en": "WORK", "ht": "TRAVAY"}


def shipped() -> Survey:
    survey, problems = load_survey_file(SHIPPED)
    assert survey is not None, problems
    return survey


def sent_on_sms(survey: Survey, question_id: str, language: str) -> str:
    """A question as the engine renders it and sends it on SMS."""
    rendered = render_question(survey.question(question_id), survey, language, sms_texts(language))
    return spell_for_channel(survey, rendered, "sms")


def conversation_misses(app) -> list[str]:
    with app.app_context():
        conversation = db.session().scalars(select(Conversation)).one()
        return list((conversation.misses or {}).get("texts", []))


# -- how replies are read ------------------------------------------------------------------------


def to_days_worked(worker, language: str = "es", phone: str = "+15551230001"):
    w = worker(phone)
    w.script(START[language], "1", "1", "1", "1")  # consent, state, crop, first season
    return w


WRONG_UNIT_HINT = {
    # As sent on SMS: system texts go in plain GSM-7 spelling (número -> numero; è is GSM-7).
    "es": "Por favor, responda con un solo numero, contado como lo pide la pregunta.",
    "en": "Please answer with one number, counted as the question asks.",
    "ht": "Tanpri reponn ak yon sèl nimewo, jan kesyon an mande l la.",
}


@pytest.mark.parametrize(
    ("language", "hours_a_day", "in_range"),
    [
        ("es", "10 horas al día", "5 horas"),
        ("en", "10 hours a day", "5 hours"),
        ("ht", "10 èdtan pa jou", "5 èdtan"),
    ],
)
def test_a_wrong_unit_gets_its_own_hint_in_the_workers_language(
    worker, app, language, hours_a_day, in_range
):
    survey = shipped()
    t = sms_texts(language)
    assert t.hint_wrong_unit() == WRONG_UNIT_HINT[language]
    assert is_gsm7(t.hint_wrong_unit()) and count_segments(t.hint_wrong_unit()).segments == 1
    w = to_days_worked(worker, language)
    prompt = sent_on_sms(survey, "days_worked", language)
    assert w.send(hours_a_day) == f"{WRONG_UNIT_HINT[language]}\n\n{prompt}"
    assert w.send(in_range) == f"{WRONG_UNIT_HINT[language]}\n\n{prompt}"
    assert conversation_misses(app) == [hours_a_day, in_range]
    # A number without a unit, out of range, still gets the hint that names the range.
    out_of_range = to_days_worked(worker, language, "+15551230002").send("9")
    assert out_of_range == f"{t.hint_number(0, 7)}\n\n{prompt}"
