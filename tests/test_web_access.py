"""Sign-in, roles over every route, CSRF, slowed guessing, and the audit trail."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from engage import db
from engage.models import AuditEntry
from tests.conftest import WEB_PASSWORD as PASSWORD

SURVEY = "working-conditions"


def csrf_token(client, path="/login") -> str:
    page = client.get(path).get_data(as_text=True)
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def sign_in(client, role: str, password: str = PASSWORD):
    token = csrf_token(client)
    return client.post(
        "/login",
        data={"email": f"{role}@example.org", "password": password, "csrf_token": token},
        environ_base={"REMOTE_ADDR": "10.0.0.1"},
    )


ROUTES = [
    # (path, is_download, roles allowed)
    ("/results", False, {"admin", "staff", "policy"}),
    (f"/results/{SURVEY}", False, {"admin", "staff", "policy"}),
    (f"/results/{SURVEY}?by=state", False, {"admin", "staff", "policy"}),
    (f"/results/{SURVEY}/export.csv", True, {"admin", "staff", "policy"}),
    (f"/results/{SURVEY}/export.xlsx?by=state", True, {"admin", "staff", "policy"}),
    (f"/results/{SURVEY}/export.json?by=state&by=crop", True, {"admin", "staff", "policy"}),
    (f"/results/{SURVEY}/responses.csv", True, {"admin", "staff"}),
    ("/admin/audit", False, {"admin"}),
    ("/admin/users", False, {"admin"}),
    ("/staff", False, {"admin", "staff"}),
    (f"/staff/surveys/{SURVEY}.yaml", True, {"admin", "staff"}),
    ("/staff/surveys/import", False, {"admin", "staff"}),
    (f"/staff/surveys/{SURVEY}/translations", False, {"admin", "staff"}),
    (f"/staff/surveys/{SURVEY}/translations.po?lang=ht", True, {"admin", "staff"}),
    (f"/staff/surveys/{SURVEY}/translations.xlsx", True, {"admin", "staff"}),
    ("/staff/surveys", False, {"admin", "staff"}),
    ("/staff/surveys/new", False, {"admin", "staff"}),
    (f"/staff/surveys/{SURVEY}", False, {"admin", "staff"}),
    (f"/staff/surveys/{SURVEY}/edit", False, {"admin", "staff"}),  # a file survey: read-only
    ("/staff/simulator", False, {"admin", "staff"}),
    ("/staff/inbox", False, {"admin", "staff"}),
    ("/staff/inbox?show=mine", False, {"admin", "staff"}),
    ("/staff/inbox?show=handled", False, {"admin", "staff"}),
    ("/staff/inbox/1", False, {"admin", "staff"}),  # the contact the matrix's worker makes
    ("/staff/contacts", False, {"admin", "staff"}),
    ("/staff/contacts?key=state&value=FL&channel=sms&opted_out=no", False, {"admin", "staff"}),
    ("/staff/contacts/import", False, {"admin", "staff"}),
    ("/staff/campaigns", False, {"admin", "staff"}),
    ("/staff/campaigns/new", False, {"admin", "staff"}),
    ("/staff/campaigns/1", False, {"admin", "staff"}),
    ("/staff/campaigns/1/progress.json", True, {"admin", "staff"}),
]


# POSTs a page's script makes, answered with JSON: (path, a body it accepts, roles allowed).
JSON_POSTS = [
    ("/staff/simulator/messages", {"session": "matrix", "text": "hola"}, {"admin", "staff"}),
    ("/staff/simulator/call", {"session": "matrix", "action": "start"}, {"admin", "staff"}),
]


def a_worker_writes(app) -> None:
    """Contact 1, with a message that waits for staff: its thread is a page of the matrix."""
    from engage.privacy import parse_sender
    from engage.services.conversations import handle_inbound, settings_from

    with app.app_context(), db.engine().begin() as connection:
        handle_inbound(
            connection,
            settings_from(app.config, app.extensions["engage.vault"]),
            sender=parse_sender("+15550109876"),
            to="+15550000000",
            body="me quitaron el pasaporte",
        )


def add_campaign(app) -> None:
    """Campaign 1, for the routes that show one."""
    from engage.models import Campaign
    from engage.services.surveys import DatabaseCatalog

    with app.app_context(), db.transaction() as session:
        survey = next(s for s in DatabaseCatalog(session).active() if s.id == SURVEY)
        session.add(Campaign(survey_id=SURVEY, version=survey.version, channel="sms"))


@pytest.mark.parametrize("role", [None, "policy", "staff", "admin"])
def test_role_matrix_over_every_route(web_app, role):
    a_worker_writes(web_app)
    add_campaign(web_app)
    client = web_app.test_client()
    if role:
        assert sign_in(client, role).status_code == 302
    for path, is_download, allowed in ROUTES:
        response = client.get(path)
        if role is None:
            expected = 401 if is_download else 302
            assert response.status_code == expected, path
            if not is_download:
                assert response.headers["Location"].startswith("/login?next=")
        elif role in allowed:
            assert response.status_code == 200, (path, role)
        else:
            assert response.status_code == 403, (path, role)


@pytest.mark.parametrize("role", [None, "policy", "staff", "admin"])
def test_role_matrix_over_the_json_posts(web_app, role):
    client = web_app.test_client()
    if role:
        assert sign_in(client, role).status_code == 302
    page = client.get("/results" if role else "/login").get_data(as_text=True)
    token = re.search(r'<meta name="csrf-token" content="([^"]+)"', page).group(1)
    for path, body, allowed in JSON_POSTS:
        response = client.post(path, json=body, headers={"X-CSRFToken": token})
        if role is None:
            assert response.status_code == 401, path
        elif role in allowed:
            assert response.status_code == 200, (path, role)
        else:
            assert response.status_code == 403, (path, role)


def test_every_route_is_in_the_matrix(web_app):
    rules = {r.rule for r in web_app.url_map.iter_rules() if "GET" in r.methods}
    covered = {
        "/results",
        "/results/<survey_id>",
        "/results/<survey_id>/export.<fmt>",
        "/results/<survey_id>/responses.csv",
        "/admin/audit",
        "/admin/users",
        "/staff",
        "/staff/surveys/<survey_id>.yaml",
        "/staff/surveys/import",
        "/staff/surveys/<survey_id>/translations",
        "/staff/surveys/<survey_id>/translations.<fmt>",
        "/staff/surveys",
        "/staff/surveys/new",
        "/staff/surveys/<survey_id>",
        "/staff/surveys/<survey_id>/edit",
        "/staff/simulator",
        "/staff/inbox",
        "/staff/inbox/<int:contact_id>",
        "/staff/contacts",
        "/staff/contacts/import",
        # With a contact or an upload to show: tests/test_contact_pages.py, role by role.
        "/staff/contacts/<int:contact_id>",
        "/staff/contacts/import/<int:upload_id>",
        "/staff/contacts/import/<int:upload_id>/status.json",
        "/staff/campaigns",
        "/staff/campaigns/new",
        "/staff/campaigns/<int:campaign_id>",
        "/staff/campaigns/<int:campaign_id>/progress.json",
    }
    public = {"/", "/login", "/healthz", "/static/<path:filename>"}
    # The second step of a sign-in, and a set-password link: for people not yet signed in
    # (tests/test_accounts_page.py).
    public |= {"/login/totp", "/login/totp/setup", "/set-password/<token>"}
    # Recorded prompts, for Twilio to play: only published ones (tests/test_voice_surveys.py).
    public |= {"/media/<name>"}
    assert rules == covered | public


@pytest.mark.parametrize(
    ("role", "lands_on"),
    [(None, "/login"), ("policy", "/results"), ("staff", "/staff"), ("admin", "/staff")],
)
def test_home_sends_each_person_where_they_work(web_app, role, lands_on):
    client = web_app.test_client()
    if role:
        sign_in(client, role)
    response = client.get("/")
    assert response.status_code == 302
    assert response.headers["Location"] == lands_on


@pytest.mark.parametrize(
    ("role", "shown", "not_shown"),
    [
        ("policy", ["/results"], ["/staff", "/staff/inbox", "/admin/audit"]),
        ("staff", ["/staff", "/staff/inbox", "/results"], ["/admin/audit"]),
        ("admin", ["/staff", "/staff/inbox", "/results", "/admin/audit"], []),
    ],
)
def test_navigation_shows_each_role_its_pages_only(web_app, role, shown, not_shown):
    client = web_app.test_client()
    sign_in(client, role)
    page = client.get("/results").get_data(as_text=True)
    nav = page[page.index("<nav") : page.index("</nav>")]
    links = set(re.findall(r'<a href="([^"?]+)"', nav))
    assert set(shown) <= links
    assert not set(not_shown) & links
    assert "Sign out" in nav or "Cerrar sesión" in nav


def test_unknown_survey_is_404_and_a_bad_breakdown_400(web_app):
    client = web_app.test_client()
    sign_in(client, "policy")
    assert client.get("/results/no-such-survey").status_code == 404
    assert client.get("/results/no-such-survey/export.csv").status_code == 404
    assert client.get(f"/results/{SURVEY}/export.csv?by=employer").status_code == 400
    assert client.get(f"/results/{SURVEY}?by=employer").status_code == 400
    assert client.get(f"/results/{SURVEY}/export.pdf").status_code == 404


def test_wrong_password_is_refused_and_repeated_failures_are_slowed(web_app):
    client = web_app.test_client()
    for _ in range(3):
        assert sign_in(client, "policy", "wrong password!").status_code == 401
    # After three failures each try waits longer (1 s, 2 s, 4 s, … up to 5 minutes).
    slowed = sign_in(client, "policy", PASSWORD)
    assert slowed.status_code == 429  # even the right password waits
    assert "Demasiados intentos fallidos" in slowed.get_data(as_text=True)


def test_a_stranger_elsewhere_cannot_slow_the_owner(web_app):
    stranger = web_app.test_client()
    for _ in range(6):
        token = csrf_token(stranger)
        stranger.post(
            "/login",
            data={"email": "policy@example.org", "password": "guess guess", "csrf_token": token},
            environ_base={"REMOTE_ADDR": "203.0.113.9"},
        )
    owner = web_app.test_client()
    assert sign_in(owner, "policy").status_code == 302  # from 10.0.0.1: not slowed


def test_the_wait_ends(web_app):
    client = web_app.test_client()
    for _ in range(5):
        sign_in(client, "policy", "wrong password!")
    assert sign_in(client, "policy").status_code == 429
    from engage.models import SignInFailure

    with web_app.app_context(), db.transaction() as session:
        for row in session.scalars(select(SignInFailure)):
            row.last_failure_at -= timedelta(minutes=10)
    assert sign_in(client, "policy").status_code == 302


def test_forms_need_their_csrf_token(web_app):
    client = web_app.test_client()
    response = client.post("/login", data={"email": "policy@example.org", "password": PASSWORD})
    assert response.status_code == 400
    sign_in(client, "policy")
    assert client.post("/logout").status_code == 400  # no token: still signed in
    assert client.get("/results").status_code == 200
    token = csrf_token(client, "/results")
    assert client.post("/logout", data={"csrf_token": token}).status_code == 302
    assert client.get("/results").status_code == 302


def test_next_never_leaves_the_site(web_app):
    client = web_app.test_client()
    token = csrf_token(client)
    response = client.post(
        "/login?next=//evil.example/phish",
        data={"email": "policy@example.org", "password": PASSWORD, "csrf_token": token},
    )
    assert response.headers["Location"] == "/results"


def test_downloads_are_audited_and_admins_can_list_them(web_app):
    client = web_app.test_client()
    sign_in(client, "policy")
    client.get(f"/results/{SURVEY}/export.csv?by=state")
    client.get(f"/results/{SURVEY}/export.json")
    with web_app.app_context():
        entries = (
            db.session()
            .scalars(
                select(AuditEntry).where(AuditEntry.action == "download").order_by(AuditEntry.id)
            )
            .all()
        )
    assert [
        (e.actor, e.survey_id, e.parameters["format"], e.parameters["by"]) for e in entries
    ] == [
        ("policy@example.org", SURVEY, "csv", "state"),
        ("policy@example.org", SURVEY, "json", ""),
    ]
    admin = web_app.test_client()
    sign_in(admin, "admin")
    page = admin.get("/admin/audit").get_data(as_text=True)
    assert page.count("<td>policy@example.org</td>") == 2 and "by=state" in page


def test_pages_speak_spanish_by_default_and_english_on_request(web_app):
    client = web_app.test_client()
    assert "Iniciar sesión" in client.get("/login").get_data(as_text=True)
    assert "Sign in" in client.get("/login?lang=en").get_data(as_text=True)
    assert "Sign in" in client.get("/login").get_data(as_text=True)  # remembered
    english = web_app.test_client()
    page = english.get("/login", headers={"Accept-Language": "en-US,en;q=0.9"})
    assert "Sign in" in page.get_data(as_text=True)


def test_users_create_reads_the_password_from_stdin_never_an_argument(app):
    from click.testing import CliRunner
    from flask.cli import ScriptInfo

    from engage.cli import main

    runner = CliRunner()
    result = runner.invoke(
        main,
        ["users", "create", "ana@example.org", "--role", "policy"],
        input=PASSWORD + "\n",
        obj=ScriptInfo(create_app=lambda: app),
    )
    assert result.exit_code == 0, result.output
    assert "ana@example.org (policy)" in result.output
    short = runner.invoke(
        main,
        ["users", "create", "bo@example.org", "--role", "staff"],
        input="short\n",
        obj=ScriptInfo(create_app=lambda: app),
    )
    assert short.exit_code == 1 and "at least 12 characters" in short.output
    from engage.models import User

    with app.app_context():
        stored = db.session().scalar(select(User.password_hash))
    assert stored.startswith("scrypt:") and PASSWORD not in stored
