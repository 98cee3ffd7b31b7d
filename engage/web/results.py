"""Results for the policy team: survey list, charts with a breakdown, aggregate downloads."""

from __future__ import annotations

import io
import logging
from collections import defaultdict
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from babel import dates as babel_dates
from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    g,
    redirect,
    render_template,
    request,
    stream_with_context,
    url_for,
)
from flask_login import current_user
from sqlalchemy import select
from werkzeug.wrappers import Response as WerkzeugResponse

from engage import db
from engage.models import SurveyVersion
from engage.results.disclosure import ALL, OTHER, Group
from engage.results.report import UNKNOWN, BreakdownError, BreakdownRefusedError, Report
from engage.results.writers import (
    iter_aggregate_csv,
    iter_aggregate_json,
    iter_responses_csv,
    write_aggregate_xlsx,
)
from engage.services.accounts import record_download
from engage.services.results import (
    PageTexts,
    SurveyNotFoundError,
    breakdown_attributes,
    build_report,
    describe_survey,
    export_responses,
    page_texts,
    report_rule,
    survey_title,
    take_snapshot,
)
from engage.services.snapshots import SnapshotTooSoonError
from engage.web.decorators import ADMIN, EVERYONE, STAFF, role_required
from engage.web.i18n import gettext as _
from engage.web.i18n import page_language, translations

log = logging.getLogger(__name__)

bp = Blueprint("results", __name__, url_prefix="/results")

