"""Sign-in and sign-out."""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

from flask import Blueprint, redirect, render_template, request, session, url_for
from flask_login import current_user, login_user, logout_user
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response
from wtforms import EmailField, Field, PasswordField
from wtforms.validators import DataRequired, ValidationError

from engage import db
from engage.models import User
from engage.services.accounts import is_possible_email, sign_in
from engage.services.sessions import (
    end_session,
    end_session_by_id,
    find_session,
    is_session_live,
    should_touch,
    start_session,
    touch_session,
)
from engage.web.i18n import gettext as _

log = logging.getLogger(__name__)

bp = Blueprint("auth", __name__)

# The key of the server-side session's token in Flask's (signed) session cookie.
SERVER_SESSION_KEY = "engage_session"


def _possible_email(_form: FlaskForm, field: Field) -> None:
    if not is_possible_email(field.data or ""):
        raise ValidationError("not an e-mail address")


class LoginForm(FlaskForm):
    email = EmailField(validators=[DataRequired(), _possible_email])
    password = PasswordField(validators=[DataRequired()])


def _safe_next(target: str | None) -> str:
    """Only a path on this site: never send a signed-in person to another host."""
    if target and target.startswith("/") and not target.startswith("//"):
        parts = urlsplit(target)
        if not parts.netloc and not parts.scheme:
            return target
    return url_for("results.index")


@bp.route("/login", methods=["GET", "POST"])
def login() -> Response | tuple[str, int]:
    form = LoginForm()
    error = None
    status = 200
    if form.validate_on_submit():
        db_session = db.session()
        now = db.now()
        result = sign_in(
            db_session,
            form.email.data or "",
            form.password.data or "",
            request.remote_addr or "",
            now=now,
        )
        token = start_session(db_session, result.user, now) if result.user is not None else None
        db_session.commit()  # failures count even though the answer is no
        if result.user is not None and token is not None:
            session.clear()  # nothing from before the sign-in carries over (fixation)
            login_user(result.user)
            session[SERVER_SESSION_KEY] = token
            log.info("user %s: signed in", result.user.id)
            return redirect(_safe_next(request.args.get("next")))
        if result.retry_after > 0:
            error = _(
                "Too many failed attempts. Try again in %(seconds)s seconds.",
                seconds=int(result.retry_after) + 1,
            )
            status = 429
        else:
            error = _("Wrong e-mail or password.")
            status = 401
    elif request.method == "POST" and "csrf_token" in form.errors:
        error = _("The form expired. Please try again.")
        status = 400
    elif request.method == "POST":
        # An empty field, or an e-mail no account can have (a NUL, say): the same answer as
        # a wrong one, and nothing sent to the database.
        error = _("Wrong e-mail or password.")
        status = 401
    return render_template("login.html", form=form, error=error), status


@bp.post("/logout")
def logout() -> Response:
    if current_user.is_authenticated:
        log.info("user %s: signed out", current_user.get_id())
    token = session.get(SERVER_SESSION_KEY)
    if isinstance(token, str):
        with db.transaction() as db_session:
            end_session(db_session, token, db.now())
    logout_user()
    session.clear()
    return redirect(url_for("auth.login"))


def load_user(user_id: str) -> User | None:
    """Flask-Login's loader: the user of a live server-side session, else nobody.

    The cookie alone opens nothing: its token must name a session that has not ended.
    Reading is done in the request's session; the rare writes (activity once a minute, an
    ending) in a short transaction of their own.
    """
    token = session.get(SERVER_SESSION_KEY)
    if not isinstance(token, str):
        return None
    reader = db.session()
    row = find_session(reader, token)
    if row is None or str(row.user_id) != user_id:
        return None
    user = reader.get(User, row.user_id)
    now = db.now()
    if not is_session_live(row, user, now):
        with db.transaction() as db_session:
            end_session_by_id(db_session, row.id, now)
        log.info("user %s: session ended (idle, too old, or account changed)", row.user_id)
        return None
    if should_touch(row, now):
        with db.transaction() as db_session:
            touch_session(db_session, row.id, now)
        # End the read begun above: on SQLite a transaction whose snapshot predates that
        # write could not write itself (the view's audit line) afterwards.
        reader.commit()
    return user
