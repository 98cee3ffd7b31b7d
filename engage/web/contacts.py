"""The contacts pages: the list and its filters, a contact's page, revealing a number for a
call, finding a contact by number, opt-outs given another way, erasure (admins), and imports."""

from __future__ import annotations

import logging
import re
from datetime import UTC, date, datetime, time

from babel import dates as babel_dates
from flask import Blueprint, abort, current_app, g, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from engage import db
from engage.channels import CHANNELS
from engage.clock import erase as erase_contacts
from engage.jobs.contact_imports import enqueue_contact_import, read_progress, run_contact_import
from engage.models import ContactImport, User
from engage.privacy import PhoneNumberError, Vault, normalize_number
from engage.services import contact_imports, contact_pages
from engage.services.accounts import record_erasure
from engage.services.contact_filters import ContactFilter
from engage.services.contacts import ContactImportError
from engage.services.erasure import BY_STAFF
from engage.survey.keywords import LANGUAGE_CODE
from engage.web import csrf
from engage.web.decorators import ADMIN, STAFF, role_required
from engage.web.i18n import gettext as _
from engage.web.i18n import translations

log = logging.getLogger(__name__)

bp = Blueprint("contacts", __name__, url_prefix="/staff/contacts")

_PROFILE_KEY = re.compile(r"^[a-z_][a-z0-9_]*$")
# Reasons and notes staff type: enough for a sentence, not a file.
MAX_REASON = 500
# Bad rows listed on the page; a file with more is shown as how many more there are.
BAD_ROWS_SHOWN = 1000


def _vault() -> Vault:
    return current_app.extensions["engage.vault"]


def _signed_in_user(session: Session) -> User:
    """The signed-in person's row in this transaction's session."""
    return session.get_one(User, current_user.id)


# -- the list ---------------------------------------------------------------------------------


def filter_from_query() -> tuple[ContactFilter, dict[str, str], list[str]]:
    """The filter in the query string, the values to show back in the form, and problems."""
    args = request.args
    shown = {
        name: args.get(name, "").strip()
        for name in ("key", "value", "language", "channel", "opted_out", "after", "before")
    }
    problems: list[str] = []
    profile: dict[str, str] = {}
    if shown["key"] or shown["value"]:
        if not _PROFILE_KEY.match(shown["key"]):
            problems.append(_("An attribute is a profile key such as state or crop."))
        else:
            profile[shown["key"]] = shown["value"]
    language = shown["language"] if LANGUAGE_CODE.fullmatch(shown["language"]) else None
    channel = shown["channel"] if shown["channel"] in CHANNELS else None
    opted_out = {"yes": True, "no": False}.get(shown["opted_out"])
    moments: dict[str, datetime | None] = {}
    for name in ("after", "before"):
        moments[name] = None
        if shown[name]:
            try:
                moments[name] = datetime.combine(date.fromisoformat(shown[name]), time(), UTC)
            except ValueError:
                problems.append(_("Write dates as YYYY-MM-DD."))
    chosen = ContactFilter(
        profile=profile,
        language=language,
        channel=channel,
        is_opted_out=opted_out,
        active_after=moments["after"],
        active_before=moments["before"],
    )
    return chosen, shown, problems


@bp.get("")
@role_required(*STAFF)
def index() -> tuple[str, int]:
    return _list_page()


def _list_page(*, find_problem: str | None = None, status: int = 200) -> tuple[str, int]:
    """The list as the query string filters it; after a failed look-up, unfiltered."""
    if find_problem is None:
        chosen, shown, problems = filter_from_query()
        cursor = request.args.get("cursor", type=int)
    else:
        chosen, shown, problems, cursor = ContactFilter(), {}, [], None
    session = db.session()
    page = contact_pages.list_contacts(session, _vault(), chosen, cursor=cursor)
    return (
        render_template(
            "contacts/index.html",
            page=page,
            shown=shown,
            query={name: value for name, value in shown.items() if value},
            is_first_page=cursor is None,
            problems=problems,
            find_problem=find_problem,
            choices=contact_pages.filter_choices(session),
            channels=list(CHANNELS),
            done=request.args.get("done"),
        ),
        status,
    )


