"""Sessions end on the server: a copied cookie stops working after sign-out, an account change,
12 hours idle and 7 days, whatever the browser keeps."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select, update

from engage import db
from engage.models import User, UserSession
from engage.services.accounts import deactivate_user, find_user, set_password, set_role
from tests.conftest import WEB_PASSWORD
from tests.test_web_access import csrf_token, sign_in

START = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def copy_of(client, app):
    """Another browser holding a copy of this one's session cookie."""
    thief = app.test_client()
    thief.set_cookie("session", client.get_cookie("session").value)
    return thief


def is_signed_in(client) -> bool:
    response = client.get("/results")
    assert response.status_code in (200, 302)
    return response.status_code == 200


def test_a_copied_cookie_stops_working_after_sign_out(web_app, clock):
    owner = web_app.test_client()
    assert sign_in(owner, "policy").status_code == 302
    thief = copy_of(owner, web_app)
    assert is_signed_in(thief)  # a copy works while the session lives...
    token = csrf_token(owner, "/results")
    assert owner.post("/logout", data={"csrf_token": token}).status_code == 302
    assert not is_signed_in(owner)
    assert not is_signed_in(thief)  # ...and not after sign-out


@pytest.mark.parametrize(
    "change",
    [
        lambda s, user, now: set_password(s, user, "a new long password", actor="t", now=now),
        lambda s, user, now: set_role(s, user, "staff", actor="t", now=now),
        lambda s, user, now: deactivate_user(s, user, actor="t", now=now),
    ],
    ids=["password", "role", "deactivation"],
)
def test_a_copied_cookie_stops_working_after_an_account_change(web_app, clock, change):
    owner = web_app.test_client()
    sign_in(owner, "policy")
    thief = copy_of(owner, web_app)
    assert is_signed_in(thief)
    with web_app.app_context(), db.transaction() as session:
        change(session, find_user(session, "policy@example.org"), clock.now)
    assert not is_signed_in(thief)
    assert not is_signed_in(owner)
    with web_app.app_context():
        rows = db.session().scalars(select(UserSession)).all()
    assert [row.ended_at for row in rows] == [clock.now]


@pytest.mark.parametrize(
    "values",
    [{"password_hash": "scrypt:changed-elsewhere"}, {"role": "admin"}, {"is_active": False}],
    ids=["password", "role", "deactivation"],
)
def test_a_change_made_by_any_other_path_ends_the_session_too(web_app, clock, values):
    owner = web_app.test_client()
    sign_in(owner, "policy")
    with web_app.app_context(), db.transaction() as session:
        session.execute(update(User).where(User.email == "policy@example.org").values(**values))
    assert not is_signed_in(owner)


def test_a_session_ends_after_12_hours_idle(web_app, clock):
    owner = web_app.test_client()
    sign_in(owner, "policy")
    thief = copy_of(owner, web_app)
    clock.advance(hours=11, minutes=59)
    assert is_signed_in(owner)  # activity keeps it going
    clock.advance(hours=11, minutes=59)
    assert is_signed_in(owner)
    clock.advance(hours=12, minutes=1)
    assert not is_signed_in(owner)
    assert not is_signed_in(thief)
    clock.advance(seconds=-1)  # an ended session stays ended
    assert not is_signed_in(owner)


def test_a_session_ends_after_7_days_however_active(web_app, clock):
    owner = web_app.test_client()
    sign_in(owner, "policy")
    for _ in range(14):
        clock.advance(hours=12)
        assert is_signed_in(owner)
    clock.advance(minutes=1)
    assert not is_signed_in(owner)
    assert sign_in(owner, "policy").status_code == 302  # signing in again starts a new one
    assert is_signed_in(owner)


def test_signing_in_gives_a_new_session_and_stores_only_its_hash(web_app, clock):
    client = web_app.test_client()
    client.get("/login")
    before = client.get_cookie("session").value
    sign_in(client, "policy")
    after = client.get_cookie("session").value
    assert after != before
    with client.session_transaction() as flask_session:
        token = flask_session["engage_session"]
    with web_app.app_context():
        row = db.session().scalars(select(UserSession)).one()
    assert token not in (row.token_hash, row.user_stamp) and len(row.token_hash) == 64
    assert row.created_at == row.last_seen_at == clock.now


def test_a_forged_user_id_beside_a_real_token_opens_nothing(web_app, clock):
    client = web_app.test_client()
    sign_in(client, "policy")
    with client.session_transaction() as flask_session:
        with web_app.app_context():
            admin_id = db.session().scalar(select(User.id).where(User.role == "admin"))
        flask_session["_user_id"] = str(admin_id)
    assert client.get("/admin/audit").status_code == 302


def test_session_cookie_flags(web_app, clock):
    response = sign_in(web_app.test_client(), "policy")
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert "Secure" not in cookie  # development; production sets it (test_config)
    assert WEB_PASSWORD not in cookie


def test_a_download_after_a_session_is_touched_is_audited(web_app, clock):
    # The loader writes activity in its own transaction; the request then writes its audit line
    # (on SQLite, from a snapshot taken before that write, it could not).
    client = web_app.test_client()
    sign_in(client, "policy")
    clock.advance(minutes=2)
    response = client.get("/results/working-conditions/export.csv")
    assert response.status_code == 200
    with web_app.app_context():
        row = db.session().scalars(select(UserSession)).one()
    assert row.last_seen_at == clock.now
