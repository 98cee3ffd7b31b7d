"""Sign-in and sign-out."""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

from flask import Blueprint, Response, redirect, render_template, request, url_for
from flask_login import current_user, login_user, logout_user
from flask_wtf import FlaskForm
from wtforms import EmailField, Field, PasswordField
from wtforms.validators import DataRequired, ValidationError

from engage import db
from engage.services.accounts import is_possible_email, sign_in
from engage.web.i18n import gettext as _

log = logging.getLogger(__name__)

bp = Blueprint("auth", __name__)


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
def login() -> Response | str | tuple[str, int]:
    form = LoginForm()
    error = None
    status = 200
    if form.validate_on_submit():
        session = db.session()
        result = sign_in(
            session, form.email.data or "", form.password.data or "", request.remote_addr or ""
        )
        session.commit()  # failures count even though the answer is no
        if result.user is not None:
            login_user(result.user)
        if result.user is not None:
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
    logout_user()
    return redirect(url_for("auth.login"))
