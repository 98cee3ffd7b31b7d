"""Surveys written in the browser: drafts saved as YAML text, checked as files are, published
as new immutable versions beside file surveys.

A draft is the text of a survey file. The editor sends its fields as a document and the
draft keeps them as YAML in the order files use; an upload keeps its text as written. Every
check goes through the loader (`check_text`), so the editor and `engage surveys check` agree.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ruamel.yaml import YAML
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engage.models import SurveyDraft, SurveyRecord, SurveyVersion
from engage.services.survey_report import MessageCost, message_costs
from engage.services.surveys import (
    PublishError,
    PublishResult,
    check_compatible,
    current_keywords,
    deactivate,
    parse_version,
    publish_version,
)
from engage.survey.definition import QUESTION_TYPES, SMS_SPELLINGS, Choice, Question, Survey
from engage.survey.keywords import LANGUAGE_CODE, fold
from engage.survey.loader import (
    CHOICE_FIELDS,
    QUESTION_FIELDS,
    SURVEY_FIELDS,
    Checked,
    check_bytes,
    check_text,
    paths_by_line,
)
from engage.survey.phrases import Phrase, Value, Worded

# Paths of the staff pages: a survey cannot be called like them.
RESERVED_IDS = ("new", "import")
_SURVEY_ID = re.compile(r"[a-z0-9]+(-[a-z0-9]+)*")
MAX_ID_CHARS = 100


class SurveyEditError(ValueError):
    """Something staff asked that cannot be done; `code` names it for the page's message."""

    def __init__(self, code: str, **params: object) -> None:
        super().__init__(code)
        self.code = code
        self.params = params


class StaleDraftError(SurveyEditError):
    """Someone else saved the draft since it was opened: reload before saving."""

    def __init__(self, revision: int) -> None:
        super().__init__("stale", revision=revision)
        self.revision = revision


@dataclass(frozen=True)
class FieldProblem(Worded):
    """A problem as the editor shows it: beside the field at `path`, found at `line`; in
    English (as `engage surveys check` writes it) and as what it is made of (`Worded`)."""

    path: str
    line: int
    message: str
    is_warning: bool = False
    template: str = field(default="", compare=False)
    params: Mapping[str, Value] = field(default_factory=dict, compare=False)

    @classmethod
    def of(cls, path: str, line: int, text: Phrase, is_warning: bool = False) -> FieldProblem:
        return cls(path, line, str(text), is_warning, text.template, text.params)


@dataclass
class DraftCheck:
    """What checking a draft found: the survey when it could be published, its problems, and
    what every message costs on SMS."""

    survey: Survey | None
    problems: list[FieldProblem]
    costs: list[MessageCost] = field(default_factory=list)
    is_yaml: bool = True

    @property
    def can_publish(self) -> bool:
        return self.survey is not None and not any(not p.is_warning for p in self.problems)


@dataclass(frozen=True)
class SurveySummary:
    id: str
    source: str
    title: dict[str, str]
    languages: tuple[str, ...]
    keywords: dict[str, tuple[str, ...]]
    versions: int
    status: str  # draft | published | retired | inactive
    has_draft: bool
    copied_from: str | None


# --- YAML text and documents ---------------------------------------------------------------


def _ordered(mapping: dict[str, Any], order: tuple[str, ...]) -> dict[str, Any]:
    known = {key: mapping[key] for key in order if key in mapping}
    return {**known, **{k: v for k, v in mapping.items() if k not in known}}


def dump_yaml(document: dict[str, Any]) -> str:
    """A survey document as the YAML text of a survey file, its fields in the usual order."""
    ordered = _ordered(document, SURVEY_FIELDS)
    questions = ordered.get("questions")
    if isinstance(questions, list):
        ordered["questions"] = [
            _ordered_question(q) if isinstance(q, dict) else q for q in questions
        ]
    yaml = YAML(typ="rt")
    yaml.width = 4096  # one text per line: lines stay meaningful in problems
    yaml.allow_unicode = True
    stream = io.StringIO()
    yaml.dump(ordered, stream)
    return stream.getvalue()


