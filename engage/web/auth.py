"""Sign-in (a password, then a TOTP code for staff and admins), sign-out, and the one-time
links that set a password."""

from __future__ import annotations

import hmac
import logging
from datetime import timedelta
from urllib.parse import urlsplit

from cryptography.fernet import InvalidToken
from flask import Blueprint, current_app, redirect, render_template, request, session, url_for
from flask_login import current_user, login_user, logout_user
from flask_wtf import FlaskForm
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response
from wtforms import EmailField, Field, PasswordField, StringField
from wtforms.validators import DataRequired, ValidationError

from engage import db
from engage.models import User
from engage.privacy import Vault
from engage.services.accounts import (
    MIN_PASSWORD_LENGTH,
    PASSWORD_LINK_LIFETIME,
    AccountError,
    PasswordLinkError,
    SignIn,
    complete_sign_in,
    find_password_link,
    is_possible_email,
    sign_in,
    use_password_link,
)
from engage.services.second_factor import (
    check_code,
    enrol,
    has_second_factor,
    needs_second_step,
    new_secret,
    provisioning_uri,
)
from engage.services.sessions import (
    end_session,
    end_session_by_id,
    find_session,
    is_session_live,
    should_touch,
    touch_session,
    user_stamp,
)
from engage.web.i18n import gettext as _

log = logging.getLogger(__name__)

bp = Blueprint("auth", __name__)

# The key of the server-side session's token in Flask's (signed) session cookie.
SERVER_SESSION_KEY = "engage_session"
# A sign-in whose password was right and whose second step (a code, or setting up the app) is
# still to come: who, when, and a fingerprint of the password and role then. Nothing else
# works for that person until the second step passes; a password change ends it too.
PENDING_KEY = "engage_pending"
PENDING_LIMIT = timedelta(minutes=15)
# The secret being set up, encrypted with the vault: the cookie is signed, not encrypted.
ENROL_KEY = "engage_enrol"


def _possible_email(_form: FlaskForm, field: Field) -> None:
    if not is_possible_email(field.data or ""):
        raise ValidationError("not an e-mail address")


class LoginForm(FlaskForm):
    email = EmailField(validators=[DataRequired(), _possible_email])
    password = PasswordField(validators=[DataRequired()])


class CodeForm(FlaskForm):
    code = StringField(validators=[DataRequired()])


class SetPasswordForm(FlaskForm):
    password = PasswordField(validators=[DataRequired()])
    confirm = PasswordField(validators=[DataRequired()])


def _safe_next(target: str | None) -> str:
    """Only a path on this site: never send a signed-in person to another host."""
    if target and target.startswith("/") and not target.startswith("//"):
        parts = urlsplit(target)
        if not parts.netloc and not parts.scheme:
            return target
    return url_for("results.index")


def _is_second_factor_required() -> bool:
    return bool(current_app.config["ENGAGE_REQUIRE_TOTP"])


def _vault() -> Vault:
    vault: Vault = current_app.extensions["engage.vault"]
    return vault


def _wait_message(result: SignIn) -> str:
    return _(
        "Too many failed attempts. Try again in %(seconds)s seconds.",
        seconds=int(result.retry_after) + 1,
    )


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
        user = result.user
        if user is not None and needs_second_step(user, is_required=_is_second_factor_required()):
            db_session.commit()
            session.clear()  # nothing from before the sign-in carries over (fixation)
            session[PENDING_KEY] = {
                "user": user.id,
                "stamp": user_stamp(user),
                "at": now.timestamp(),
                "next": _safe_next(request.args.get("next")),
            }
            log.info("user %s: password right, second step next", user.id)
            step = "auth.totp" if has_second_factor(user) else "auth.totp_setup"
            return redirect(url_for(step))
        token = complete_sign_in(db_session, user, now) if user is not None else None
        db_session.commit()  # failures count even though the answer is no
        if user is not None and token is not None:
            return _finish_sign_in(user, token, _safe_next(request.args.get("next")))
        if result.retry_after > 0:
            error = _wait_message(result)
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


def _finish_sign_in(user: User, token: str, next_url: str) -> Response:
    session.clear()  # nothing from before the sign-in carries over (fixation)
    login_user(user)
    session[SERVER_SESSION_KEY] = token
    log.info("user %s: signed in", user.id)
    return redirect(next_url)


def _pending_user(reader: Session) -> User | None:
    """The person between the two steps of a sign-in, while that sign-in is still good: not
    older than PENDING_LIMIT, the account active, its password and role unchanged."""
    pending = session.get(PENDING_KEY)
    user = None
    if isinstance(pending, dict) and isinstance(pending.get("user"), int):
        started = pending.get("at")
        is_recent = (
            isinstance(started, int | float)
            and 0 <= db.now().timestamp() - started <= PENDING_LIMIT.total_seconds()
        )
        user = reader.get(User, pending["user"]) if is_recent else None
        if user is not None and not (
            user.is_active and hmac.compare_digest(str(pending.get("stamp", "")), user_stamp(user))
        ):
            user = None
    if user is None:
        session.pop(PENDING_KEY, None)
        session.pop(ENROL_KEY, None)
    return user


def _pending_next() -> str:
    pending = session.get(PENDING_KEY)
    target = pending.get("next") if isinstance(pending, dict) else None
    return _safe_next(target if isinstance(target, str) else None)


