"""Answers written straight into the tables: thousands of simulated messages would be slow."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select, update

from engage import db
from engage.models import Answer, Contact, Conversation, SurveyVersion

T0 = datetime(2026, 3, 2, 14, 30, tzinfo=UTC)


@dataclass(frozen=True)
class Skip:
    """An answer row with status skipped (or missed)."""

    status: str = "skipped"
    raw: str | None = None


SKIP = Skip()
MISS = Skip("missed", "eh?")


@dataclass(frozen=True)
class FromProfile:
    """An answer row written from the profile (status profile)."""

    value: Any


@dataclass
class Seeder:
    """Writes contacts, conversations and answers the way the conversation service does."""

    app: Flask
    phones: itertools.count = field(default_factory=lambda: itertools.count(1))

    # A record key for every contact (None: random, as in production).
    record_key: int | None = None

    def contact(self, profile: dict[str, Any] | None = None, *, simulated: bool = False) -> int:
        with self.app.app_context(), db.transaction() as session:
            n = next(self.phones)
            contact = Contact(
                phone_hash=f"hash-{n}",
                phone_encrypted=f"encrypted-{n}",
                language="es",
                has_consented=True,
                profile=dict(profile or {}),
                is_simulated=simulated,
            )
            if self.record_key is not None:
                contact.record_key = self.record_key
            session.add(contact)
            session.flush()
            return contact.id

    def response(
        self,
        answers: dict[str, Any],
        *,
        profile: dict[str, Any] | None = None,
        contact_id: int | None = None,
        survey_id: str = "working-conditions",
        status: str = "completed",
        invited: bool = False,
        simulated: bool = False,
        at: datetime = T0,
        language: str = "es",
    ) -> int:
        """One conversation with these answers; `profile` is the profile at answer time."""
        profile = dict(profile or {})
        if contact_id is None:
            contact_id = self.contact(profile, simulated=simulated)
        with self.app.app_context(), db.transaction() as session:
            record_key = session.get(Contact, contact_id).record_key
            version = session.scalar(
                select(SurveyVersion.version).where(
                    SurveyVersion.survey_id == survey_id, SurveyVersion.is_current.is_(True)
                )
            )
            conversation = Conversation(
                contact_id=contact_id,
                survey_id=survey_id,
                version=version,
                language=language,
                status=status,
                is_invited=invited,
                is_simulated=simulated,
                record_key=record_key,
                started_at=at,
                last_activity_at=at,
                last_profile=dict(profile),
            )
            session.add(conversation)
            session.flush()
            # As the conversation service does: the contact's earlier rows for these questions
            # are no longer the latest, and the conversation keeps its last question and profile.
            session.execute(
                update(Answer)
                .where(
                    Answer.contact_id == contact_id,
                    Answer.survey_id == survey_id,
                    Answer.question_id.in_(list(answers)),
                    Answer.is_latest.is_(True),
                )
                .values(is_latest=False)
            )
            if answers:
                conversation.last_question_id = list(answers)[-1]
                conversation.last_profile = dict(profile)
            for offset, (question_id, answer) in enumerate(answers.items()):
                if isinstance(answer, Skip):
                    row_status, value, raw = answer.status, None, answer.raw
                elif isinstance(answer, FromProfile):
                    row_status, value, raw = "profile", answer.value, None
                else:
                    row_status, value = "answered", answer
                    raw = answer if isinstance(answer, str) else str(answer)
                session.add(
                    Answer(
                        conversation_id=conversation.id,
                        contact_id=contact_id,
                        survey_id=survey_id,
                        version=version,
                        question_id=question_id,
                        status=row_status,
                        value={"v": value},
                        raw_text=raw,
                        language=language,
                        profile=profile,
                        is_simulated=simulated,
                        is_latest=True,
                        record_key=record_key,
                        answered_at=at + timedelta(minutes=offset),
                    )
                )
            return conversation.id


@pytest.fixture
def seed(app: Flask) -> Seeder:
    return Seeder(app)


def seed_population(seed: Seeder) -> None:
    """40 workers in CA, 15 in FL, 3 in WA and 8 whose state is unknown, answers varied.

    By state the groups are CA, FL and `_other` (WA and unknown: 11 people); by crop berries 25,
    grapes 15, citrus 15 and `_other` (tree_fruit and unknown: 11).
    first_season: CA 28 yes 12 no; FL 12 yes 3 no; WA 3 yes; unknown 6 yes 2 skipped.
    hours_per_day: CA 8 x20, 10 x15, 12 x5; FL 6 x15; WA 9 x3; unknown 3 x7, missed x1.
    housing_conditions: CA crowded+pests x15, crowded x15, none x10; FL no_clean_water x15;
    WA crowded x3.
    """
    for i in range(40):
        crop = "berries" if i < 25 else "grapes"
        hours = 8 if i < 20 else 10 if i < 35 else 12
        housing = ["crowded", "pests"] if i < 15 else ["crowded"] if i < 30 else ["none"]
        seed.response(
            {
                "state": "CA",
                "main_crop": crop,
                "first_season": "yes" if i < 28 else "no",
                "hours_per_day": hours,
                "housing_conditions": housing,
                "comments": "llame al 555-123-4567" if i < 3 else "todo bien",
            },
            profile={"state": "CA", "crop": crop},
        )
    for i in range(15):
        seed.response(
            {
                "state": "FL",
                "main_crop": "citrus",
                "first_season": "yes" if i < 12 else "no",
                "hours_per_day": 6,
                "housing_conditions": ["no_clean_water"],
            },
            profile={"state": "FL", "crop": "citrus"},
        )
    for _ in range(3):
        seed.response(
            {
                "state": "WA",
                "main_crop": "tree_fruit",
                "first_season": "yes",
                "hours_per_day": 9,
                "housing_conditions": ["crowded"],
            },
            profile={"state": "WA", "crop": "tree_fruit"},
        )
    for i in range(8):
        seed.response(
            {
                "state": SKIP,
                "first_season": "yes" if i < 6 else SKIP,
                "hours_per_day": 3 if i < 7 else MISS,
            }
        )


@dataclass
class Truth:
    """The true counts and cell keys of a survey, worked out in Python from the answer rows.

    An oracle for the SQL: each respondent's latest row per question, grouped by a mapping
    of profile values (unmapped values are `_other`).
    """

    rows: list[Any]

    @classmethod
    def read(cls, app: Flask, survey_id: str = "working-conditions") -> Truth:
        with app.app_context(), db.transaction() as session:
            rows = session.execute(
                select(
                    Answer.contact_id,
                    Answer.question_id,
                    Answer.status,
                    Answer.value,
                    Answer.profile,
                    Answer.record_key,
                ).where(
                    Answer.survey_id == survey_id,
                    Answer.is_latest.is_(True),
                    Answer.is_simulated.is_(False),
                )
            ).all()
        return cls(list(rows))

    def cell(
        self, question_id: str, value: str, groups: dict[str, set[str]] | None = None
    ) -> tuple[int, int]:
        """(count, cell key) of a value (or `_answered`, `_asked`, `_skipped`) in a group,
        given as {attribute: the profile values it holds}."""
        people = 0
        key = 0
        for row in self.rows:
            if row.question_id != question_id:
                continue
            if any((row.profile or {}).get(a) not in held for a, held in (groups or {}).items()):
                continue
            answered = row.status in ("answered", "profile")
            stored = (row.value or {}).get("v")
            if value == "_asked":
                hit = True
            elif value == "_answered":
                hit = answered
            elif value == "_skipped":
                hit = not answered
            elif isinstance(stored, list):
                hit = answered and value in stored
            else:
                hit = answered and str(stored) == value
            if hit:
                people += 1
                key += row.record_key
        return people, key % 256


@pytest.fixture
def policy(app: Flask):
    """A signed-in policy client."""
    import re

    from engage.services.accounts import create_user
    from tests.conftest import WEB_PASSWORD

    with app.app_context(), db.transaction() as session:
        create_user(session, "policy@example.org", WEB_PASSWORD, "policy")
    client = app.test_client()
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    response = client.post(
        "/login",
        data={
            "email": "policy@example.org",
            "password": WEB_PASSWORD,
            "csrf_token": token.group(1) if token else "",
        },
    )
    assert response.status_code == 302
    return client