def _ordered_question(question: dict[str, Any]) -> dict[str, Any]:
    ordered = _ordered(question, QUESTION_FIELDS)
    choices = ordered.get("choices")
    if isinstance(choices, list):
        ordered["choices"] = [
            _ordered(c, CHOICE_FIELDS) if isinstance(c, dict) else c for c in choices
        ]
    return ordered


def document_of(text: str) -> dict[str, Any]:
    """A draft's text as plain data for the editor; call it only on text that is YAML."""
    checked = check_text("draft", text)
    if not checked.is_yaml:
        return {}
    loaded = YAML(typ="safe").load(text)
    return loaded if isinstance(loaded, dict) else {}


# --- reading ----------------------------------------------------------------------------------


def get_record(session: Session, survey_id: str) -> SurveyRecord:
    record = session.get(SurveyRecord, survey_id)
    if record is None:
        raise SurveyEditError("not_found", survey_id=survey_id)
    return record


def get_draft(session: Session, survey_id: str) -> SurveyDraft:
    draft = session.get(SurveyDraft, survey_id)
    if draft is None:
        raise SurveyEditError("no_draft", survey_id=survey_id)
    return draft


def latest_survey(session: Session, survey_id: str) -> Survey | None:
    """The current version, else the latest published one; None for a survey never published."""
    row = session.scalars(
        select(SurveyVersion)
        .where(SurveyVersion.survey_id == survey_id)
        .order_by(SurveyVersion.is_current.desc(), SurveyVersion.published_at.desc())
        .limit(1)
    ).first()
    return parse_version(row) if row is not None else None


def list_surveys(session: Session) -> list[SurveySummary]:
    """Every survey, file and web, with what the surveys page shows of it."""
    records = session.scalars(select(SurveyRecord).order_by(SurveyRecord.id)).all()
    counts = dict(
        session.execute(
            select(SurveyVersion.survey_id, func.count(SurveyVersion.id)).group_by(
                SurveyVersion.survey_id
            )
        ).all()
    )
    current = set(
        session.scalars(
            select(SurveyVersion.survey_id).where(SurveyVersion.is_current.is_(True))
        ).all()
    )
    drafts = {d.survey_id: d for d in session.scalars(select(SurveyDraft)).all()}
    summaries = []
    for record in records:
        survey = latest_survey(session, record.id)
        draft = drafts.get(record.id)
        if survey is None and draft is not None:
            survey = check_text(f"{record.id}.yaml", draft.text).survey
        if record.retired_at is not None:
            status = "retired"
        elif record.id in current:
            status = "published"
        elif counts.get(record.id):
            status = "inactive"  # a file survey whose file went
        else:
            status = "draft"
        document = document_of(draft.text) if survey is None and draft is not None else {}
        summaries.append(
            SurveySummary(
                id=record.id,
                source=record.source,
                title=dict(survey.title) if survey else _texts(document.get("title")),
                languages=tuple(survey.languages) if survey else (),
                keywords=dict(survey.keywords) if survey else {},
                versions=int(counts.get(record.id, 0)),
                status=status,
                has_draft=draft is not None,
                copied_from=record.copied_from,
            )
        )
    return summaries


def _texts(value: object) -> dict[str, str]:
    if isinstance(value, dict):
        return {str(k): str(v) for k, v in value.items() if isinstance(v, str)}
    return {}


def versions_of(session: Session, survey_id: str) -> list[SurveyVersion]:
    return list(
        session.scalars(
            select(SurveyVersion)
            .where(SurveyVersion.survey_id == survey_id)
            .order_by(SurveyVersion.published_at.desc())
        ).all()
    )


# --- checking ---------------------------------------------------------------------------------


