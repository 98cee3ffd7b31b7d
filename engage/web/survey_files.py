"""Surveys as files: a survey downloaded as YAML, a YAML file uploaded as a web draft, and the
translators' files (PO per language, XLSX with every language) out and back in."""

from __future__ import annotations

import re
from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user
from werkzeug.datastructures import FileStorage
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.utils import secure_filename
from werkzeug.wrappers import Response as WerkzeugResponse

from engage import db
from engage.db import utcnow
from engage.services.translations import (
    FORMATS,
    Notice,
    SurveyTexts,
    TranslationFileError,
    decode_changes,
    encode_changes,
    missing_counts,
    preview_changes,
    read_upload,
    save_translations,
    survey_texts,
    write_po,
    write_xlsx,
)
from engage.services.web_surveys import StaleDraftError, SurveyEditError, import_yaml
from engage.survey.loader import MAX_FILE_BYTES, Problem
from engage.web.decorators import STAFF, role_required
from engage.web.i18n import gettext as _
from engage.web.i18n import language_name
from engage.web.results import audit_download

bp = Blueprint("survey_files", __name__, url_prefix="/staff/surveys")

MIMETYPES = {
    "yaml": "text/yaml; charset=utf-8",
    "po": "text/x-gettext-translation; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
# The survey page of the surveys blueprint, whatever its endpoint is called.
_SURVEY_PAGE = re.compile(r"/staff/surveys/<[^>]+>")


def _texts_or_404(survey_id: str) -> SurveyTexts:
    try:
        return survey_texts(db.session(), survey_id)
    except SurveyEditError:
        abort(404)


def _attachment(body: str | bytes, fmt: str, filename: str) -> Response:
    return Response(
        body,
        content_type=MIMETYPES[fmt],
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def _read_upload() -> tuple[str, bytes] | None:
    """The uploaded file's name and at most one byte more than a survey file may hold."""
    upload = request.files.get("file")
    if not isinstance(upload, FileStorage) or not upload.filename:
        return None
    name = secure_filename(upload.filename) or "upload"
    return name, upload.stream.read(MAX_FILE_BYTES + 1)


# --- a survey as YAML ------------------------------------------------------------------------


@bp.get("/<survey_id>.yaml")
@role_required(*STAFF, is_download=True)
def download(survey_id: str) -> Response:
    """A web survey's draft as written, else the latest published version as a survey file."""
    texts = _texts_or_404(survey_id)
    draft = str(texts.has_draft).lower()
    audit_download(survey_id, {"format": "yaml", "kind": "survey", "draft": draft})
    return _attachment(texts.text, "yaml", f"{survey_id}.yaml")


@bp.route("/import", methods=["GET", "POST"])
@role_required(*STAFF)
def import_page() -> str | tuple[str, int]:
    if request.method == "GET":
        return render_template("survey_files/import.html")
    upload = _read_upload()
    if upload is None:
        return render_template("survey_files/import.html", refused=_("Choose a file.")), 400
    name, data = upload
    try:
        with db.transaction() as session:
            draft, checked = import_yaml(session, name, data, user_id=current_user.id, now=utcnow())
            survey_id = draft.survey_id if draft is not None else None
    except SurveyEditError as error:
        return render_template(
            "survey_files/import.html", refused=edit_message(error.code, error.params)
        ), 400
    lines = data.decode("utf-8", errors="replace").splitlines()
    problems = [(problem, _line_text(lines, problem)) for problem in checked.problems]
    if survey_id is None:
        return render_template(
            "survey_files/import.html",
            refused=_("This file cannot be read as a survey: nothing was saved."),
            problems=problems,
        ), 400
    return render_template(
        "survey_files/import.html",
        survey_id=survey_id,
        problems=problems,
        next_url=_survey_url(survey_id),
    )


def _line_text(lines: list[str], problem: Problem) -> str:
    if 0 < problem.line <= len(lines):
        return lines[problem.line - 1].strip()[:200]
    return ""


def _survey_url(survey_id: str) -> str:
    """The editor when it exists, else the survey's page, else its translations."""
    if "surveys.edit" in current_app.view_functions:
        return url_for("surveys.edit", survey_id=survey_id)
    for rule in current_app.url_map.iter_rules():
        if _SURVEY_PAGE.fullmatch(rule.rule) and "GET" in (rule.methods or ()):
            values: dict[str, Any] = {next(iter(rule.arguments)): survey_id}
            return url_for(rule.endpoint, **values)
    return url_for("survey_files.translations", survey_id=survey_id)


# --- translators' files ----------------------------------------------------------------------


def _translations_page(texts: SurveyTexts, **context: Any) -> str:
    context.setdefault("saved", None)
    return render_template(
        "survey_files/translations.html",
        texts=texts,
        missing=missing_counts(texts),
        language_name=language_name,
        **context,
    )


@bp.get("/<survey_id>/translations")
@role_required(*STAFF)
def translations(survey_id: str) -> str:
    texts = _texts_or_404(survey_id)
    saved = request.args.get("saved", type=int)
    return _translations_page(texts, saved=saved)


@bp.get("/<survey_id>/translations.<fmt>")
@role_required(*STAFF, is_download=True)
def translations_file(survey_id: str, fmt: str) -> Response:
    if fmt not in FORMATS:
        abort(404)
    texts = _texts_or_404(survey_id)
    if fmt == "po":
        language = request.args.get("lang", "")
        try:
            body = write_po(texts, language)
        except TranslationFileError:
            abort(400, description="lang must be one of the survey's languages but its first")
        filename = f"{survey_id}-{language}.po"
    else:
        language = "all"
        body = write_xlsx(texts)
        filename = f"{survey_id}-translations.xlsx"
    audit_download(survey_id, {"format": fmt, "kind": "translations", "language": language})
    return _attachment(body, fmt, filename)


@bp.post("/<survey_id>/translations")
@role_required(*STAFF)
def translations_upload(survey_id: str) -> str | tuple[str, int] | WerkzeugResponse:
    """A translated file: first a preview of what it changes, saved only once confirmed."""
    texts = _texts_or_404(survey_id)
    if not texts.is_web:
        return _translations_page(texts, refused=edit_message("read_only", {})), 400
    if request.form.get("confirm"):
        return _save(texts)
    upload = _read_upload()
    if upload is None:
        return _translations_page(texts, refused=_("Choose a file.")), 400
    name, data = upload
    try:
        reading = read_upload(texts, name, data)
        preview = preview_changes(
            db.session(), texts, reading, org_name=current_app.config["ENGAGE_ORG_NAME"]
        )
    except TranslationFileError as error:
        return _translations_page(texts, refused=file_message(error.code, error.params)), 400
    except SurveyEditError as error:
        return _translations_page(texts, refused=edit_message(error.code, error.params)), 400
    finally:
        db.session().rollback()  # a preview only reads
    return render_template(
        "survey_files/preview.html",
        texts=texts,
        preview=preview,
        filename=name,
        encoded=encode_changes(reading.changes),
        notices=[(notice, notice_message(notice)) for notice in reading.notices],
        language_name=language_name,
    )


def _save(texts: SurveyTexts) -> str | tuple[str, int] | WerkzeugResponse:
    try:
        revision = int(request.form.get("revision", ""))
        changes = decode_changes(texts, request.form.get("changes", ""))
    except ValueError:
        abort(400, description="the form's revision or changes are garbled")
    try:
        with db.transaction() as session:
            save_translations(
                session,
                texts.survey_id,
                changes,
                revision=revision,
                user_id=current_user.id,
                now=utcnow(),
            )
    except StaleDraftError:
        fresh = _texts_or_404(texts.survey_id)
        return _translations_page(fresh, refused=edit_message("stale", {})), 409
    except SurveyEditError as error:
        return _translations_page(texts, refused=edit_message(error.code, error.params)), 400
    return redirect(
        url_for("survey_files.translations", survey_id=texts.survey_id, saved=len(changes))
    )


@bp.errorhandler(RequestEntityTooLarge)
def too_large(_error: RequestEntityTooLarge) -> tuple[str, int]:
    """An upload over the app's request limit: refused before it is read, with a page that says
    so (the request was never read: nothing was saved)."""
    return render_template(
        "survey_files/too_large.html",
        message=_("The file is larger than 1 MB: nothing was saved."),
        back=request.path,
    ), 413


# --- messages --------------------------------------------------------------------------------


def edit_message(code: str, params: dict[str, object]) -> str:
    """What the page says when the surveys service refuses something."""
    survey_id = str(params.get("survey_id", ""))
    if code == "file_id":
        return _(
            "A survey from a file already has the id %(id)s: change the id in the file, or use "
            "“copy to edit” on that survey. Nothing was saved.",
            id=survey_id,
        )
    if code == "taken_id":
        return _(
            "A web survey already has the id %(id)s: change the id in the file, or edit that "
            "survey. Nothing was saved.",
            id=survey_id,
        )
    if code == "reserved_id":
        return _(
            "%(id)s is the name of a page and cannot be a survey id: change the id in the file. "
            "Nothing was saved.",
            id=survey_id,
        )
    if code == "bad_id":
        return _(
            "%(id)s is not a survey id: use lowercase letters, digits and hyphens. Nothing was "
            "saved.",
            id=survey_id,
        )
    if code == "no_id":
        return _(
            "This file is not a survey: a survey file is a list of fields that starts with "
            "“id: …”. Nothing was saved."
        )
    if code == "read_only":
        return _(
            "Surveys from files cannot be changed here. Use “copy to edit” to make a web survey, "
            "then upload the translations to it."
        )
    if code == "stale":
        return _(
            "Someone saved this draft since the file was read. Nothing was saved: upload the file "
            "again to see its changes against the draft as it is now."
        )
    return _("This cannot be done: nothing was saved.")


def file_message(code: str, params: dict[str, object]) -> str:
    """What the page says about a translators' file it cannot take."""
    language = str(params.get("language", ""))
    if code == "too_large":
        return _("The file is larger than 1 MB: nothing was saved.")
    if code == "too_large_unpacked":
        return _("This workbook unpacks to far more than a survey's texts: nothing was saved.")
    if code == "not_po":
        return _("This is not a PO file that can be read: nothing was saved.")
    if code == "not_xlsx":
        return _("This is not an XLSX workbook that can be read: nothing was saved.")
    if code == "no_language":
        return _("The PO file does not say its language (its Language header): nothing was saved.")
    if code == "default_language":
        return _(
            "The file is in %(language)s, the survey's own language: only translations can be "
            "uploaded. Nothing was saved.",
            language=language,
        )
    if code == "unknown_language":
        return _(
            "The file is in %(language)s, which is not one of the survey's languages: add it in "
            "the editor first. Nothing was saved.",
            language=language,
        )
    if code == "bad_header":
        return _(
            "The first row of the workbook must be “context” and then the languages, as in the "
            "file downloaded here. Nothing was saved."
        )
    if code == "no_language_column":
        return _("No column of the workbook is one of the survey's languages: nothing was saved.")
    if code == "too_many_rows":
        return _("The workbook has too many rows for a survey: nothing was saved.")
    return _("This file cannot be read: nothing was saved.")


def notice_message(notice: Notice) -> str:
    if notice.code == "unknown_context":
        return _("Not in the survey (any more): left aside.")
    if notice.code == "fuzzy":
        return _("Marked as needing review (fuzzy) in the file: left aside.")
    if notice.code == "source_changed":
        return _("The original text changed since the file was made: check this translation.")
    if notice.code == "unknown_language":
        return _("Not one of the survey's languages: this column was left aside.")
    if notice.code == "duplicate":
        return _("This field is in the file twice: only the first row was read.")
    return notice.code
