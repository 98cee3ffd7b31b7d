"""The staff inbox: threads that need a person, a contact's thread, replies, notes, assignment."""

from __future__ import annotations

import logging
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel import dates as babel_dates
from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user
from werkzeug.wrappers import Response

from engage import db
from engage.intake import strip_control_characters
from engage.jobs import REPLIES, dispatch_sends
from engage.privacy import Vault
from engage.services.canned_replies import canned_for, load_canned_replies, template_text
from engage.services.inbox import (
    HANDLED,
    MAX_NOTE,
    MAX_REPLY,
    MINE,
    OPEN,
    VIEWS,
    ContactNotFoundError,
    InboxError,
    add_note,
    assign_thread,
    inbox_page,
    mark_handled,
    staff_members,
    thread_view,
    write_reply,
)
from engage.survey.keywords import language_name
from engage.web.decorators import STAFF, role_required
from engage.web.i18n import gettext as _
from engage.web.i18n import translations

log = logging.getLogger(__name__)

bp = Blueprint("inbox", __name__, url_prefix="/staff/inbox")


def _vault() -> Vault:
    return current_app.extensions["engage.vault"]


def _locales() -> str:
    return str(current_app.config["ENGAGE_LOCALES_DIR"])


def _why(reason: str) -> str:
    """What staff read when something they asked cannot be done."""
    reasons = {
        "erased": _("This contact was erased: nothing can be sent to them or noted about them."),
        "opted_out": _(
            "This worker opted out: Engage sends them nothing until they write START or ALTA again."
        ),
        "no_address": _("Engage has no message from or to this contact to answer."),
        "no_template": _(
            "The worker last wrote on WhatsApp more than 24 hours ago (or the reply would go "
            "after the window closes). WhatsApp then allows only an approved template, and no "
            "reply template is set (ENGAGE_WHATSAPP_REPLY_TEMPLATE)."
        ),
        "template_only": _(
            "The worker last wrote on WhatsApp more than 24 hours ago (or the reply would go "
            "after the window closes): WhatsApp allows only the reply template now."
        ),
        "template_whatsapp_only": _("The reply template is for WhatsApp only."),
        "empty": _("Write something first."),
        "too_long": _("That is too long: at most %(num)s characters.", num=MAX_REPLY),
        "note_too_long": _("That is too long: at most %(num)s characters.", num=MAX_NOTE),
        "assignee": _("Threads can be assigned to active staff members only."),
    }
    return reasons.get(reason, reason)


@bp.app_template_filter("inbox_time")
def inbox_time(moment: datetime, zone: str | None = None) -> str:
    """A date and time as the page's language writes it: in UTC, or in the worker's zone."""
    translations()  # sets the page's language
    tz = ZoneInfo("UTC")
    if zone:
        try:
            tz = ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            zone = None
    local = moment.astimezone(tz)
    day = babel_dates.format_date(local, format="medium", locale=g.page_language)
    hour = babel_dates.format_time(local, format="short", locale=g.page_language)
    return f"{day} {hour} ({zone or 'UTC'})"


@bp.get("")
@role_required(*STAFF)
def index() -> str:
    view = request.args.get("show", OPEN)
    if view not in VIEWS:
        abort(400)
    page = request.args.get("page", 1, type=int) or 1
    inbox = inbox_page(db.session(), _vault(), view=view, user_id=current_user.id, page=page)
    return render_template(
        "inbox/index.html", inbox=inbox, views=(OPEN, MINE, HANDLED), language_name=language_name
    )


@bp.get("/<int:contact_id>")
@role_required(*STAFF)
def thread(contact_id: int) -> str | tuple[str, int]:
    return _thread_page(contact_id, before=request.args.get("before", type=int))


def _thread_page(
    contact_id: int,
    *,
    error: str | None = None,
    body: str = "",
    note: str = "",
    status: int = 200,
    before: int | None = None,
) -> tuple[str, int]:
    session = db.session()
    config = current_app.config
    try:
        view = thread_view(
            session,
            _vault(),
            contact_id,
            now=db.now(),
            quiet_hours=config["ENGAGE_QUIET_HOURS"],
            template_sid=config["ENGAGE_WHATSAPP_REPLY_TEMPLATE"],
            before=before,
        )
    except ContactNotFoundError:
        abort(404)
    page = render_template(
        "inbox/thread.html",
        thread=view,
        why=_why(view.plan.refusal) if view.plan.refusal else None,
        canned=canned_for(_locales(), view.language),
        canned_problems=load_canned_replies(_locales()).problems,
        template_words=template_text(_locales(), view.language),
        staff=staff_members(session),
        language_name=language_name,
        error=error,
        body=body,
        note=note,
        max_reply=MAX_REPLY,
    )
    return page, status