def check_draft_text(session: Session, survey_id: str, text: str, *, org_name: str) -> DraftCheck:
    """The rules of `engage surveys check` on a draft's text, plus what publishing adds: the id
    is the survey's, its keywords start no other published survey (except the file survey it
    was copied from, which publishing retires), and earlier versions' answers stay meaningful.
    """
    checked = check_text(f"{survey_id}.yaml", text)
    lines = paths_by_line(text) if checked.is_yaml else {}

    def located(line: int, text: Phrase, is_warning: bool = False) -> FieldProblem:
        return FieldProblem.of(lines.get(line, ""), line, text, is_warning)

    problems = [located(p.line, p.text, p.is_warning) for p in checked.problems]
    survey = checked.survey
    if checked.survey_id is not None and checked.survey_id != survey_id:
        problems.append(
            located(
                checked.id_line,
                Phrase(
                    "the id of this survey is '%(id)s': it cannot change "
                    "(use 'copy to edit' for a new id)",
                    id=survey_id,
                ),
            )
        )
        survey = None
    problems.extend(_keyword_clashes(session, survey_id, checked, located))
    if survey is not None:
        try:
            check_compatible(session, survey)
        except PublishError as error:
            problems.append(FieldProblem.of("questions", 1, error.text))
    if checked.survey is not None:
        costs = message_costs(checked.survey, org_name=org_name)
    elif checked.is_yaml:
        costs = draft_costs(document_of(text), org_name=org_name)
    else:
        costs = []
    if any(not p.is_warning for p in problems):
        survey = None
    return DraftCheck(survey, problems, costs, checked.is_yaml)


def draft_costs(document: dict[str, Any], *, org_name: str) -> list[MessageCost]:
    """What each message of a draft that does not pass the check yet would cost on SMS.

    The author sees the cost while typing, before every translation is there: the messages
    whose text is written are costed by `message_costs` as a checked survey's are; a message
    missing in a language is left out (the check reports it).
    """
    languages = [
        lang
        for lang in _list(document.get("languages"))
        if isinstance(lang, str) and LANGUAGE_CODE.fullmatch(lang)
    ]
    if not languages:
        return []
    default = languages[0]

    def filled(value: object) -> dict[str, str]:
        # render_question falls back on the default language, as the engine does.
        written = _written(value)
        fallback = written.get(default, "")
        return {lang: written.get(lang, fallback) for lang in languages}

    questions: list[Question] = []
    written_in: dict[str, set[str]] = {}
    for item in _list(document.get("questions")):
        if not isinstance(item, dict) or not isinstance(item.get("id"), str) or not item["id"]:
            continue
        if item["id"] in written_in:
            continue  # a duplicate id: costed once, the check reports it
        kind = item.get("type") if item.get("type") in QUESTION_TYPES else "text"
        choices = tuple(
            Choice(value=str(c.get("value", "")), label=filled(c.get("label")))
            for c in _list(item.get("choices"))
            if isinstance(c, dict)
        )
        questions.append(
            Question(
                id=item["id"],
                type=str(kind),
                text=filled(item.get("text")),
                choices=choices if kind in ("choice", "multi") else (),
                optional=item.get("optional") is True,
            )
        )
        written_in[item["id"]] = set(_written(item.get("text")))
    spelling = document.get("sms_spelling")
    survey = Survey(
        id=str(document.get("id") or "draft"),
        title={},
        languages=tuple(languages),
        keywords={},
        questions=tuple(questions),
        intro=_written(document.get("intro")),
        closing=_written(document.get("closing")),
        sms_spelling=spelling if spelling in SMS_SPELLINGS else "as_written",
    )
    return [
        cost
        for cost in message_costs(survey, org_name=org_name)
        if cost.message not in written_in or cost.language in written_in[cost.message]
    ]


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def _written(value: object) -> dict[str, str]:
    """The texts of a per-language field that are written (not empty), by language."""
    if not isinstance(value, dict):
        return {}
    return {str(k): v for k, v in value.items() if isinstance(v, str) and v.strip()}


