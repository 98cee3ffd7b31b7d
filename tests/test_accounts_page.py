"""The accounts page, set-password links and the TOTP second factor, over HTTP.

An admin makes an account and hands over a one-time link; its holder chooses a password and,
where a second factor is required, sets up an authenticator app before the sign-in finishes.
Role changes and deactivation end sessions at once; every change is audited, never a secret.
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pyotp
import pytest
from sqlalchemy import select

from engage import db
from engage.config import ConfigError, load
from engage.models import AuditEntry, User
from tests.conftest import WEB_PASSWORD
from tests.test_web_access import csrf_token, sign_in

START = datetime(2026, 3, 2, 8, 0, 10, tzinfo=UTC)
NEW_PASSWORD = "tortillas de maiz con frijoles"
ADDRESS = {"REMOTE_ADDR": "10.0.0.1"}


@pytest.fixture
def totp_app(web_app, clock):
    """The app with the second factor required, as in production."""
    web_app.config["ENGAGE_REQUIRE_TOTP"] = True
    return web_app


def admin_client(app):
    """A signed-in admin (who sets up the app first where a second factor is required)."""
    client = app.test_client()
    response = sign_in(client, "admin")
    assert response.status_code == 302
    if response.headers["Location"] == "/login/totp/setup":
        enrol(client, app.extensions["engage.clock"])
    return client


def post_users(client, **data):
    token = csrf_token(client, "/admin/users")
    return client.post("/admin/users", data={"csrf_token": token, **data})


def user_id(app, email: str) -> int:
    with app.app_context():
        return db.session().scalar(select(User.id).where(User.email == email))


def account(app, email: str) -> User:
    with app.app_context():
        return db.session().scalar(select(User).where(User.email == email))


def link_path(page: str) -> str:
    """The set-password link the page shows, as a path."""
    match = re.search(r'id="link-url" type="text" readonly value="([^"]+)"', page)
    assert match, "the page shows the link"
    return urlsplit(match.group(1)).path


def create_account(admin, email: str, role: str = "staff") -> str:
    response = post_users(admin, action="create", email=email, role=role)
    assert response.status_code == 200
    return link_path(response.get_data(as_text=True))


def choose_password(client, path: str, password: str = NEW_PASSWORD, confirm: str | None = None):
    token = csrf_token(client)  # from /login: a used link's page has no form
    return client.post(
        path,
        data={"password": password, "confirm": password if confirm is None else confirm}
        | {"csrf_token": token},
    )


def password_step(client, email: str, password: str = NEW_PASSWORD, next_path: str = "/"):
    token = csrf_token(client)
    return client.post(
        f"/login?next={next_path}",
        data={"email": email, "password": password, "csrf_token": token},
        environ_base=ADDRESS,
    )


def secret_on(page: str) -> str:
    match = re.search(r'data-secret="([A-Z2-7]+)"', page)
    assert match, "the setup page shows the key"
    return match.group(1)


def post_code(client, path: str, code: str):
    token = csrf_token(client)
    return client.post(path, data={"code": code, "csrf_token": token}, environ_base=ADDRESS)


def enrol(client, clock) -> str:
    """On the setup page: read the key, send its code now; returns the key."""
    page = client.get("/login/totp/setup")
    assert page.status_code == 200
    secret = secret_on(page.get_data(as_text=True))
    response = post_code(client, "/login/totp/setup", pyotp.TOTP(secret).at(clock.now))
    assert response.status_code == 302, response.get_data(as_text=True)
    return secret


def give_second_factor(app, email: str, clock) -> str:
    """An account that set up its app five minutes ago (through the service); returns the key."""
    from engage.services.second_factor import enrol as enrol_service

    secret = pyotp.random_base32()
    earlier = clock.now - timedelta(minutes=5)
    with app.app_context(), db.transaction() as session:
        user = session.scalar(select(User).where(User.email == email))
        vault = app.extensions["engage.vault"]
        code = pyotp.TOTP(secret).at(earlier)
        assert enrol_service(session, user, secret, code, "10.9.9.9", vault=vault, now=earlier).user
    return secret


def is_signed_in(client, path: str = "/staff") -> bool:
    response = client.get(path)
    assert response.status_code in (200, 302, 403)
    return response.status_code != 302


# -- the whole way: an account from the page to /staff -----------------------------------------


@pytest.mark.parametrize("is_required", [False, True], ids=["totp-off", "totp-required"])
def test_create_link_password_sign_in_reaches_staff(web_app, clock, is_required):
    web_app.config["ENGAGE_REQUIRE_TOTP"] = is_required
    admin = admin_client(web_app)
    path = create_account(admin, "Ana@Example.org")
    assert re.fullmatch(r"/set-password/[A-Za-z0-9_-]{40,}", path)
    listing = admin.get("/admin/users").get_data(as_text=True)
    assert "ana@example.org" in listing and path not in listing  # the link is shown once

    ana = web_app.test_client()  # a fresh browser
    form = ana.get(path)
    assert form.status_code == 200 and "ana@example.org" in form.get_data(as_text=True)
    saved = choose_password(ana, path)
    assert saved.status_code == 200
    assert "Contraseña guardada" in saved.get_data(as_text=True)

    response = password_step(ana, "ana@example.org")
    assert response.status_code == 302
    if is_required:
        assert response.headers["Location"] == "/login/totp/setup"
        assert not is_signed_in(ana)  # the password alone opens nothing
        assert ana.get("/login/totp/setup").status_code == 200
        enrol(ana, clock)
        assert account(web_app, "ana@example.org").totp_secret_encrypted is not None
    else:
        assert response.headers["Location"] == "/"
    assert ana.get("/").headers["Location"] == "/staff"
    assert ana.get("/staff").status_code == 200
    assert account(web_app, "ana@example.org").last_login_at == clock.now


def test_with_a_second_factor_sign_in_asks_for_the_code_and_never_takes_one_twice(totp_app, clock):
    admin = admin_client(totp_app)
    path = create_account(admin, "bea@example.org")
    bea = totp_app.test_client()
    choose_password(bea, path)
    password_step(bea, "bea@example.org")
    secret = enrol(bea, clock)
    used = pyotp.TOTP(secret).at(clock.now)
    bea.post("/logout", data={"csrf_token": csrf_token(bea, "/staff")})
    assert not is_signed_in(bea)

    response = password_step(bea, "bea@example.org", next_path="/staff")
    assert response.headers["Location"] == "/login/totp"
    assert bea.get("/login/totp/setup").headers["Location"] == "/login/totp"  # set up already
    for path in ("/staff", "/results", "/admin/users"):
        assert bea.get(path).status_code == 302, path  # only the code page works meanwhile
    assert post_code(bea, "/login/totp", used).status_code == 401  # the same step again
    clock.advance(seconds=30)
    response = post_code(bea, "/login/totp", pyotp.TOTP(secret).at(clock.now))
    assert response.status_code == 302 and response.headers["Location"] == "/staff"
    assert is_signed_in(bea)


def test_a_wrong_code_is_refused_and_repeated_failures_are_slowed(totp_app, clock):
    secret = give_second_factor(totp_app, "staff@example.org", clock)
    client = totp_app.test_client()
    assert sign_in(client, "staff").headers["Location"] == "/login/totp"
    right = pyotp.TOTP(secret).at(clock.now)
    wrong = f"{(int(right) + 1) % 1_000_000:06d}"
    for attempt in ("not a code", wrong, "000000" if right != "000000" else "111111"):
        response = post_code(client, "/login/totp", attempt)
        assert response.status_code == 401, attempt
        assert "Ese código no es correcto" in response.get_data(as_text=True)
    slowed = post_code(client, "/login/totp", right)
    assert slowed.status_code == 429  # even the right code waits
    assert "Demasiados intentos fallidos" in slowed.get_data(as_text=True)
    assert not is_signed_in(client)
    clock.advance(seconds=2)
    assert post_code(client, "/login/totp", pyotp.TOTP(secret).at(clock.now)).status_code == 302
    assert is_signed_in(client)


def test_the_pending_sign_in_ends_with_time_and_with_a_password_change(totp_app, clock):
    client = totp_app.test_client()
    assert sign_in(client, "staff").headers["Location"] == "/login/totp/setup"
    assert client.get("/login/totp/setup").status_code == 200
    clock.advance(minutes=16)
    assert client.get("/login/totp/setup").headers["Location"] == "/login"

    assert sign_in(client, "staff").headers["Location"] == "/login/totp/setup"
    with totp_app.app_context(), db.transaction() as session:
        from engage.services.accounts import find_user, set_password

        set_password(
            session, find_user(session, "staff@example.org"), NEW_PASSWORD, actor="t", now=clock.now
        )
    assert client.get("/login/totp/setup").headers["Location"] == "/login"
    assert client.get("/login/totp").headers["Location"] == "/login"


def test_the_policy_team_needs_no_second_factor_and_nobody_does_by_default(web_app, clock):
    assert not web_app.config["ENGAGE_REQUIRE_TOTP"]  # development, as every other test runs
    for role in ("admin", "staff"):
        assert sign_in(web_app.test_client(), role).headers["Location"] == "/results"
    web_app.config["ENGAGE_REQUIRE_TOTP"] = True
    policy = web_app.test_client()
    assert sign_in(policy, "policy").headers["Location"] == "/results"
    assert is_signed_in(policy, "/results")
    assert sign_in(web_app.test_client(), "staff").headers["Location"] == "/login/totp/setup"


def test_an_admin_reset_of_the_app_makes_the_account_set_it_up_again(totp_app, clock):
    client = totp_app.test_client()
    sign_in(client, "staff")
    enrol(client, clock)
    admin = admin_client(totp_app)  # the admin sets up their own app first
    assert admin.get("/staff").status_code == 200
    staff_id = user_id(totp_app, "staff@example.org")
    response = post_users(admin, action="reset_totp", user=staff_id)
    assert response.status_code == 200
    assert account(totp_app, "staff@example.org").totp_secret_encrypted is None
    again = totp_app.test_client()
    assert sign_in(again, "staff").headers["Location"] == "/login/totp/setup"


# -- set-password links ------------------------------------------------------------------------


def test_a_used_link_and_an_expired_link_are_refused_and_change_nothing(web_app, clock):
    admin = admin_client(web_app)
    path = create_account(admin, "carla@example.org")
    client = web_app.test_client()
    assert choose_password(client, path).status_code == 200
    stored = account(web_app, "carla@example.org").password_hash
    assert client.get(path).status_code == 404
    used = choose_password(client, path, "another long password here")
    assert used.status_code == 404
    assert "Este enlace no funciona" in used.get_data(as_text=True)
    assert account(web_app, "carla@example.org").password_hash == stored

    reset = post_users(admin, action="reset", user=user_id(web_app, "carla@example.org"))
    late = link_path(reset.get_data(as_text=True))
    clock.advance(hours=72, seconds=1)
    stored = account(web_app, "carla@example.org").password_hash
    assert web_app.test_client().get(late).status_code == 410
    assert choose_password(web_app.test_client(), late).status_code == 410
    assert account(web_app, "carla@example.org").password_hash == stored
    assert web_app.test_client().get("/set-password/" + "x" * 43).status_code == 404
    assert web_app.test_client().get("/set-password/" + "x" * 500).status_code == 404


@pytest.mark.parametrize(
    ("password", "confirm"),
    [("short", "short"), (NEW_PASSWORD, NEW_PASSWORD + "!"), ("", "")],
    ids=["too-short", "not-the-same", "empty"],
)
def test_a_password_that_breaks_the_rules_is_refused_and_the_link_still_works(
    web_app, clock, password, confirm
):
    path = create_account(admin_client(web_app), "dora@example.org")
    client = web_app.test_client()
    response = choose_password(client, path, password, confirm)
    assert response.status_code == 400
    assert 'role="alert"' in response.get_data(as_text=True)
    assert choose_password(client, path).status_code == 200


def test_a_reset_ends_the_old_password_and_the_sessions_and_the_link_sets_a_new_one(web_app):
    staff = web_app.test_client()
    sign_in(staff, "staff")
    assert is_signed_in(staff)
    admin = admin_client(web_app)
    response = post_users(admin, action="reset", user=user_id(web_app, "staff@example.org"))
    path = link_path(response.get_data(as_text=True))
    assert not is_signed_in(staff)
    assert sign_in(web_app.test_client(), "staff").status_code == 401  # the old password
    choose_password(web_app.test_client(), path)
    assert password_step(web_app.test_client(), "staff@example.org").status_code == 302


# -- changes from the page ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "still_allowed"),
    [({"action": "role", "role": "policy"}, "/results"), ({"action": "deactivate"}, None)],
    ids=["role", "deactivation"],
)
def test_a_role_change_or_deactivation_ends_the_existing_session(web_app, change, still_allowed):
    staff = web_app.test_client()
    sign_in(staff, "staff")
    assert staff.get("/staff").status_code == 200
    admin = admin_client(web_app)
    response = post_users(admin, user=user_id(web_app, "staff@example.org"), **change)
    assert response.status_code == 200
    assert staff.get("/staff").status_code == 302  # signed out, not merely refused
    again = web_app.test_client()
    if still_allowed:
        assert sign_in(again, "staff").status_code == 302
        assert again.get("/staff").status_code == 403
        assert again.get(still_allowed).status_code == 200
    else:
        assert sign_in(again, "staff").status_code == 401
        post_users(admin, action="reactivate", user=user_id(web_app, "staff@example.org"))
        assert sign_in(again, "staff").status_code == 302


@pytest.mark.parametrize(
    "change",
    [{"action": "deactivate"}, {"action": "role", "role": "staff"}],
    ids=["deactivate", "demote"],
)
def test_an_admin_cannot_lock_themselves_out(web_app, change):
    admin = admin_client(web_app)
    response = post_users(admin, user=user_id(web_app, "admin@example.org"), **change)
    assert response.status_code == 400
    assert "No puede desactivar su propia cuenta" in response.get_data(as_text=True)
    me = account(web_app, "admin@example.org")
    assert me.is_active and me.role == "admin"
    assert admin.get("/admin/users").status_code == 200  # still signed in, still admin


def test_bad_requests_are_refused_with_a_reason(web_app):
    admin = admin_client(web_app)
    post_users(admin, action="create", email="eva@example.org", role="staff")
    for data, message in [
        ({"action": "create", "email": "eva@example.org", "role": "staff"}, "ya tiene una cuenta"),
        ({"action": "create", "email": "not an address", "role": "staff"}, "no es un correo"),
        ({"action": "create", "email": "fe@example.org", "role": "owner"}, "Elija un rol"),
    ]:
        response = post_users(admin, **data)
        assert response.status_code == 400, data
        assert message in response.get_data(as_text=True)
    assert post_users(admin, action="role", user=9999, role="staff").status_code == 404
    assert post_users(admin, action="explode", user=1).status_code == 400


def test_only_admins_may_post_and_every_post_needs_its_csrf_token(web_app, clock):
    anonymous = web_app.test_client()
    token = csrf_token(anonymous)
    form = {"action": "create", "email": "x@example.org", "role": "admin", "csrf_token": token}
    assert anonymous.post("/admin/users", data=form).status_code == 302
    for role in ("staff", "policy"):
        client = web_app.test_client()
        sign_in(client, role)
        form["csrf_token"] = csrf_token(client, "/results")
        assert client.post("/admin/users", data=form).status_code == 403
    admin = admin_client(web_app)
    bare = {"action": "create", "email": "x@example.org", "role": "admin"}
    assert admin.post("/admin/users", data=bare).status_code == 400
    assert account(web_app, "x@example.org") is None

    path = create_account(admin, "flor@example.org")
    client = web_app.test_client()
    client.get(path)
    no_token = client.post(path, data={"password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert no_token.status_code == 400
    assert client.get(path).status_code == 200  # the link still works: nothing changed

    web_app.config["ENGAGE_REQUIRE_TOTP"] = True
    pending = web_app.test_client()
    sign_in(pending, "staff")
    assert pending.post("/login/totp/setup", data={"code": "123456"}).status_code == 400


def rows_of(page: str) -> dict[str, str]:
    """The accounts table, row by row: e-mail -> the row's text."""
    rows = {}
    for row in page.split('<tr id="account-')[1:]:
        row = row[: row.index("</tr>")]
        rows[re.search(r'<th scope="row"[^>]*>\s*([^<\s]+)', row).group(1)] = row
    return rows


