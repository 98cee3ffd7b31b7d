"""The survey pages for program staff: the list, a survey in every language, the editor with
its live check, publishing, retiring, deleting a draft and copying a survey to edit it."""

from __future__ import annotations

import json
import logging
from typing import Any

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    get_flashed_messages,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user
from werkzeug.wrappers import Response

from engage import db
from engage.db import utcnow
from engage.models import SurveyDraft
from engage.services.accounts import record_publish
from engage.services.survey_report import MessageCost
from engage.services.web_surveys import (
    DraftCheck,
    FieldProblem,
    StaleDraftError,
    SurveyEditError,
    check_draft_text,
    copy_to_edit,
    create_draft,
    delete_draft,
    document_of,
    dump_yaml,
    edit_published,
    get_record,
    latest_survey,
    list_surveys,
    publish_draft,
    retire,
    save_draft,
    versions_of,
)
from engage.web.decorators import STAFF, role_required
from engage.web.i18n import gettext as _
from engage.web.i18n import language_name, problem_message
from engage.web.survey_form import (
    COMMON_LANGUAGES,
    LANGUAGE_CODE,
    SURVEY_ID_PATTERN,
    anchor_of,
    apply_action,
    document_from_form,
    field_paths,
    shown_at,
    split_languages,
    when_suggestions,
)

log = logging.getLogger(__name__)

bp = Blueprint("surveys", __name__, url_prefix="/staff/surveys")

# The check answers for at most this much text (the limit of a survey file).
MAX_CHECK_BYTES = 1024 * 1024


def edit_error_message(error: SurveyEditError) -> str:
    """What a person reads when the survey pages cannot do what they asked."""
    survey_id = str(error.params.get("survey_id", ""))
    messages = {
        "not_found": _("There is no survey %(survey_id)s.", survey_id=survey_id),
        "no_draft": _("Survey %(survey_id)s has no draft.", survey_id=survey_id),
        "bad_id": _(
            "“%(survey_id)s” cannot be a survey id: use lowercase letters, digits and single "
            "hyphens, e.g. housing-2025.",
            survey_id=survey_id,
        ),
        "reserved_id": _(
            "“%(survey_id)s” is the name of a page: choose another id.", survey_id=survey_id
        ),
        "file_id": _(
            "A survey from a file already has the id %(survey_id)s: choose another id (or copy "
            "that survey to edit it).",
            survey_id=survey_id,
        ),
        "taken_id": _(
            "A survey with the id %(survey_id)s already exists: choose another id.",
            survey_id=survey_id,
        ),
        "read_only": _(
            "Survey %(survey_id)s comes from a file and is read-only here: copy it to edit it.",
            survey_id=survey_id,
        ),
        "stale": _("Someone else saved this draft since you opened it — reload"),
        "not_yaml": _("This could not be read as a survey file: nothing was saved."),
        "check_failed": _("Not published: fix the problems listed first."),
        "no_version": _(
            "Survey %(survey_id)s has no published version to copy.", survey_id=survey_id
        ),
        "no_id": _("The file has no survey id."),
        "empty": _("There was nothing to save."),
    }
    return messages.get(error.code, _("That could not be done."))


def _org_name() -> str:
    return str(current_app.config["ENGAGE_ORG_NAME"])


def _json_text(document: dict[str, Any]) -> str:
    """A document as the text the editor checks: JSON (which is YAML), one field per line, so
    each problem's line names its field."""
    return json.dumps(document, indent=1, ensure_ascii=False, default=str)


def _not_found_or(error: SurveyEditError) -> None:
    if error.code == "not_found":
        abort(404)


# --- what the templates share --------------------------------------------------------------------


def text_in(value: object, lang: str) -> str:
    """The text of a per-language field in one language, as typed ("" when missing)."""
    if isinstance(value, dict):
        text = value.get(lang)
        return text if isinstance(text, str) else "" if text is None else str(text)
    return ""


def words_in(value: object, lang: str) -> str:
    """A per-language list of words, as the editor shows it: separated by commas."""
    if isinstance(value, dict) and isinstance(value.get(lang), list):
        return ", ".join(str(word) for word in value[lang])
    return ""