def _keyword_clashes(
    session: Session,
    survey_id: str,
    checked: Checked,
    located: Callable[[int, Phrase, bool], FieldProblem],
) -> list[FieldProblem]:
    record = session.get(SurveyRecord, survey_id)
    takes_over = record.copied_from if record is not None else None
    owners = current_keywords(session)
    problems = []
    for folded, word, line in checked.keywords:
        owner = owners.get(folded)
        if owner is None or owner == survey_id:
            continue
        if owner == takes_over:
            problems.append(
                located(
                    line,
                    Phrase(
                        "keyword '%(keyword)s' starts '%(survey)s' now: "
                        "publishing retires '%(survey)s'",
                        keyword=word,
                        survey=owner,
                    ),
                    True,
                )
            )
        else:
            problems.append(
                located(
                    line,
                    Phrase(
                        "keyword '%(keyword)s' is used by survey '%(survey)s'",
                        keyword=word,
                        survey=owner,
                    ),
                    False,
                )
            )
    return problems


# --- writing ----------------------------------------------------------------------------------


def _check_new_id(session: Session, survey_id: str) -> None:
    if not survey_id or len(survey_id) > MAX_ID_CHARS or not _SURVEY_ID.fullmatch(survey_id):
        raise SurveyEditError("bad_id", survey_id=survey_id)
    if survey_id in RESERVED_IDS:
        raise SurveyEditError("reserved_id", survey_id=survey_id)
    existing = session.get(SurveyRecord, survey_id)
    if existing is not None:
        code = "file_id" if existing.source == "file" else "taken_id"
        raise SurveyEditError(code, survey_id=survey_id)


def _add_web_survey(
    session: Session,
    survey_id: str,
    text: str,
    *,
    user_id: int | None,
    now: datetime,
    copied_from: str | None = None,
) -> SurveyDraft:
    session.add(SurveyRecord(id=survey_id, source="web", copied_from=copied_from, created_at=now))
    session.flush()
    draft = SurveyDraft(
        survey_id=survey_id, text=text, revision=1, updated_by=user_id, updated_at=now
    )
    session.add(draft)
    session.flush()
    return draft


def starter_document(survey_id: str, title: str, languages: list[str]) -> dict[str, Any]:
    """What a new survey starts as: its id, title, languages and empty keywords and questions."""
    return {
        "id": survey_id,
        "title": {lang: title for lang in languages},
        "languages": list(languages),
        "keywords": {lang: [] for lang in languages},
        "questions": [],
    }


def create_draft(
    session: Session,
    survey_id: str,
    *,
    title: str,
    languages: list[str],
    user_id: int | None,
    now: datetime,
) -> SurveyDraft:
    """A new web survey with its first draft; the id must be free (file and web surveys)."""
    _check_new_id(session, survey_id)
    text = dump_yaml(starter_document(survey_id, title, languages))
    return _add_web_survey(session, survey_id, text, user_id=user_id, now=now)


def _editable(session: Session, survey_id: str) -> SurveyRecord:
    record = get_record(session, survey_id)
    if record.source != "web":
        raise SurveyEditError("read_only", survey_id=survey_id)
    return record


def save_draft(
    session: Session,
    survey_id: str,
    *,
    text: str | None = None,
    document: dict[str, Any] | None = None,
    revision: int,
    user_id: int | None,
    now: datetime,
) -> SurveyDraft:
    """Save a web survey's draft, from the editor's document or as text.

    Refused when the draft was saved by anyone since `revision` was read (StaleDraftError), or
    when the text is not YAML within the limits. A draft may be broken in every other way.
    """
    _editable(session, survey_id)
    if document is not None:
        document = {**document, "id": survey_id}
        text = dump_yaml(document)
    if text is None:
        raise SurveyEditError("empty")
    checked = check_text(f"{survey_id}.yaml", text)
    if not checked.is_yaml:
        raise SurveyEditError("not_yaml", problems=[str(p) for p in checked.problems])
    draft = session.get(SurveyDraft, survey_id, with_for_update=True)
    if draft is None:
        draft = SurveyDraft(survey_id=survey_id, text=text, revision=0)
        session.add(draft)
    elif draft.revision != revision:
        raise StaleDraftError(draft.revision)
    draft.text = text
    draft.revision = (draft.revision or 0) + 1
    draft.updated_by = user_id
    draft.updated_at = now
    session.flush()
    return draft


