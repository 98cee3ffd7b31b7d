"""Blueprints: Twilio's webhooks, health, sign-in, results and the audit trail."""

from __future__ import annotations

from flask import Flask, Request, Response, request
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from flask_login import LoginManager
from flask_wtf.csrf import CSRFProtect

csrf = CSRFProtect()
login_manager = LoginManager()

# Scripts and styles only from this app (static/), never inline; no framing; forms post here.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "form-action 'self'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}


class SessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, except for Twilio's webhooks, which carry no cookie.

    A webhook is the path every inbound message takes: it skips building the cookie signer.
    """

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        if request.path.startswith("/twilio/"):
            return self.make_null_session(app)
        return super().open_session(app, request)


def set_security_headers(response: Response) -> Response:
    """Every answer: the headers above; and no-store, since any page may hold worker data.

    Only the app's own static files (CSS, JS) may be kept by a browser or a proxy: results
    pages, downloads, the audit trail and the sign-in page must not linger in a shared cache
    or on a shared computer.
    """
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    if request.endpoint != "static":
        response.headers["Cache-Control"] = "no-store"
    return response


def register_blueprints(app: Flask) -> None:
    from engage.web import admin, auth, health, i18n, results, twilio

    app.session_interface = SessionInterface()
    csrf.init_app(app)
    # Twilio signs its posts instead; it cannot send a CSRF token.
    csrf.exempt(twilio.bp)
    login_manager.init_app(app)
    login_manager.session_protection = "basic"

    login_manager.user_loader(auth.load_user)

    i18n.init_app(app)
    app.after_request(set_security_headers)
    for blueprint in (health.bp, twilio.bp, auth.bp, results.bp, admin.bp):
        app.register_blueprint(blueprint)
