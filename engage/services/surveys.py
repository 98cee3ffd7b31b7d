"""Publishing survey versions and reading them back for the engine."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Row, select, update
from sqlalchemy.orm import Session

from engage.models import Answer, SurveyVersion
from engage.survey.definition import Survey, survey_from_source


class PublishError(ValueError):
    """A new version would make stored answers meaningless."""


@dataclass(frozen=True)
class PublishResult:
    survey_id: str
    version: str
    action: str  # published | unchanged | deactivated


# Versions never change once published, so a parsed version can be kept for the process' life.
_parsed: dict[tuple[str, str], Survey] = {}


def parse_version(row: SurveyVersion | Row[Any]) -> Survey:
    key = (row.survey_id, row.version)
    if key not in _parsed:
        _parsed[key] = survey_from_source(row.definition, row.version)
    return _parsed[key]


def _check_compatible(session: Session, survey: Survey) -> None:
    rows = session.scalars(select(SurveyVersion).where(SurveyVersion.survey_id == survey.id)).all()
    new_questions = {q.id: q for q in survey.questions}
    for row in rows:
        for old in parse_version(row).questions:
            new = new_questions.get(old.id)
            if new is None:
                continue
            if new.type != old.type:
                raise PublishError(
                    f"survey {survey.id}: question {old.id} changes type from {old.type} to "
                    f"{new.type}; use a new question id"
                )
            dropped = {c.value for c in old.choices} - {c.value for c in new.choices}
            if dropped and _has_answers(session, survey.id, old.id):
                raise PublishError(
                    f"survey {survey.id}: question {old.id} drops choice value(s) "
                    f"{', '.join(sorted(dropped))} that have answers; use a new question id"
                )


def _has_answers(session: Session, survey_id: str, question_id: str) -> bool:
    found = session.scalar(
        select(Answer.id)
        .where(Answer.survey_id == survey_id, Answer.question_id == question_id)
        .limit(1)
    )
    return found is not None


def publish_surveys(session: Session, surveys: list[Survey]) -> list[PublishResult]:
    """Publish each changed survey as a new current version; deactivate surveys whose file went."""
    results = []
    for survey in surveys:
        current = session.scalar(
            select(SurveyVersion).where(
                SurveyVersion.survey_id == survey.id, SurveyVersion.is_current.is_(True)
            )
        )
        if current is not None and current.version == survey.version:
            results.append(PublishResult(survey.id, survey.version, "unchanged"))
            continue
        _check_compatible(session, survey)
        session.execute(
            update(SurveyVersion)
            .where(SurveyVersion.survey_id == survey.id)
            .values(is_current=False)
        )
        existing = session.scalar(
            select(SurveyVersion).where(
                SurveyVersion.survey_id == survey.id, SurveyVersion.version == survey.version
            )
        )
        if existing is not None:  # back to an earlier version: reuse it, unchanged
            existing.is_current = True
        else:
            session.add(
                SurveyVersion(
                    survey_id=survey.id,
                    version=survey.version,
                    definition=survey.source,
                    is_current=True,
                )
            )
        results.append(PublishResult(survey.id, survey.version, "published"))
    loaded = {s.id for s in surveys}
    for survey_id in session.scalars(
        select(SurveyVersion.survey_id).where(SurveyVersion.is_current.is_(True)).distinct()
    ).all():
        if survey_id not in loaded:
            session.execute(
                update(SurveyVersion)
                .where(SurveyVersion.survey_id == survey_id)
                .values(is_current=False)
            )
            results.append(PublishResult(survey_id, "", "deactivated"))
    session.flush()
    return results


class DatabaseCatalog:
    """The engine's view of published surveys, read in one session or connection."""

    def __init__(self, session: Session | Connection) -> None:
        self.session = session
        self._active: list[Survey] | None = None

    def active(self) -> list[Survey]:
        if self._active is None:
            # Only the keys: a version's definition is read once per process, by get().
            keys = self.session.execute(
                select(SurveyVersion.survey_id, SurveyVersion.version)
                .where(SurveyVersion.is_current.is_(True))
                .order_by(SurveyVersion.survey_id)
            ).all()
            self._active = [self.get(survey_id, version) for survey_id, version in keys]
        return self._active

    def get(self, survey_id: str, version: str) -> Survey:
        cached = _parsed.get((survey_id, version))
        if cached is not None:
            return cached
        row = self.session.execute(
            select(SurveyVersion.survey_id, SurveyVersion.version, SurveyVersion.definition).where(
                SurveyVersion.survey_id == survey_id, SurveyVersion.version == version
            )
        ).first()
        if row is None:
            raise LookupError(f"survey {survey_id} version {version} is not published")
        return parse_version(row)
