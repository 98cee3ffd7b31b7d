"""Admin pages: the accounts, and the audit trail."""

from __future__ import annotations

import logging

from flask import Blueprint, abort, current_app, render_template, request, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy.orm import Session
from wtforms import EmailField, HiddenField, IntegerField, StringField
from wtforms.validators import Optional

from engage import db
from engage.models import User
from engage.models.users import ROLES
from engage.services.accounts import (
    MIN_PASSWORD_LENGTH,
    PASSWORD_LINK_LIFETIME,
    AccountError,
    audit_trail,
    check_not_own_lockout,
    deactivate_user,
    invite_user,
    list_accounts,
    reactivate_user,
    reset_password,
    set_role,
)
from engage.services.second_factor import reset_second_factor
from engage.web.decorators import ADMIN, role_required
from engage.web.i18n import gettext as _

log = logging.getLogger(__name__)

bp = Blueprint("admin", __name__, url_prefix="/admin")

ACTIONS = ("create", "reset", "role", "deactivate", "reactivate", "reset_totp")


class AccountForm(FlaskForm):
    """Every form of the accounts page: `action` says which, the other fields as it needs."""

    action = HiddenField()
    user = IntegerField(validators=[Optional()])
    email = EmailField(validators=[Optional()])
    role = StringField(validators=[Optional()])  # the service names the roles it takes


@bp.get("/audit")
@role_required(*ADMIN)
def audit() -> str:
    return render_template("audit.html", entries=audit_trail(db.session()))


@bp.get("/users")
@role_required(*ADMIN)
def users() -> str:
    return _users_page()


@bp.post("/users")
@role_required(*ADMIN)
def change_users() -> tuple[str, int]:
    """One change to one account; a new set-password link is shown here, once, and nowhere
    else (only its hash is kept)."""
    form = AccountForm()
    action = form.action.data
    if not form.validate_on_submit() or action not in ACTIONS:
        if "csrf_token" in form.errors:
            return _users_page(error=_("The form expired. Please try again.")), 400
        abort(400)
    now = db.now()
    link: dict[str, str] | None = None
    notice = ""
    try:
        with db.transaction() as session:
            admin = session.get(User, current_user.id)
            assert admin is not None
            actor = admin.email
            if action == "create":
                account, token = invite_user(
                    session, form.email.data or "", form.role.data or "", actor=actor, now=now
                )
                link = _link(account, token)
                notice = _("Account created for %(email)s.", email=account.email)
            else:
                account = _account(session, form.user.data)
                if action == "reset":
                    link = _link(account, reset_password(session, account, actor=actor, now=now))
                    notice = _(
                        "The password of %(email)s no longer works, and its sessions ended.",
                        email=account.email,
                    )
                elif action == "role":
                    role = form.role.data or ""
                    check_not_own_lockout(admin, account, role=role)
                    if role != account.role:
                        set_role(session, account, role, actor=actor, now=now)
                    notice = _(
                        "%(email)s now has the role %(role)s.",
                        email=account.email,
                        role=_role_name(account.role),
                    )
                elif action == "deactivate":
                    check_not_own_lockout(admin, account, deactivate=True)
                    deactivate_user(session, account, actor=actor, now=now)
                    notice = _("%(email)s can no longer sign in.", email=account.email)
                elif action == "reactivate":
                    reactivate_user(session, account, actor=actor)
                    notice = _("%(email)s can sign in again.", email=account.email)
                else:
                    reset_second_factor(session, account, actor=actor)
                    notice = _(
                        "%(email)s will set up the authenticator app again at the next sign-in.",
                        email=account.email,
                    )
    except AccountError as exc:
        return _users_page(error=_account_error(exc)), 400
    log.info("user %s: account %s changed (%s)", current_user.get_id(), account.id, action)
    # The request's reading session began before this change: end it, so the list shows it.
    db.session().commit()
    return _users_page(notice=notice, link=link), 200


def _account(session: Session, user_id: int | None) -> User:
    account = session.get(User, user_id) if user_id is not None else None
    if account is None:
        abort(404)
    return account


def _link(account: User, token: str) -> dict[str, str]:
    """The link to hand over: on the public URL when one is set (behind a proxy, the request's
    own host may be an internal one)."""
    path = url_for("auth.set_password", token=token)
    base = current_app.config["ENGAGE_PUBLIC_URL"] or request.host_url.rstrip("/")
    expires_at = account.password_token_expires_at
    return {
        "email": account.email,
        "url": f"{base}{path}",
        "expires": expires_at.strftime("%Y-%m-%d %H:%M UTC") if expires_at else "",
    }


def _role_name(role: str) -> str:
    return {"admin": _("admin"), "staff": _("staff"), "policy": _("policy")}.get(role, role)


def _account_error(exc: AccountError) -> str:
    """The rule an account change broke, in the page's language."""
    messages = {
        "email": _("That is not an e-mail address."),
        "exists": _("That e-mail address already has an account."),
        "role": _("Choose a role: admin, staff or policy."),
        "self": _(
            "You cannot deactivate your own account or take away your own admin role: "
            "ask another admin."
        ),
        "inactive": _("The account is deactivated: reactivate it first."),
    }
    return messages.get(exc.reason, _("That change could not be made."))


def _users_page(*, notice: str = "", error: str = "", link: dict[str, str] | None = None) -> str:
    return render_template(
        "users.html",
        accounts=list_accounts(db.session()),
        roles=ROLES,
        role_names={role: _role_name(role) for role in ROLES},
        notice=notice,
        error=error,
        link=link,
        link_hours=int(PASSWORD_LINK_LIFETIME.total_seconds() // 3600),
        min_length=MIN_PASSWORD_LENGTH,
        me=int(current_user.get_id()),
    )