def test_the_page_lists_every_account_with_its_state(web_app, clock):
    admin = admin_client(web_app)
    post_users(admin, action="deactivate", user=user_id(web_app, "policy@example.org"))
    rows = rows_of(admin.get("/admin/users?lang=en").get_data(as_text=True))
    assert set(rows) == {"admin@example.org", "staff@example.org", "policy@example.org"}
    assert (
        "deactivated" in rows["policy@example.org"] and "Reactivate" in rows["policy@example.org"]
    )
    assert "never" in rows["staff@example.org"] and "not set up" in rows["staff@example.org"]
    assert clock.now.strftime("%Y-%m-%d %H:%M") in rows["admin@example.org"]
    assert "Deactivate" not in rows["admin@example.org"]  # not offered for oneself
    give_second_factor(web_app, "staff@example.org", clock)
    rows = rows_of(admin.get("/admin/users?lang=en").get_data(as_text=True))
    assert (
        ">set up<" in rows["staff@example.org"]
        and "Reset authenticator app" in rows["staff@example.org"]
    )


# -- the audit trail ---------------------------------------------------------------------------


def test_every_change_is_audited_and_no_secret_reaches_the_audit_or_the_log(
    totp_app, clock, caplog
):
    caplog.set_level(logging.DEBUG)
    admin = totp_app.test_client()
    sign_in(admin, "admin")
    secret = enrol(admin, clock)
    path = create_account(admin, "gil@example.org", role="staff")
    token = path.rsplit("/", 1)[1]
    gil = totp_app.test_client()
    choose_password(gil, path)
    password_step(gil, "gil@example.org")
    gil_secret = enrol(gil, clock)
    gil_id = user_id(totp_app, "gil@example.org")
    post_users(admin, action="role", user=gil_id, role="policy")
    reset = post_users(admin, action="reset", user=gil_id)
    second_token = link_path(reset.get_data(as_text=True)).rsplit("/", 1)[1]
    post_users(admin, action="reset_totp", user=gil_id)
    post_users(admin, action="deactivate", user=gil_id)
    post_users(admin, action="reactivate", user=gil_id)

    with totp_app.app_context():
        entries = db.session().scalars(select(AuditEntry).order_by(AuditEntry.id)).all()
    trail = [
        (e.actor, e.action) for e in entries if e.parameters.get("account") == "gil@example.org"
    ]
    assert trail == [
        ("admin@example.org", "create_user"),
        ("gil@example.org", "set_password"),
        ("gil@example.org", "set_up_totp"),
        ("admin@example.org", "set_role"),
        ("admin@example.org", "reset_password"),
        ("admin@example.org", "reset_totp"),
        ("admin@example.org", "deactivate_user"),
        ("admin@example.org", "reactivate_user"),
    ]
    assert ("admin@example.org", "set_up_totp") in [(e.actor, e.action) for e in entries]
    secrets = [token, second_token, NEW_PASSWORD, WEB_PASSWORD, secret, gil_secret]
    written = " ".join(f"{e.actor} {e.action} {e.parameters}" for e in entries)
    for each in secrets:
        assert each not in written
        assert each not in caplog.text
    page = admin.get("/admin/audit?lang=en").get_data(as_text=True)
    assert "set-password link made" in page and "authenticator app reset" in page
    with totp_app.app_context():
        stored = db.session().scalar(select(User).where(User.email == "admin@example.org"))
    assert secret not in (stored.totp_secret_encrypted or "")  # encrypted at rest