@bp.post("/find")
@role_required(*STAFF)
def find() -> Response | tuple[str, int]:
    raw = request.form.get("phone", "").strip()
    try:
        e164 = normalize_number(raw, current_app.config["ENGAGE_DEFAULT_REGION"])
    except PhoneNumberError:
        return _list_page(find_problem=_("This is not a phone number."), status=400)
    with db.transaction() as session:
        contact_id = contact_pages.find_by_number(
            session, _vault(), e164, user=_signed_in_user(session), now=db.now()
        )
    if contact_id is None:
        log.info("user %s: looked up a number, nobody found", current_user.id)
        return _list_page(find_problem=_("No contact has this number."), status=404)
    log.info("user %s: looked up contact-%s by number", current_user.id, contact_id)
    return redirect(url_for("contacts.contact", contact_id=contact_id))


# -- one contact ------------------------------------------------------------------------------


def _contact_page(contact_id: int, *, status: int = 200, **extra: object) -> tuple[str, int]:
    session = db.session()
    details = contact_pages.describe_contact(session, _vault(), contact_id)
    if details is None:
        abort(404)
    left, next_at = contact_pages.reveals_left(session, current_user.id, db.now())
    return (
        render_template(
            "contacts/contact.html",
            contact=details,
            reveals_left=left,
            next_reveal_at=next_at,
            can_erase=current_user.role in ADMIN,
            done=request.args.get("done"),
            **extra,
        ),
        status,
    )


@bp.get("/<int:contact_id>")
@role_required(*STAFF)
def contact(contact_id: int) -> tuple[str, int]:
    return _contact_page(contact_id)


def _reason() -> str:
    return request.form.get("reason", "").strip()[:MAX_REASON]


@bp.post("/<int:contact_id>/reveal")
@role_required(*STAFF)
def reveal(contact_id: int) -> tuple[str, int]:
    reason = _reason()
    if not reason:
        return _contact_page(
            contact_id, status=400, reveal_problem=_("Say why you need to call this worker.")
        )
    now = db.now()
    with db.transaction() as session:
        target = contact_pages.live_contact(session, contact_id)
        if target is None:
            abort(404)
        outcome = contact_pages.reveal_number(
            session, _vault(), target, user=_signed_in_user(session), reason=reason, now=now
        )
    if outcome.e164 is None:
        log.info("user %s: reveal of contact-%s refused (daily limit)", current_user.id, contact_id)
        return _contact_page(
            contact_id,
            status=429,
            reveal_problem=_(
                "You have seen %(limit)s numbers in the last 24 hours, the most allowed. "
                "You can see another at %(time)s (UTC). Ask an admin if a worker is in danger "
                "now.",
                limit=contact_pages.REVEALS_PER_DAY,
                time=short_datetime(outcome.next_at),
            ),
        )
    log.info("user %s: revealed the number of contact-%s", current_user.id, contact_id)
    return (
        render_template(
            "contacts/reveal.html",
            contact_id=contact_id,
            pseudonym=contact_pages.pseudonym(contact_id),
            e164=outcome.e164,
            masked=contact_pages.mask(outcome.e164),
            remaining=outcome.remaining,
            seconds=contact_pages.REVEAL_SECONDS,
        ),
        200,
    )


def _record_opt_choice(contact_id: int, *, is_opted_out: bool) -> Response:
    with db.transaction() as session:
        target = contact_pages.live_contact(session, contact_id, lock=True)
        if target is None:
            abort(404)
        changed = contact_pages.record_opt_choice(
            session,
            target,
            is_opted_out=is_opted_out,
            user=_signed_in_user(session),
            reason=_reason(),
            now=db.now(),
        )
    if changed:
        log.info(
            "user %s: contact-%s %s",
            current_user.id,
            contact_id,
            "opted out" if is_opted_out else "opted in",
        )
    done = ("opted_out" if is_opted_out else "opted_in") if changed else "unchanged"
    return redirect(url_for("contacts.contact", contact_id=contact_id, done=done))


@bp.post("/<int:contact_id>/opt-out")
@role_required(*STAFF)
def opt_out(contact_id: int) -> Response:
    return _record_opt_choice(contact_id, is_opted_out=True)


@bp.post("/<int:contact_id>/opt-in")
@role_required(*STAFF)
def opt_in(contact_id: int) -> Response:
    return _record_opt_choice(contact_id, is_opted_out=False)