def edit_published(
    session: Session, survey_id: str, *, user_id: int | None, now: datetime
) -> SurveyDraft:
    """A web survey without a draft (published, then the draft deleted): a new draft from its
    latest version."""
    _editable(session, survey_id)
    draft = session.get(SurveyDraft, survey_id)
    if draft is not None:
        return draft
    survey = latest_survey(session, survey_id)
    if survey is None:
        raise SurveyEditError("no_draft", survey_id=survey_id)
    draft = SurveyDraft(
        survey_id=survey_id,
        text=dump_yaml(dict(survey.source)),
        revision=1,
        updated_by=user_id,
        updated_at=now,
    )
    session.add(draft)
    session.flush()
    return draft


def publish_draft(
    session: Session, survey_id: str, *, org_name: str, now: datetime
) -> tuple[PublishResult, DraftCheck, str | None]:
    """Publish the draft as the survey's new current version, under `engage surveys load`'s
    rules; refused (the check's problems in SurveyEditError) when the check fails. Returns the
    result, the check, and the file survey whose keywords it took over (now retired), if any.
    """
    record = _editable(session, survey_id)
    draft = get_draft(session, survey_id)
    report = check_draft_text(session, survey_id, draft.text, org_name=org_name)
    if not report.can_publish or report.survey is None:
        raise SurveyEditError("check_failed", problems=report.problems)
    survey = report.survey
    retired = None
    takeover = record.copied_from
    if takeover is not None:
        owners = current_keywords(session)
        mine = {fold(word) for words in survey.keywords.values() for word in words}
        if any(owners.get(folded) == takeover for folded in mine):
            retire(session, takeover, now=now)
            retired = takeover
    record.retired_at = None
    try:
        result = publish_version(session, survey)
    except PublishError as error:
        problem = FieldProblem.of("", 1, error.text)
        raise SurveyEditError("check_failed", problems=[problem]) from None
    return result, report, retired


def retire(session: Session, survey_id: str, *, now: datetime) -> None:
    """The survey's keywords start nothing any more; its results and versions stay."""
    record = get_record(session, survey_id)
    record.retired_at = now
    deactivate(session, survey_id)
    session.flush()


def delete_draft(session: Session, survey_id: str) -> bool:
    """Delete a web survey's draft; a survey never published goes with it (its id is free
    again). Returns whether the survey itself went."""
    _editable(session, survey_id)
    draft = get_draft(session, survey_id)
    session.delete(draft)
    session.flush()
    has_versions = session.scalar(
        select(func.count(SurveyVersion.id)).where(SurveyVersion.survey_id == survey_id)
    )
    if not has_versions:
        session.delete(get_record(session, survey_id))
        session.flush()
        return True
    return False


def copy_to_edit(
    session: Session, survey_id: str, new_id: str, *, user_id: int | None, now: datetime
) -> SurveyDraft:
    """A web survey with a new id, drafted from a survey's latest version. Copied from a file
    survey, it may take over that survey's keywords when published."""
    get_record(session, survey_id)
    survey = latest_survey(session, survey_id)
    if survey is None:
        raise SurveyEditError("no_version", survey_id=survey_id)
    _check_new_id(session, new_id)
    document = {**dict(survey.source), "id": new_id}
    return _add_web_survey(
        session, new_id, dump_yaml(document), user_id=user_id, now=now, copied_from=survey_id
    )


def import_yaml(
    session: Session, name: str, data: bytes, *, user_id: int | None, now: datetime
) -> tuple[SurveyDraft | None, Checked]:
    """An uploaded survey file as a new web draft, kept as written.

    Nothing is saved when it is not YAML within the limits (too large, not UTF-8, a tag, an
    alias bomb, too deep) or has no usable id; otherwise the draft is saved with its problems,
    to be fixed in the editor.
    """
    checked = check_bytes(name, data)
    if not checked.is_yaml:
        return None, checked
    if checked.survey_id is None:
        raise SurveyEditError("no_id")
    _check_new_id(session, checked.survey_id)
    text = data.decode("utf-8-sig")
    draft = _add_web_survey(session, checked.survey_id, text, user_id=user_id, now=now)
    return draft, checked