def _code_error(result: SignIn) -> tuple[str, int]:
    if result.retry_after > 0:
        return _wait_message(result), 429
    return _("That code is not right. Enter the 6 digits your app shows now."), 401


@bp.route("/login/totp", methods=["GET", "POST"])
def totp() -> Response | tuple[str, int]:
    """The second step of a sign-in: the 6-digit code from the authenticator app."""
    pending = _pending_user(db.session())
    if pending is None:
        return redirect(url_for("auth.login"))
    if not has_second_factor(pending):
        return redirect(url_for("auth.totp_setup"))
    form = CodeForm()
    error = None
    status = 200
    if form.validate_on_submit():
        now = db.now()
        with db.transaction() as db_session:
            user = db_session.get(User, pending.id)
            assert user is not None  # accounts are never deleted
            result = check_code(
                db_session,
                user,
                form.code.data or "",
                request.remote_addr or "",
                vault=_vault(),
                now=now,
            )
            token = complete_sign_in(db_session, user, now) if result.user else None
        if token is not None:
            return _finish_sign_in(user, token, _pending_next())
        error, status = _code_error(result)
    elif request.method == "POST":
        error, status = _form_error(form)
    return render_template("totp.html", form=form, error=error), status


def _form_error(form: FlaskForm) -> tuple[str, int]:
    if "csrf_token" in form.errors:
        return _("The form expired. Please try again."), 400
    return _("Enter the 6-digit code your app shows."), 400


def _enrolment_secret() -> str:
    """The secret being set up in this browser (made on the first visit, kept until done)."""
    vault = _vault()
    sealed = session.get(ENROL_KEY)
    if isinstance(sealed, str):
        try:
            return vault.decrypt(sealed)
        except InvalidToken:
            pass
    secret = new_secret()
    session[ENROL_KEY] = vault.encrypt(secret)
    return secret


@bp.route("/login/totp/setup", methods=["GET", "POST"])
def totp_setup() -> Response | tuple[str, int]:
    """First sign-in of a staff or admin account where a second factor is required: add the
    account to an authenticator app, then prove it with a code."""
    pending = _pending_user(db.session())
    if pending is None:
        return redirect(url_for("auth.login"))
    if has_second_factor(pending):
        return redirect(url_for("auth.totp"))
    secret = _enrolment_secret()
    form = CodeForm()
    error = None
    status = 200
    if form.validate_on_submit():
        now = db.now()
        try:
            with db.transaction() as db_session:
                user = db_session.get(User, pending.id)
                assert user is not None  # accounts are never deleted
                result = enrol(
                    db_session,
                    user,
                    secret,
                    form.code.data or "",
                    request.remote_addr or "",
                    vault=_vault(),
                    now=now,
                )
                token = complete_sign_in(db_session, user, now) if result.user else None
        except AccountError:  # set up meanwhile, in another tab: its code is asked for
            return redirect(url_for("auth.totp"))
        if token is not None:
            log.info("user %s: second factor set up", user.id)
            return _finish_sign_in(user, token, _pending_next())
        error, status = _code_error(result)
    elif request.method == "POST":
        error, status = _form_error(form)
    issuer = current_app.config["ENGAGE_ORG_NAME"] or "Engage"
    return render_template(
        "totp_setup.html",
        form=form,
        error=error,
        secret=secret,
        secret_groups=[secret[i : i + 4] for i in range(0, len(secret), 4)],
        uri=provisioning_uri(secret, pending.email, issuer),
        email=pending.email,
    ), status


@bp.route("/set-password/<token>", methods=["GET", "POST"])
def set_password(token: str) -> str | tuple[str, int]:
    """A one-time link made by an admin: its holder chooses the account's password."""
    now = db.now()
    try:
        account = find_password_link(db.session(), token, now)
    except PasswordLinkError as exc:
        return _link_gone(exc)
    form = SetPasswordForm()
    error = None
    status = 200
    if form.validate_on_submit():
        if form.password.data != form.confirm.data:
            error, status = _("The two passwords are not the same."), 400
        else:
            try:
                with db.transaction() as db_session:
                    user = use_password_link(db_session, token, form.password.data or "", now=now)
            except PasswordLinkError as exc:  # used meanwhile, in another tab
                return _link_gone(exc)
            except AccountError:
                error, status = _password_rule(), 400
            else:
                log.info("user %s: password set by link, sessions ended", user.id)
                return render_template("password_set.html", email=user.email)
    elif request.method == "POST":
        if "csrf_token" in form.errors:
            error, status = _("The form expired. Please try again."), 400
        else:
            error, status = _password_rule(), 400
    return render_template(
        "set_password.html",
        form=form,
        error=error,
        email=account.email,
        min_length=MIN_PASSWORD_LENGTH,
    ), status


def _password_rule() -> str:
    return _(
        "The password needs at least %(count)s characters, in both fields.",
        count=MIN_PASSWORD_LENGTH,
    )


def _link_gone(exc: PasswordLinkError) -> tuple[str, int]:
    hours = int(PASSWORD_LINK_LIFETIME.total_seconds() // 3600)
    page = render_template("password_link_gone.html", is_expired=exc.is_expired, hours=hours)
    return page, 410 if exc.is_expired else 404


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
