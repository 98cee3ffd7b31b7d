"""Configuration is read once in create_app; production refuses to start without its secrets."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet

from engage import create_app
from engage.config import ConfigError, database_url, load


def production_env(**changes):
    env = {
        "ENGAGE_SECRET_KEY": "s" * 32,
        "ENGAGE_PII_KEY": Fernet.generate_key().decode(),
        "TWILIO_ACCOUNT_SID": "AC" + "0" * 32,
        "TWILIO_AUTH_TOKEN": "token",
        "ENGAGE_PUBLIC_URL": "https://engage.example.org",
        "DATABASE_URL": "postgres://u@db/engage",
    }
    env.update(changes)
    return {k: v for k, v in env.items() if v is not None}


def test_production_with_everything_set_loads(tmp_path):
    config = load(production_env(), tmp_path)
    assert config["IS_PRODUCTION"]
    assert config["DATABASE_URL"] == "postgresql+psycopg://u@db/engage"
    assert config["SESSION_COOKIE_SECURE"]


@pytest.mark.parametrize(
    "missing",
    ["ENGAGE_SECRET_KEY", "ENGAGE_PII_KEY", "TWILIO_AUTH_TOKEN", "ENGAGE_PUBLIC_URL"],
)
def test_production_refuses_to_start_without(missing, tmp_path):
    with pytest.raises(ConfigError, match=missing):
        load(production_env(**{missing: None}), tmp_path)
    assert not (tmp_path / "secret_key").exists()  # nothing generated silently


def test_production_refuses_a_bad_pii_key_and_a_plain_http_mock(tmp_path):
    with pytest.raises(ConfigError, match="Fernet"):
        load(production_env(ENGAGE_PII_KEY="not-a-key"), tmp_path)
    with pytest.raises(ConfigError, match="https"):
        load(production_env(ENGAGE_TWILIO_API_URL="http://127.0.0.1:9"), tmp_path)


def test_create_app_in_production_fails_loudly(tmp_path, monkeypatch):
    for name in ("ENGAGE_ENV", "ENGAGE_SECRET_KEY", "ENGAGE_PII_KEY"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ConfigError, match="production needs"):
        create_app({"INSTANCE_PATH": str(tmp_path)})


def test_development_generates_keys_once_into_the_instance_folder(tmp_path):
    first = load({"ENGAGE_ENV": "development"}, tmp_path)
    second = load({"ENGAGE_ENV": "development"}, tmp_path)
    assert first["SECRET_KEY"] == second["SECRET_KEY"]
    assert first["ENGAGE_PII_KEY"] == second["ENGAGE_PII_KEY"]
    assert first["DATABASE_URL"] == f"sqlite:///{tmp_path / 'engage.db'}"
    assert oct((tmp_path / "pii_key").stat().st_mode & 0o777) == "0o600"
    assert not first["SESSION_COOKIE_SECURE"]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("postgres://u:p@h/db", "postgresql+psycopg://u:p@h/db"),
        ("postgresql://u@h:5433/db", "postgresql+psycopg://u@h:5433/db"),
        ("sqlite:///x.db", "sqlite:///x.db"),
    ],
)
def test_database_urls_as_platforms_write_them(raw, expected):
    assert database_url(raw) == expected


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [("ENGAGE_IDLE_HOURS", "soon", "whole number"), ("ENGAGE_QUIET_HOURS", "late", "21-8")],
)
def test_bad_numbers_are_named(name, value, message, tmp_path):
    with pytest.raises(ConfigError, match=message):
        load({"ENGAGE_ENV": "development", name: value}, tmp_path)