# -- configuration -----------------------------------------------------------------------------


def test_require_totp_is_read_once_with_its_defaults(tmp_path):
    from tests.test_config import production_env

    development = {"ENGAGE_ENV": "development"}
    assert load(development, tmp_path)["ENGAGE_REQUIRE_TOTP"] is False
    assert load(development | {"ENGAGE_REQUIRE_TOTP": "1"}, tmp_path)["ENGAGE_REQUIRE_TOTP"]
    assert load(production_env(), tmp_path)["ENGAGE_REQUIRE_TOTP"] is True
    assert load(production_env(ENGAGE_REQUIRE_TOTP="true"), tmp_path)["ENGAGE_REQUIRE_TOTP"]
    with pytest.raises(ConfigError, match="cannot be turned off in production"):
        load(production_env(ENGAGE_REQUIRE_TOTP="0"), tmp_path)
    with pytest.raises(ConfigError, match="ENGAGE_REQUIRE_TOTP must be 1 or 0"):
        load(development | {"ENGAGE_REQUIRE_TOTP": "maybe"}, tmp_path)


def test_the_command_line_clears_an_app_when_no_admin_can_sign_in(web_app, clock):
    from click.testing import CliRunner
    from flask.cli import ScriptInfo

    from engage.cli import main

    give_second_factor(web_app, "admin@example.org", clock)
    runner = CliRunner()
    result = runner.invoke(
        main,
        ["users", "reset-totp", "admin@example.org"],
        obj=ScriptInfo(create_app=lambda: web_app),
    )
    assert result.exit_code == 0, result.output
    assert "authenticator app cleared" in result.output
    assert account(web_app, "admin@example.org").totp_secret_encrypted is None
    unknown = runner.invoke(
        main,
        ["users", "reset-totp", "nobody@example.org"],
        obj=ScriptInfo(create_app=lambda: web_app),
    )
    assert unknown.exit_code == 1 and "has no account" in unknown.output
    with web_app.app_context():
        actions = db.session().scalars(select(AuditEntry.action)).all()
    assert "reset_totp" in actions
