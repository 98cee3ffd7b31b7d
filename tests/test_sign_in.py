"""Sign-in under attack: hostile input in the form, and throttling that no stranger can turn
against an account's owner (directly, and behind a proxy read through ENGAGE_TRUSTED_PROXIES)."""

from __future__ import annotations

import logging

import pytest

from tests.conftest import WEB_PASSWORD
from tests.test_web_access import csrf_token


def post_login(client, email: str, password: str, **environ):
    token = csrf_token(client)
    return client.post(
        "/login",
        data={"email": email, "password": password, "csrf_token": token},
        environ_base={"REMOTE_ADDR": "10.0.0.1", **environ},
    )


# -- hostile input ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "email",
    [
        "policy@example.org\x00",
        "\x00",
        "policy\x00@example.org",
        "policy@example.org\x1b[2J",
        "policy@example.org\x85",
        "policy@example.org\x7f",
        "p" * 300 + "@example.org",
    ],
)
def test_control_characters_in_the_email_get_the_normal_form_error(web_app, email, caplog):
    client = web_app.test_client()
    with caplog.at_level(logging.INFO):
        response = post_login(client, email, WEB_PASSWORD)
    assert response.status_code == 401
    assert "Correo o contraseña incorrectos." in response.get_data(as_text=True)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert "example.org" not in caplog.text  # nothing of the input reaches the log
    assert post_login(client, "policy@example.org", WEB_PASSWORD).status_code == 302


def test_the_sign_in_service_never_sends_a_nul_to_the_database(web_app):
    from engage import db
    from engage.services.accounts import sign_in

    with web_app.app_context(), db.transaction() as session:
        result = sign_in(session, "policy@example.org\x00", WEB_PASSWORD, "10.0.0.1")
    assert result.user is None


def test_an_account_cannot_be_created_with_a_control_character(app):
    from engage import db
    from engage.services.accounts import AccountError, create_user

    with app.app_context(), db.transaction() as session:
        with pytest.raises(AccountError, match="not an e-mail address"):
            create_user(session, "ana\x00@example.org", WEB_PASSWORD, "staff")


# -- throttling, through the proxy -----------------------------------------------------------

PROXY = "10.0.0.2"  # the TLS-terminating proxy every request comes through


@pytest.fixture
def proxied_app(request, tmp_path, database):
    """The app behind one trusted proxy, with CSRF on and one account per role."""
    from engage import db
    from engage.services.accounts import create_user
    from tests.conftest import make_app

    pg = request.getfixturevalue("pg_url") if database == "postgresql" else None
    app = make_app(tmp_path, database, pg, ENGAGE_TRUSTED_PROXIES="1")
    app.config["WTF_CSRF_ENABLED"] = True
    with app.app_context(), db.transaction() as session:
        for role in ("admin", "staff", "policy"):
            create_user(session, f"{role}@example.org", WEB_PASSWORD, role)
    yield app
    app.extensions["engage.engine"].dispose()


def via_proxy(client, email: str, password: str, forwarded_for: str):
    return post_login(
        client, email, password, REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR=forwarded_for
    )


def test_behind_a_proxy_strangers_failures_never_refuse_the_owners_password(proxied_app):
    for n in range(3):  # several strangers, each until it is slowed
        stranger = proxied_app.test_client()
        answers = [
            via_proxy(stranger, "policy@example.org", "guess guess", f"203.0.113.{n}").status_code
            for _ in range(6)
        ]
        assert answers[:3] == [401, 401, 401] and answers[-1] == 429
    owner = proxied_app.test_client()
    assert via_proxy(owner, "policy@example.org", WEB_PASSWORD, "198.51.100.7").status_code == 302
    assert owner.get("/results").status_code == 200


def test_behind_a_proxy_failures_slow_the_same_account_and_client(proxied_app):
    client = proxied_app.test_client()
    for _ in range(3):
        assert via_proxy(client, "policy@example.org", "wrong!", "198.51.100.7").status_code == 401
    assert via_proxy(client, "policy@example.org", WEB_PASSWORD, "198.51.100.7").status_code == 429
    other = proxied_app.test_client()  # another client, same account: not slowed
    assert via_proxy(other, "policy@example.org", WEB_PASSWORD, "198.51.100.8").status_code == 302


def test_a_client_spraying_many_accounts_is_slowed_and_no_one_else(proxied_app):
    sprayer = proxied_app.test_client()
    answers = [
        via_proxy(sprayer, f"user{n}@example.org", "Summer2026!", "203.0.113.50").status_code
        for n in range(21)
    ]
    assert answers[:20] == [401] * 20 and answers[20] == 429
    assert via_proxy(sprayer, "nobody@example.org", "x", "203.0.113.50").status_code == 429
    for role in ("admin", "staff", "policy"):
        client = proxied_app.test_client()
        assert (
            via_proxy(client, f"{role}@example.org", WEB_PASSWORD, "198.51.100.9").status_code
            == 302
        )


def test_a_forged_forwarded_for_does_not_make_a_new_client(proxied_app):
    # The proxy appends the address it saw; what the client wrote before it is not trusted.
    client = proxied_app.test_client()
    answers = [
        via_proxy(client, "policy@example.org", "wrong!", f"192.0.2.{n}, 203.0.113.9").status_code
        for n in range(5)
    ]
    assert answers[-1] == 429


def test_a_client_holding_an_ipv6_network_counts_as_one(proxied_app):
    client = proxied_app.test_client()
    answers = [
        via_proxy(client, "policy@example.org", "wrong!", f"2001:db8:1:2::{n:x}").status_code
        for n in range(1, 6)
    ]
    assert answers[-1] == 429
    elsewhere = proxied_app.test_client()
    assert (
        via_proxy(elsewhere, "policy@example.org", WEB_PASSWORD, "2001:db8:9::1").status_code == 302
    )


def test_without_trusted_proxies_forwarded_headers_are_ignored(web_app):
    client = web_app.test_client()
    answers = [
        post_login(
            client, "policy@example.org", "wrong!", HTTP_X_FORWARDED_FOR=f"198.51.100.{n}"
        ).status_code
        for n in range(5)
    ]
    assert answers[-1] == 429  # one client (10.0.0.1), whatever it wrote


def test_the_proxy_tells_the_scheme(proxied_app):
    import flask

    with proxied_app.test_client() as client:
        client.get(
            "/login",
            environ_base={"REMOTE_ADDR": PROXY},
            headers={"X-Forwarded-For": "198.51.100.7", "X-Forwarded-Proto": "https"},
        )
        assert flask.request.scheme == "https"
        assert flask.request.remote_addr == "198.51.100.7"