def scalar(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ", ".join(scalar(v) for v in value)
    return str(value)


def items(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


@bp.context_processor
def _helpers() -> dict[str, Any]:
    return {
        "language_name": language_name,
        "text_in": text_in,
        "words_in": words_in,
        "scalar": scalar,
        "items": items,
        "question_types": (
            ("choice", _("Choice: one answer from a list")),
            ("multi", _("Several answers from a list")),
            ("yes_no", _("Yes or no")),
            ("number", _("Number")),
            ("text", _("Free text")),
        ),
        "status_names": {
            "draft": _("draft"),
            "published": _("published"),
            "retired": _("retired"),
            "inactive": _("inactive"),
        },
        "source_names": {"file": _("file"), "web": _("web")},
        "flashes": get_flashed_messages(with_categories=True),
    }


def problem_json(problem: FieldProblem) -> dict[str, Any]:
    return {
        "path": problem.path,
        "message": problem_message(problem),
        "line": problem.line,
        "warning": problem.is_warning,
    }


def cost_json(cost: MessageCost) -> dict[str, Any]:
    return {
        "message": cost.message,
        "language": cost.language,
        "encoding": cost.encoding,
        "segments": cost.segments,
        "ucs2_characters": cost.ucs2_characters,
        "over_budget": cost.is_over_budget,
        "budget": cost.budget,
        "other_spelling": cost.other_spelling,
        "other_encoding": cost.other_encoding,
        "other_segments": cost.other_segments,
    }


# --- the list and one survey ---------------------------------------------------------------------


@bp.get("")
@role_required(*STAFF)
def index() -> str:
    return render_template("surveys/index.html", surveys=list_surveys(db.session()))


def _survey_page(
    survey_id: str, *, status: int = 200, copy_error: str | None = None, copy_value: str = ""
) -> tuple[str, int]:
    session = db.session()
    try:
        record = get_record(session, survey_id)
    except SurveyEditError:
        abort(404)
    summary = next(s for s in list_surveys(session) if s.id == survey_id)
    draft = session.get(SurveyDraft, survey_id)
    survey = latest_survey(session, survey_id)
    if survey is not None:
        document, shows = dict(survey.source), "version"
    elif draft is not None:
        document, shows = document_of(draft.text), "draft"
    else:
        document, shows = {}, "nothing"
    page = render_template(
        "surveys/survey.html",
        survey_id=survey_id,
        record=record,
        summary=summary,
        document=document,
        shows=shows,
        current_version=survey.version if survey is not None else None,
        draft=draft,
        versions=versions_of(session, survey_id),
        copy_error=copy_error,
        copy_value=copy_value,
        id_pattern=SURVEY_ID_PATTERN,
    )
    return page, status


@bp.get("/<survey_id>")
@role_required(*STAFF)
def survey(survey_id: str) -> tuple[str, int]:
    return _survey_page(survey_id)


# --- a new survey --------------------------------------------------------------------------------


@bp.route("/new", methods=["GET", "POST"])
@role_required(*STAFF)
def new() -> tuple[str, int] | Response:
    form = request.form
    errors: list[str] = []
    chosen = form.getlist("languages") if request.method == "POST" else ["es", "en"]
    if request.method == "POST":
        survey_id = form.get("id", "").strip()
        title = form.get("title", "").strip()
        languages = [lang for lang in COMMON_LANGUAGES if lang in chosen]
        for code in split_languages(form.get("other_languages", "")):
            if not LANGUAGE_CODE.fullmatch(code):
                errors.append(
                    _(
                        "“%(code)s” is not a language code: use 2 or 3 lowercase letters, "
                        "e.g. mix or zap.",
                        code=code,
                    )
                )
            elif code not in languages:
                languages.append(code)
        if not languages:
            errors.append(_("Choose at least one language."))
        if not title:
            errors.append(_("Give the survey a title."))
        if not errors:
            try:
                with db.transaction() as session:
                    create_draft(
                        session,
                        survey_id,
                        title=title,
                        languages=languages,
                        user_id=current_user.id,
                        now=utcnow(),
                    )
                    record_publish(
                        session,
                        user=current_user,
                        actor=current_user.email,
                        survey_id=survey_id,
                        action="create_draft",
                        version="",
                    )
            except SurveyEditError as error:
                errors.append(edit_error_message(error))
            else:
                log.info("user %s: survey %s created", current_user.id, survey_id)
                return redirect(url_for(".edit", survey_id=survey_id))
    page = render_template(
        "surveys/new.html",
        errors=errors,
        form=form,
        chosen=chosen,
        common_languages=COMMON_LANGUAGES,
        id_pattern=SURVEY_ID_PATTERN,
    )
    return page, 400 if errors else 200


# --- the editor ----------------------------------------------------------------------------------


def _editor_page(
    survey_id: str,
    document: dict[str, Any],
    revision: int,
    *,
    status: int = 200,
    refused: list[str] | None = None,
    error: str | None = None,
) -> tuple[str, int]:
    session = db.session()
    report: DraftCheck = check_draft_text(
        session, survey_id, _json_text(document), org_name=_org_name()
    )
    shown = field_paths(document)
    placed: dict[str, list[FieldProblem]] = {}
    summary: list[tuple[FieldProblem, str]] = []
    for problem in report.problems:
        at = shown_at(problem.path, shown)
        placed.setdefault(at, []).append(problem)
        summary.append((problem, anchor_of(at)))
    costs: dict[str, list[MessageCost]] = {}
    for cost in report.costs:
        costs.setdefault(cost.message, []).append(cost)
    record = get_record(session, survey_id)
    questions = items(document.get("questions"))
    when_names, when_options = when_suggestions(questions)
    page = render_template(
        "surveys/edit.html",
        survey_id=survey_id,
        record=record,
        document=document,
        languages=[lang for lang in items(document.get("languages")) if isinstance(lang, str)],
        questions=questions,
        when_names=when_names,
        when_options=when_options,
        revision=revision,
        report=report,
        placed=placed,
        summary=summary,
        costs=costs,
        refused=refused,
        error=error,
        has_versions=bool(versions_of(session, survey_id)),
    )
    return page, status


@bp.get("/<survey_id>/edit")
@role_required(*STAFF)
def edit(survey_id: str) -> tuple[str, int]:
    session = db.session()
    try:
        record = get_record(session, survey_id)
    except SurveyEditError:
        abort(404)
    if record.source != "web":
        return _read_only_page(survey_id, status=200)
    draft = session.get(SurveyDraft, survey_id)
    if draft is not None:
        return _editor_page(survey_id, document_of(draft.text), draft.revision)
    # Published, then its draft deleted: editing starts again from the latest version.
    try:
        with db.transaction() as writing:
            made = edit_published(writing, survey_id, user_id=current_user.id, now=utcnow())
            text, revision = made.text, made.revision
    except SurveyEditError as error:
        return _survey_page(survey_id, status=409, copy_error=edit_error_message(error))
    return _editor_page(survey_id, document_of(text), revision)


def _read_only_page(survey_id: str, status: int = 403) -> tuple[str, int]:
    """A file survey cannot be edited here: the page says so and offers to copy it."""
    page = render_template(
        "surveys/read_only.html", survey_id=survey_id, id_pattern=SURVEY_ID_PATTERN
    )
    return page, status


@bp.post("/<survey_id>/edit")
@role_required(*STAFF)
def save(survey_id: str) -> tuple[str, int] | Response:
    """The editor's form, without JavaScript too: save the draft, then do what the button
    asked (add, move or delete a question or a choice; publish)."""
    form = request.form
    try:
        revision = int(form.get("revision", ""))
    except ValueError:
        abort(400)
    action = form.get("action", "save")
    document = document_from_form(survey_id, form)
    anchor = None
    if action not in ("save", "publish"):
        anchor = apply_action(document, action, form.get("new_question_type", "choice"))
    try:
        with db.transaction() as session:
            save_draft(
                session,
                survey_id,
                document=document,
                revision=revision,
                user_id=current_user.id,
                now=utcnow(),
            )
    except StaleDraftError as error:
        page = render_template(
            "surveys/stale.html",
            survey_id=survey_id,
            message=edit_error_message(error),
            text=dump_yaml(document),
        )
        return page, 409
    except SurveyEditError as error:
        _not_found_or(error)
        if error.code == "read_only":
            return _read_only_page(survey_id)
        return _editor_page(
            survey_id, document, revision, status=400, error=edit_error_message(error)
        )
    if action == "publish":
        return _publish(survey_id)
    flash(_("Draft saved."), "saved")
    return redirect(url_for(".edit", survey_id=survey_id, _anchor=anchor))


@bp.post("/<survey_id>/draft")
@role_required(*STAFF, is_download=True)
def autosave(survey_id: str) -> tuple[Response, int]:
    """The editor's autosave: JSON `{"document", "revision"}` in, `{"revision"}` out; 409 when
    someone else saved since."""
    data = request.get_json(silent=True)
    if (
        not isinstance(data, dict)
        or not isinstance(data.get("document"), dict)
        or not isinstance(data.get("revision"), int)
    ):
        return jsonify({"error": "bad_request", "message": _("That could not be done.")}), 400
    try:
        with db.transaction() as session:
            draft = save_draft(
                session,
                survey_id,
                document=data["document"],
                revision=data["revision"],
                user_id=current_user.id,
                now=utcnow(),
            )
            revision = draft.revision
    except SurveyEditError as error:
        _not_found_or(error)
        status = {"stale": 409, "read_only": 403}.get(error.code, 400)
        return jsonify({"error": error.code, "message": edit_error_message(error)}), status
    return jsonify({"revision": revision}), 200


@bp.post("/<survey_id>/check")
@role_required(*STAFF, is_download=True)
def check(survey_id: str) -> tuple[Response, int]:
    """The rules of `engage surveys check` on the saved draft, or on the YAML sent."""
    if request.content_length is not None and request.content_length > MAX_CHECK_BYTES:
        abort(413)
    session = db.session()
    try:
        get_record(session, survey_id)
    except SurveyEditError:
        abort(404)
    if request.mimetype == "text/yaml":
        data = request.get_data(cache=False)
        if len(data) > MAX_CHECK_BYTES:
            abort(413)
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            message = _("This could not be read as a survey file: nothing was saved.")
            return jsonify({"error": "not_utf8", "message": message}), 400
    else:
        draft = session.get(SurveyDraft, survey_id)
        if draft is None:
            error = SurveyEditError("no_draft", survey_id=survey_id)
            return jsonify({"error": "no_draft", "message": edit_error_message(error)}), 404
        text = draft.text
    report = check_draft_text(session, survey_id, text, org_name=_org_name())
    return jsonify(
        {
            "problems": [problem_json(p) for p in report.problems],
            "segments": [cost_json(c) for c in report.costs],
            "can_publish": report.can_publish,
            "is_yaml": report.is_yaml,
        }
    ), 200


# --- publishing, retiring, deleting, copying -----------------------------------------------------


def _publish(survey_id: str) -> tuple[str, int] | Response:
    try:
        with db.transaction() as session:
            result, _report, retired = publish_draft(
                session, survey_id, org_name=_org_name(), now=utcnow()
            )
            if retired is not None:
                record_publish(
                    session,
                    user=current_user,
                    actor=current_user.email,
                    survey_id=retired,
                    action="retire",
                    version="",
                    taken_over_by=survey_id,
                )
            if result.action == "published":
                record_publish(
                    session,
                    user=current_user,
                    actor=current_user.email,
                    survey_id=survey_id,
                    action=result.action,
                    version=result.version,
                )
    except SurveyEditError as error:
        _not_found_or(error)
        if error.code == "read_only":
            return _read_only_page(survey_id)
        if error.code == "no_draft":
            flash(edit_error_message(error), "error")
            return redirect(url_for(".survey", survey_id=survey_id))
        # What the request read so far predates the save just made: read afresh.
        session = db.session()
        session.rollback()
        draft = session.get(SurveyDraft, survey_id)
        if draft is None:
            abort(404)
        problems = error.params.get("problems")
        refused = [
            problem_message(problem)
            for problem in (problems if isinstance(problems, list) else [])
            if isinstance(problem, FieldProblem) and not problem.is_warning
        ]
        return _editor_page(
            survey_id, document_of(draft.text), draft.revision, status=422, refused=refused
        )
    log.info("user %s: survey %s %s %s", current_user.id, survey_id, result.action, result.version)
    if result.action == "published":
        flash(_("Published as version %(version)s.", version=result.version), "saved")
    else:
        flash(
            _(
                "Nothing changed since version %(version)s: nothing published.",
                version=result.version,
            ),
            "saved",
        )
    if retired is not None:
        flash(
            _(
                "Its keywords now start this survey: %(retired)s, the file survey it was copied "
                "from, is retired.",
                retired=retired,
            ),
            "saved",
        )
    return redirect(url_for(".survey", survey_id=survey_id))


@bp.post("/<survey_id>/publish")
@role_required(*STAFF)
def publish(survey_id: str) -> tuple[str, int] | Response:
    return _publish(survey_id)


def _is_confirmed() -> bool:
    if request.form.get("confirm"):
        return True
    flash(_("Tick the box to confirm first."), "error")
    return False


@bp.post("/<survey_id>/retire")
@role_required(*STAFF)
def retire_survey(survey_id: str) -> Response:
    if not _is_confirmed():
        return redirect(url_for(".survey", survey_id=survey_id, _anchor="retire"))
    try:
        with db.transaction() as session:
            retire(session, survey_id, now=utcnow())
            record_publish(
                session,
                user=current_user,
                actor=current_user.email,
                survey_id=survey_id,
                action="retire",
                version="",
            )
    except SurveyEditError:
        abort(404)
    log.info("user %s: survey %s retired", current_user.id, survey_id)
    flash(_("Retired: its keywords start nothing now. Its results stay."), "saved")
    return redirect(url_for(".survey", survey_id=survey_id))


@bp.post("/<survey_id>/delete")
@role_required(*STAFF)
def delete(survey_id: str) -> tuple[str, int] | Response:
    if not _is_confirmed():
        return redirect(url_for(".survey", survey_id=survey_id, _anchor="delete"))
    try:
        with db.transaction() as session:
            is_gone = delete_draft(session, survey_id)
            record_publish(
                session,
                user=current_user,
                actor=current_user.email,
                survey_id=survey_id,
                action="delete_draft",
                version="",
            )
    except SurveyEditError as error:
        _not_found_or(error)
        if error.code == "read_only":
            return _read_only_page(survey_id)
        flash(edit_error_message(error), "error")
        return redirect(url_for(".survey", survey_id=survey_id))
    log.info("user %s: draft of %s deleted", current_user.id, survey_id)
    if is_gone:
        flash(_("Draft deleted: the survey %(survey_id)s is gone.", survey_id=survey_id), "saved")
        return redirect(url_for(".index"))
    flash(_("Draft deleted. The published version stays."), "saved")
    return redirect(url_for(".survey", survey_id=survey_id))


@bp.post("/<survey_id>/copy")
@role_required(*STAFF)
def copy(survey_id: str) -> tuple[str, int] | Response:
    new_id = request.form.get("new_id", "").strip()
    try:
        with db.transaction() as session:
            copy_to_edit(session, survey_id, new_id, user_id=current_user.id, now=utcnow())
            record_publish(
                session,
                user=current_user,
                actor=current_user.email,
                survey_id=new_id,
                action="copy",
                version="",
                copied_from=survey_id,
            )
    except SurveyEditError as error:
        if error.code == "not_found" and error.params.get("survey_id") == survey_id:
            abort(404)
        return _survey_page(
            survey_id, status=400, copy_error=edit_error_message(error), copy_value=new_id
        )
    log.info("user %s: survey %s copied to %s", current_user.id, survey_id, new_id)
    return redirect(url_for(".edit", survey_id=new_id))
