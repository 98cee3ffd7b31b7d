"""Statement parameters (numbers, e-mails, a worker's words) never reach an error or a log in
production; development keeps them, for debugging."""

from __future__ import annotations

import logging

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import text
from sqlalchemy.exc import DataError

from engage import create_app, db

# A NUL is what once made sign-in fail with the e-mail in the log: the driver refuses it.
VALUE = "ana@example.org\x00+15550109999"


def app_in(environment: str, tmp_path, pg_url: str):
    overrides = {"ENGAGE_ENV": environment, "INSTANCE_PATH": str(tmp_path), "DATABASE_URL": pg_url}
    if environment == "production":
        overrides |= {
            "ENGAGE_SECRET_KEY": "0c6f1a9e4b27d85c3e90f1b6a2d74e58",
            "ENGAGE_PII_KEY": Fernet.generate_key().decode(),
            "TWILIO_ACCOUNT_SID": "AC" + "2" * 32,
            "TWILIO_AUTH_TOKEN": "token",
            "ENGAGE_PUBLIC_URL": "https://engage.example.org",
        }
    return create_app(overrides)


@pytest.mark.parametrize(
    ("environment", "is_shown"), [("production", False), ("development", True)]
)
def test_a_failing_statement_shows_its_parameters_only_in_development(
    environment, is_shown, tmp_path, pg_url, caplog
):
    app = app_in(environment, tmp_path, pg_url)
    try:
        with app.app_context(), caplog.at_level(logging.DEBUG):
            with pytest.raises(DataError) as raised:
                db.session().execute(text("SELECT CAST(:value AS text)"), {"value": VALUE})
            logging.getLogger("engage.test").error("statement failed", exc_info=raised.value)
    finally:
        app.extensions["engage.engine"].dispose()
    shown = repr(VALUE)[1:-1]  # as SQLAlchemy writes it: ana@example.org\\x00+15550109999
    assert (shown in str(raised.value)) is is_shown
    assert (shown in caplog.text) is is_shown
    assert "+15550109999" not in str(raised.value) or is_shown
    if not is_shown:
        assert "SQL parameters hidden" in str(raised.value)