MIMETYPES = {
    "csv": "text/csv; charset=utf-8",
    "json": "application/json",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


def _report(survey_id: str, by: list[str]) -> Report:
    """The report, committed: reading it may have taken the survey's next snapshot."""
    session = db.session()
    try:
        report = build_report(session, survey_id, by, rule=report_rule(current_app.config))
    except SurveyNotFoundError:
        abort(404)
    except BreakdownError as exc:  # BreakdownRefusedError too: downloads say why
        abort(400, description=str(exc))
    session.commit()
    return report


@bp.get("")
@role_required(*EVERYONE)
def index() -> str:
    survey_ids = (
        db.session()
        .scalars(select(SurveyVersion.survey_id).distinct().order_by(SurveyVersion.survey_id))
        .all()
    )
    surveys = [describe_survey(db.session(), survey_id) for survey_id in survey_ids]
    language = page_language()
    titles = {info.id: survey_title(info, language) for info in surveys}
    return render_template("results_index.html", surveys=surveys, titles=titles)


@bp.get("/<survey_id>")
@role_required(*EVERYONE)
def survey(survey_id: str) -> str:
    by = [b for b in request.args.getlist("by") if b][:2]
    refused = None
    try:
        report = build_report(db.session(), survey_id, by, rule=report_rule(current_app.config))
    except SurveyNotFoundError:
        abort(404)
    except BreakdownRefusedError:
        # The page says why and shows everyone instead.
        refused, by = by, []
        report = _report(survey_id, by)
    except BreakdownError as exc:
        abort(400, description=str(exc))
    db.session().commit()
    texts = page_texts(report.survey, page_language())
    min_cell = report_rule(current_app.config).min_cell
    questions: dict[str, dict[str, Any]] = {}
    for row in report.rows:
        entry = questions.setdefault(
            row.question_id,
            {
                "id": row.question_id,
                "text": texts.questions.get(row.question_id, row.question),
                "labels": texts.labels.get(row.question_id, {}),
                "groups": defaultdict(list),
            },
        )
        entry["groups"][row.group].append(row)
    groups = {g for q in questions.values() for g in q["groups"]}
    groups |= {g for medians in report.medians.values() for g in medians}
    return render_template(
        "results_survey.html",
        report=report,
        texts=texts,
        questions=list(questions.values()),
        group_labels={group: _group_label(group, by, texts, min_cell) for group in groups},
        by=by,
        attributes=[
            (attribute, texts.attributes.get(attribute, attribute))
            for attribute in breakdown_attributes(db.session(), survey_id)
        ],
        can_see_responses=current_user.role in STAFF,
        can_take_snapshot=current_user.role in ADMIN,
        refused=refused,
        snapshot_refused=request.args.get("snapshot") == "refused",
    )


@bp.post("/<survey_id>/snapshot")
@role_required(*ADMIN)
def snapshot(survey_id: str) -> WerkzeugResponse:
    """An admin asks for a new snapshot sooner than the daily one (same minimum of people)."""
    session = db.session()
    try:
        taken = take_snapshot(
            session,
            survey_id,
            rule=report_rule(current_app.config),
            requested_by=current_user.id,
        )
    except SurveyNotFoundError:
        abort(404)
    except SnapshotTooSoonError:
        session.rollback()
        return redirect(url_for("results.survey", survey_id=survey_id, snapshot="refused"))
    record_download(
        session,
        user=current_user,
        actor=current_user.email,
        survey_id=survey_id,
        parameters={"kind": "snapshot", "snapshot": str(taken.id)},
        action="snapshot",
    )
    session.commit()
    log.info("user %s: snapshot %s of %s taken", current_user.id, taken.id, survey_id)
    return redirect(url_for("results.survey", survey_id=survey_id))


@bp.get("/<survey_id>/export.<fmt>")
@role_required(*EVERYONE, is_download=True)
def export(survey_id: str, fmt: str) -> Response:
    if fmt not in MIMETYPES:
        abort(404)
    by = [b for b in request.args.getlist("by") if b]
    report = _report(survey_id, by)
    snapshot = str(report.snapshot.id) if report.snapshot else ""
    audit_download(
        survey_id, {"format": fmt, "by": ",".join(by), "kind": "aggregates", "snapshot": snapshot}
    )
    filename = f"{survey_id}{'-by-' + '-'.join(by) if by else ''}.{fmt}"
    if fmt == "xlsx":
        buffer = io.BytesIO()
        write_aggregate_xlsx(report, buffer)
        body: bytes | Iterator[str] = buffer.getvalue()
    else:
        body = iter_aggregate_csv(report) if fmt == "csv" else iter_aggregate_json(report)
    return Response(
        body,
        mimetype=MIMETYPES[fmt],
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@bp.get("/<survey_id>/responses.csv")
@role_required(*STAFF, is_download=True)
def responses(survey_id: str) -> Response:
    try:
        describe_survey(db.session(), survey_id)
    except SurveyNotFoundError:
        abort(404)
    audit_download(survey_id, {"format": "csv", "kind": "responses"})
    session = db.session()
    staff_file = export_responses(
        session,
        survey_id,
        secret_key=current_app.config["SECRET_KEY"],
        vault=current_app.extensions["engage.vault"],
    )
    log.info("user %s: responses of %s downloaded", current_user.id, survey_id)

    def stream() -> Iterator[str]:
        # The rows are read while the body streams, after the request's own teardown: the
        # session they are read with is closed here, or its connection stays checked out.
        try:
            yield from iter_responses_csv(staff_file)
        finally:
            session.close()

    return Response(
        stream_with_context(stream()),
        mimetype=MIMETYPES["csv"],
        headers={"Content-Disposition": f'attachment; filename="{survey_id}-responses.csv"'},
    )


def audit_download(survey_id: str, parameters: dict[str, str]) -> None:
    """Record the signed-in person's download, committed before a byte of it leaves (every
    page that hands out a file about a survey calls it)."""
    session = db.session()
    record_download(
        session,
        user=current_user,
        actor=current_user.email,
        survey_id=survey_id,
        parameters=parameters,
    )
    session.commit()


def _group_label(group: Group, by: list[str], texts: PageTexts, min_cell: int) -> str:
    """A group as the page names it: each value by its label (California, not CA)."""
    if all(part == ALL for part in group):
        return _("Everyone")
    names = {
        # Kept by position: "all · Other" and "Other · all" are different groups.
        ALL: _("all"),
        UNKNOWN: _("unknown"),
        OTHER: _("Other or unknown (groups of fewer than %(n)s)", n=min_cell),
    }
    return " · ".join(
        names.get(part) or texts.groups.get(attribute, {}).get(part, part)
        for attribute, part in zip(by, group, strict=True)
    )


@bp.app_template_filter("format_date")
def format_date(moment: datetime) -> str:
    """A date as the page's language writes it (4 dic 2026, Dec 4, 2026)."""
    translations()  # sets the page's language
    return babel_dates.format_date(moment, format="medium", locale=g.page_language)
