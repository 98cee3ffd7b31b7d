"""Blueprints: Twilio's webhooks, health, sign-in, the staff pages, results and admin pages."""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import IO, Any

from flask import Flask, Request, Response, current_app, request
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from flask_login import LoginManager, current_user
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


class PrivateUploadRequest(Request):
    """Flask's request, with uploaded files kept in memory, never in a temporary file: a
    contacts file holds phone numbers. Uploads are small (MAX_CONTENT_LENGTH, and at most
    services/contact_imports.MAX_UPLOAD_BYTES for a contacts file)."""

    def _get_file_stream(
        self,
        total_content_length: int | None,
        content_type: str | None,
        filename: str | None = None,
        content_length: int | None = None,
    ) -> IO[bytes]:
        return io.BytesIO()


CACHEABLE_ENDPOINTS = ("static", "voice.media")


def set_security_headers(response: Response) -> Response:
    """Every answer: the headers above; and no-store, since any page may hold worker data.

    Only the app's own static files (CSS, JS) and the recorded prompts Twilio plays (the
    same for every caller, named by their content) may be kept by a browser or a proxy:
    results pages, downloads, the audit trail and the sign-in page must not linger in a
    shared cache or on a shared computer.
    """
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    if request.endpoint not in CACHEABLE_ENDPOINTS:
        response.headers["Cache-Control"] = "no-store"
    return response


@dataclass(frozen=True)
class NavItem:
    endpoint: str
    label: str  # a msgid of the `web` catalog, translated in base.html
    roles: tuple[str, ...]

    # Pages whose endpoints start with this belong to the item (shown as the current one).
    section: str


def _(message: str) -> str:
    """Marks a label for the `web` catalog; base.html translates it for the page."""
    return message


STAFF_ROLES = ("admin", "staff")
# The navigation on every page, in order; an item shows for its roles once its page exists.
NAVIGATION = (
    NavItem("staff.dashboard", _("Today"), STAFF_ROLES, "staff."),
    NavItem("inbox.index", _("Inbox"), STAFF_ROLES, "inbox."),
    NavItem("surveys.index", _("Surveys"), STAFF_ROLES, "surveys."),
    NavItem("simulator.page", _("Simulator"), STAFF_ROLES, "simulator."),
    NavItem("contacts.index", _("Contacts"), STAFF_ROLES, "contacts."),
    NavItem("campaigns.index", _("Campaigns"), STAFF_ROLES, "campaigns."),
    NavItem("results.index", _("Results"), (*STAFF_ROLES, "policy"), "results."),
    NavItem("admin.users", _("Accounts"), ("admin",), "admin.user"),
    NavItem("admin.audit", _("Audit trail"), ("admin",), "admin.audit"),
)


def navigation() -> dict[str, Any]:
    """The signed-in person's navigation (with the current item), and every endpoint a
    template may link to."""
    endpoints = set(current_app.view_functions)
    items: list[tuple[NavItem, bool]] = []
    if current_user.is_authenticated:
        here = request.endpoint or ""
        items = [
            (item, here.startswith(item.section))
            for item in NAVIGATION
            if current_user.role in item.roles and item.endpoint in endpoints
        ]
    return {"nav_items": items, "nav_endpoints": endpoints, "nav_badges": _badges(items)}


def _badges(items: list[tuple[NavItem, bool]]) -> dict[str, int]:
    """Counts beside navigation items: the urgent threads waiting in the inbox."""
    if not any(item.endpoint == "inbox.index" for item, _current in items):
        return {}
    from engage import db
    from engage.services.inbox import count_urgent_open_threads

    return {"inbox.index": count_urgent_open_threads(db.session())}


def register_blueprints(app: Flask) -> None:
    from engage.web import (
        admin,
        auth,
        campaigns,
        contacts,
        health,
        i18n,
        inbox,
        results,
        simulator,
        staff,
        survey_files,
        surveys,
        twilio,
        voice,
    )

    app.session_interface = SessionInterface()
    app.request_class = PrivateUploadRequest
    csrf.init_app(app)
    # Twilio signs its posts instead; it cannot send a CSRF token.
    csrf.exempt(twilio.bp)
    csrf.exempt(voice.bp)
    login_manager.init_app(app)
    login_manager.session_protection = "basic"

    login_manager.user_loader(auth.load_user)

    i18n.init_app(app)
    app.after_request(set_security_headers)
    app.context_processor(navigation)
    # First of the /staff/surveys blueprints: its paths (<id>.yaml, import) are the more specific.
    app.register_blueprint(survey_files.bp)
    for blueprint in (
        health.bp,
        twilio.bp,
        voice.bp,
        auth.bp,
        staff.bp,
        results.bp,
        admin.bp,
        surveys.bp,
        simulator.bp,
        inbox.bp,
        contacts.bp,
        campaigns.bp,
    ):
        app.register_blueprint(blueprint)
