"""Blueprints: Twilio's webhooks, health, sign-in, results and the audit trail."""

from __future__ import annotations

from flask import Flask, Request
from flask.sessions import SecureCookieSessionInterface, SessionMixin
from flask_login import LoginManager
from flask_wtf.csrf import CSRFProtect

csrf = CSRFProtect()
login_manager = LoginManager()


class SessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, except for Twilio's webhooks, which carry no cookie.

    A webhook is the path every inbound message takes: it skips building the cookie signer.
    """

    def open_session(self, app: Flask, request: Request) -> SessionMixin | None:
        if request.path.startswith("/twilio/"):
            return self.make_null_session(app)
        return super().open_session(app, request)


def register_blueprints(app: Flask) -> None:
    from engage import db
    from engage.models import User
    from engage.web import admin, auth, health, i18n, results, twilio

    app.session_interface = SessionInterface()
    csrf.init_app(app)
    # Twilio signs its posts instead; it cannot send a CSRF token.
    csrf.exempt(twilio.bp)
    login_manager.init_app(app)
    login_manager.session_protection = "basic"

    @login_manager.user_loader
    def load_user(user_id: str) -> User | None:
        user = db.session().get(User, int(user_id)) if user_id.isdigit() else None
        return user if user is not None and user.is_active else None

    i18n.init_app(app)
    for blueprint in (health.bp, twilio.bp, auth.bp, results.bp, admin.bp):
        app.register_blueprint(blueprint)
