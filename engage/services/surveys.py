"""Publishing survey versions and reading them back for the engine."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, select, update
from sqlalchemy.orm import Session

from engage.db import utcnow
from engage.models import Answer, SurveyRecord, SurveyVersion
from engage.services.media import store_recordings
from engage.survey import keywords as system_keywords
from engage.survey.definition import Survey, survey_from_source
from engage.survey.loader import Checked, Problem
from engage.survey.phrases import Phrase


class PublishError(ValueError):
    """A new version would make stored answers meaningless: `str()` says why in English, `text`
    is that reason as a Phrase, for a page to say it in its own language."""

    def __init__(self, text: Phrase) -> None:
        super().__init__(str(text))
        self.text = text


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


def check_compatible(session: Session, survey: Survey) -> None:
    """PublishError when this version would make stored answers meaningless."""
    rows = session.scalars(select(SurveyVersion).where(SurveyVersion.survey_id == survey.id)).all()
    new_questions = {q.id: q for q in survey.questions}
    for row in rows:
        for old in parse_version(row).questions:
            new = new_questions.get(old.id)
            if new is None:
                continue
            if new.type != old.type:
                raise PublishError(
                    Phrase(
                        "survey %(survey)s: question %(question)s changes type from %(old)s to "
                        "%(new)s; use a new question id",
                        survey=survey.id,
                        question=old.id,
                        old=old.type,
                        new=new.type,
                    )
                )
            dropped = {c.value for c in old.choices} - {c.value for c in new.choices}
            if dropped and _has_answers(session, survey.id, old.id):
                raise PublishError(
                    Phrase(
                        "survey %(survey)s: question %(question)s drops choice value(s) "
                        "%(values)s that have answers; use a new question id",
                        survey=survey.id,
                        question=old.id,
                        values=", ".join(sorted(dropped)),
                    )
                )


def _has_answers(session: Session, survey_id: str, question_id: str) -> bool:
    found = session.scalar(
        select(Answer.id)
        .where(
            Answer.survey_id == survey_id,
            Answer.question_id == question_id,
            # Tried in the simulator, a version leaves answers that mean nothing to results.
            Answer.is_simulated.is_(False),
        )
        .limit(1)
    )
    return found is not None


def publish_version(session: Session, survey: Survey) -> PublishResult:
    """Make this survey's version the current one (new, or an earlier one brought back).

    Refused (PublishError) when it would change a question's type or drop a choice value
    that has answers. The caller decides whether the survey may be published at all.
    """
    current = session.scalar(
        select(SurveyVersion).where(
            SurveyVersion.survey_id == survey.id, SurveyVersion.is_current.is_(True)
        )
    )
    if current is not None and current.version == survey.version:
        return PublishResult(survey.id, survey.version, "unchanged")
    check_compatible(session, survey)
    session.execute(
        update(SurveyVersion).where(SurveyVersion.survey_id == survey.id).values(is_current=False)
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
    # Its recordings, for /media: a version never names one that cannot be served.
    store_recordings(session, survey)
    session.flush()
    return PublishResult(survey.id, survey.version, "published")


def deactivate(session: Session, survey_id: str) -> None:
    """No version of this survey is current: its keywords start nothing; results stay."""
    session.execute(
        update(SurveyVersion).where(SurveyVersion.survey_id == survey_id).values(is_current=False)
    )


def current_keywords(session: Session) -> dict[str, str]:
    """Every keyword that starts a published survey now (folded), and that survey's id."""
    rows = session.execute(
        select(SurveyVersion.survey_id, SurveyVersion.version, SurveyVersion.definition).where(
            SurveyVersion.is_current.is_(True)
        )
    ).all()
    owners: dict[str, str] = {}
    for row in rows:
        for words in parse_version(row).keywords.values():
            for word in words:
                owners[system_keywords.fold(word)] = row.survey_id
    return owners


def file_collisions(session: Session, checked: list[Checked]) -> tuple[set[str], list[Problem]]:
    """Survey files a deploy must skip: what staff made in the browser wins over a file.

    A file is skipped, with a warning at its line, when its id is a web survey's, when one of
    its keywords starts a published web survey, or when staff retired it.
    """
    records = {r.id: r for r in session.scalars(select(SurveyRecord)).all()}
    owners = current_keywords(session)
    skipped: set[str] = set()
    problems: list[Problem] = []
    for result in checked:
        survey = result.survey
        if survey is None:
            continue
        name = result.name
        record = records.get(survey.id)
        if record is not None and record.source == "web":
            problems.append(
                Problem(
                    name,
                    result.id_line,
                    f"survey id '{survey.id}' belongs to a survey made in the browser: skipped",
                    is_warning=True,
                )
            )
            skipped.add(survey.id)
            continue
        if record is not None and record.retired_at is not None:
            problems.append(
                Problem(
                    name,
                    result.id_line,
                    f"survey '{survey.id}' was retired in the browser: skipped",
                    is_warning=True,
                )
            )
            skipped.add(survey.id)
            continue
        for folded, word, line in result.keywords:
            owner = owners.get(folded)
            owner_record = records.get(owner) if owner is not None else None
            if owner_record is not None and owner_record.source == "web":
                problems.append(
                    Problem(
                        name,
                        line,
                        f"keyword '{word}' starts survey '{owner}', made in the browser: "
                        f"'{survey.id}' skipped",
                        is_warning=True,
                    )
                )
                skipped.add(survey.id)
                break
    return skipped, problems


def publish_surveys(
    session: Session,
    surveys: list[Survey],
    *,
    keep: Collection[str] = (),
    now: datetime | None = None,
) -> list[PublishResult]:
    """`engage surveys load`: publish each changed file survey as its new current version, and
    deactivate file surveys whose file went. `keep` are ids whose files are there but skipped."""
    now = now or utcnow()
    records = {r.id: r for r in session.scalars(select(SurveyRecord)).all()}
    results = []
    for survey in surveys:
        if survey.id not in records:
            session.add(SurveyRecord(id=survey.id, source="file", created_at=now))
            session.flush()
        results.append(publish_version(session, survey))
    loaded = {s.id for s in surveys} | set(keep)
    for survey_id in session.scalars(
        select(SurveyVersion.survey_id).where(SurveyVersion.is_current.is_(True)).distinct()
    ).all():
        record = records.get(survey_id)
        is_file = record is None or record.source == "file"
        if is_file and survey_id not in loaded:
            deactivate(session, survey_id)
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
