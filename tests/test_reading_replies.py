"""Replies as workers write them (docs/conversation.md §5): a line copied from the list, an
article, courtesy words, number words, "1y3"; read through `engage simulate` in each language, on
SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from engage import db
from engage.models import Answer
from tests.conftest import SHIPPED_SURVEYS, TEST_SURVEYS, publish

MORE_SURVEYS = Path(__file__).resolve().parent / "surveys_more"


@pytest.fixture
def app(app):
    publish(app, [SHIPPED_SURVEYS, TEST_SURVEYS, MORE_SURVEYS])
    return app


def answers(app) -> dict[str, tuple[str, object]]:
    with app.app_context():
        rows = db.session().scalars(select(Answer).where(Answer.survey_id == "replies"))
        return {a.question_id: (a.status, a.value.get("v")) for a in rows}


@pytest.mark.parametrize(
    ("script", "expected"),
    [
        (
            ("LEER", "si", "1 Florida", "1y3", "sí señor", "treinta"),
            {"where": "FL", "problems": ["heat", "pay"], "shade": "yes", "age": 30},
        ),
        (
            ("LEER", "1", "el 2", "la 2 y la 3", "no gracias", "45 años"),
            {"where": "CA", "problems": ["water", "pay"], "shade": "no", "age": 45},
        ),
        (
            ("READ", "1", "3 Georgia", "1 and 2", "yes thank you", "forty five"),
            {"where": "GA", "problems": ["heat", "water"], "shade": "yes", "age": 45},
        ),
        (
            ("LI", "wi", "2 Kalifòni", "1 e 3", "wi mèsi", "trant"),
            {"where": "CA", "problems": ["heat", "pay"], "shade": "yes", "age": 30},
        ),
        (
            ("LI", "1", "1", "2", "dakò", "swasanndis"),
            {"where": "FL", "problems": ["water"], "shade": "yes", "age": 70},
        ),
    ],
)
def test_replies_as_workers_write_them_are_read_right(worker, app, script, expected):
    replies = worker().script(*script)
    assert all(reply for reply in replies)
    got = answers(app)
    assert {question: value for question, (_status, value) in got.items()} == expected
    assert {status for status, _value in got.values()} == {"answered"}


def test_a_number_with_a_line_that_does_not_agree_is_a_miss(worker, app):
    w = worker()
    w.script("LEER", "1")
    reply = w.send("1 California")  # number and label disagree: which one was meant?
    assert "¿Dónde?" in reply
    assert answers(app) == {}
