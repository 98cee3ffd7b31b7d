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