def _canned_text(choice: str) -> str:
    """The text of a canned reply chosen as `language:id`, or empty."""
    language, _sep, reply_id = choice.partition(":")
    canned = load_canned_replies(_locales()).languages.get(language)
    if canned is None:
        return ""
    return next((r.text for r in canned.replies if r.id == reply_id), "")


def _back(contact_id: int) -> Response:
    return redirect(url_for("inbox.thread", contact_id=contact_id), code=303)


@bp.post("/<int:contact_id>/reply")
@role_required(*STAFF)
def reply(contact_id: int) -> Response | tuple[str, int]:
    text = strip_control_characters(request.form.get("body", ""))
    if not text.strip() and request.form.get("canned"):
        # Without JavaScript a chosen canned reply is not copied into the box: it goes as it is.
        text = _canned_text(request.form["canned"])
    use_template = request.form.get("template") == "1"
    config = current_app.config
    now = db.now()
    try:
        with db.transaction() as session:
            written = write_reply(
                session,
                _vault(),
                contact_id,
                user_id=current_user.id,
                actor=current_user.email,
                text=text,
                use_template=use_template,
                now=now,
                quiet_hours=config["ENGAGE_QUIET_HOURS"],
                template_sid=config["ENGAGE_WHATSAPP_REPLY_TEMPLATE"],
                template_words=lambda language: template_text(_locales(), language),
            )
    except ContactNotFoundError:
        abort(404)
    except InboxError as exc:
        status = 400 if exc.reason in ("empty", "too_long") else 409
        return _thread_page(contact_id, error=_why(exc.reason), body=text, status=status)
    # After the commit: the reply sender wakes (a held reply waits for the clock's sweep).
    dispatch_sends(written.send_now, queue_name=REPLIES)
    if written.held_until is not None:
        flash(
            _(
                "Your reply waits until %(time)s, when the worker's quiet hours end.",
                time=inbox_time(written.held_until),
            )
        )
    elif written.is_template:
        flash(_("The reply template is on its way."))
    else:
        flash(_("Your reply is on its way."))
    return _back(contact_id)


@bp.post("/<int:contact_id>/note")
@role_required(*STAFF)
def note(contact_id: int) -> Response | tuple[str, int]:
    text = strip_control_characters(request.form.get("body", ""))
    try:
        with db.transaction() as session:
            add_note(
                session,
                _vault(),
                contact_id,
                user_id=current_user.id,
                actor=current_user.email,
                text=text,
                now=db.now(),
            )
    except ContactNotFoundError:
        abort(404)
    except InboxError as exc:
        reason = "note_too_long" if exc.reason == "too_long" else exc.reason
        status = 400 if exc.reason in ("empty", "too_long") else 409
        return _thread_page(contact_id, error=_why(reason), note=text, status=status)
    flash(_("Note added. Workers never see notes."))
    return _back(contact_id)


@bp.post("/<int:contact_id>/assign")
@role_required(*STAFF)
def assign(contact_id: int) -> Response | tuple[str, int]:
    choice = request.form.get("assignee", "")
    if choice == "me":
        assignee: int | None = current_user.id
    elif choice == "":
        assignee = None
    elif choice.isdigit():
        assignee = int(choice)
    else:
        abort(400)
    try:
        with db.transaction() as session:
            email = assign_thread(
                session,
                contact_id,
                assignee_id=assignee,
                user_id=current_user.id,
                actor=current_user.email,
                now=db.now(),
            )
    except ContactNotFoundError:
        abort(404)
    except InboxError as exc:
        return _thread_page(contact_id, error=_why(exc.reason), status=409)
    if email is None:
        flash(_("The thread is assigned to nobody now."))
    else:
        flash(_("The thread is assigned to %(email)s.", email=email))
    return _back(contact_id)


@bp.post("/<int:contact_id>/handled")
@role_required(*STAFF)
def handled(contact_id: int) -> Response:
    through = request.form.get("through", "")
    try:
        with db.transaction() as session:
            mark_handled(
                session,
                contact_id,
                through=int(through) if through.isdigit() else None,
                user_id=current_user.id,
                actor=current_user.email,
                now=db.now(),
            )
    except ContactNotFoundError:
        abort(404)
    flash(_("Marked handled. A new message that needs a person opens the thread again."))
    return _back(contact_id)