@bp.post("/<int:contact_id>/erase")
@role_required(*ADMIN)
def erase(contact_id: int) -> Response | str:
    """Erasure as BORRAR does it; the first post asks for confirmation, the second erases."""
    session = db.session()
    if contact_pages.live_contact(session, contact_id) is None:
        abort(404)
    if request.form.get("confirm") != "yes":
        return render_template(
            "contacts/erase.html",
            pseudonym=contact_pages.pseudonym(contact_id),
            contact_id=contact_id,
        )
    session.rollback()  # end the read before erasing (SQLite: a fresh snapshot to write from)
    erased = erase_contacts([contact_id], by=BY_STAFF)
    with db.transaction() as writer:
        entry = record_erasure(writer, actor=current_user.email, contact_id=contact_id, by=BY_STAFF)
        entry.user_id = current_user.id
    if not erased:
        abort(404)  # erased meanwhile
    log.info("user %s: erased contact-%s", current_user.id, contact_id)
    return redirect(url_for("contacts.index", done="erased"))


# -- imports ----------------------------------------------------------------------------------


@bp.get("/import")
@role_required(*STAFF)
def upload_form() -> str:
    return render_template("contacts/import.html", problems=[], name=None)


@bp.post("/import")
@csrf.exempt  # checked below, once the larger upload limit is set
@role_required(*STAFF)
def upload() -> Response | tuple[str, int]:
    # A contacts file may be larger than the 1 MB any other request may be.
    request.max_content_length = contact_imports.MAX_UPLOAD_BYTES
    csrf.protect()
    file = request.files.get("file")
    if file is None or not file.filename:
        return render_template("contacts/import.html", problems=[], name=None, missing=True), 400
    name = file.filename
    data = file.read()
    try:
        with db.transaction() as session:
            checked = contact_imports.check_upload(
                session,
                _vault(),
                data,
                name=name,
                default_region=current_app.config["ENGAGE_DEFAULT_REGION"],
                user=_signed_in_user(session),
                now=db.now(),
            )
            upload_id = checked.id
    except contact_imports.NotTextError:
        return render_template("contacts/import.html", problems=[], name=name, not_text=True), 400
    except ContactImportError as exc:
        return (
            render_template(
                "contacts/import.html",
                problems=exc.rows[:BAD_ROWS_SHOWN],
                more=max(len(exc.rows) - BAD_ROWS_SHOWN, 0),
                bad_count=len(exc.rows),
                name=name,
            ),
            400,
        )
    log.info("user %s: contacts file checked (upload %s)", current_user.id, upload_id)
    return redirect(url_for("contacts.upload_status", upload_id=upload_id))


@bp.get("/import/<int:upload_id>")
@role_required(*STAFF)
def upload_status(upload_id: int) -> str:
    status = contact_imports.import_status(db.session(), upload_id, read_progress(upload_id))
    if status is None:
        abort(404)
    upload = db.session().get_one(ContactImport, upload_id)
    return render_template(
        "contacts/import_status.html",
        status=status,
        upload=upload,
        is_large=contact_imports.is_large(upload),
        in_request_rows=contact_imports.IN_REQUEST_ROWS,
    )


@bp.post("/import/<int:upload_id>")
@role_required(*STAFF)
def confirm_upload(upload_id: int) -> Response:
    with db.transaction() as session:
        if not contact_imports.confirm_upload(session, upload_id):
            upload = session.get(ContactImport, upload_id)
            if upload is None:
                abort(404)
            return redirect(url_for("contacts.upload_status", upload_id=upload_id))
        upload = session.get_one(ContactImport, upload_id)
        is_large = contact_imports.is_large(upload)
    if is_large:
        enqueue_contact_import(upload_id)
    else:
        run_contact_import(upload_id)
    log.info("user %s: contacts import %s confirmed", current_user.id, upload_id)
    return redirect(url_for("contacts.upload_status", upload_id=upload_id))


@bp.get("/import/<int:upload_id>/status.json")
@role_required(*STAFF, is_download=True)
def upload_status_json(upload_id: int) -> dict[str, object]:
    status = contact_imports.import_status(db.session(), upload_id, read_progress(upload_id))
    if status is None:
        abort(404)
    return status.as_json()


@bp.app_template_filter("short_datetime")
def short_datetime(moment: datetime | None) -> str:
    """A UTC time as the page's language writes it (4 dic 2026, 14:05)."""
    if moment is None:
        return ""
    translations()  # sets the page's language
    day = babel_dates.format_date(moment.astimezone(UTC), format="medium", locale=g.page_language)
    hour = babel_dates.format_time(moment, format="short", tzinfo=UTC, locale=g.page_language)
    return f"{day}, {hour}"
