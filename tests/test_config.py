"""Configuration is read once in create_app; production refuses to start without its secrets."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet

from engage import create_app
from engage.config import ConfigError, database_url, load


def production_env(**changes):
    env = {
        "ENGAGE_SECRET_KEY": "9f2c41d7e08b5a63c1f4e2d9b7a05c83",
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
    assert config["SESSION_COOKIE_HTTPONLY"] and config["SESSION_COOKIE_SAMESITE"] == "Strict"


@pytest.mark.parametrize(
    "missing",
    ["ENGAGE_SECRET_KEY", "ENGAGE_PII_KEY", "TWILIO_AUTH_TOKEN", "ENGAGE_PUBLIC_URL"],
)
def test_production_refuses_to_start_without(missing, tmp_path):
    with pytest.raises(ConfigError, match=missing):
        load(production_env(**{missing: None}), tmp_path)
    assert not (tmp_path / "secret_key").exists()  # nothing generated silently


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"ENGAGE_SECRET_KEY": "9f2c41d7e08b5a63c1f4e2d9b7a05c8"}, "31 characters long"),
        ({"ENGAGE_SECRET_KEY": "changeme"}, "8 characters long"),
        ({"ENGAGE_SECRET_KEY": "ChangeMe" * 4}, "placeholder"),
        ({"ENGAGE_SECRET_KEY": "SECRET-" * 5}, "placeholder"),
        ({"ENGAGE_SECRET_KEY": "development" * 3}, "placeholder"),
        ({"ENGAGE_SECRET_KEY": "test" * 8}, "placeholder"),
        ({"ENGAGE_SECRET_KEY": "Password" * 4}, "placeholder"),
        ({"ENGAGE_SECRET_KEY": "dev_secret_key_please_change_me!"}, "placeholder"),
        ({"ENGAGE_SECRET_KEY": "s" * 64}, "placeholder"),
        ({"ENGAGE_PUBLIC_URL": "http://engage.example.org"}, "ENGAGE_PUBLIC_URL must be an https"),
        ({"ENGAGE_PUBLIC_URL": "engage.example.org"}, "ENGAGE_PUBLIC_URL must be an https"),
        ({"ENGAGE_ALERT_WEBHOOK": "http://hooks.example.org/t"}, "ALERT_WEBHOOK must be an https"),
        ({"DATABASE_URL": "sqlite:////srv/engage.db"}, "DATABASE_URL must be PostgreSQL"),
        ({"DATABASE_URL": "SQLite:///engage.db"}, "DATABASE_URL must be PostgreSQL"),
        ({"FLASK_DEBUG": "1"}, "FLASK_DEBUG is on"),
        ({"FLASK_DEBUG": "true"}, "FLASK_DEBUG is on"),
        ({"FLASK_DEBUG": "Yes"}, "FLASK_DEBUG is on"),
        ({"FLASK_DEBUG": "on"}, "FLASK_DEBUG is on"),
        ({"ENGAGE_MIN_CELL": "4", "ENGAGE_ROUND_BASE": "3"}, "ENGAGE_MIN_CELL must be at least 5"),
        ({"ENGAGE_ROUND_BASE": "2"}, "ENGAGE_ROUND_BASE must be from 3"),
        ({"ENGAGE_MIN_CELL": "5", "ENGAGE_ROUND_BASE": "6"}, "ENGAGE_ROUND_BASE must be from 3"),
    ],
)
def test_production_refuses_unsafe_settings(changes, message, tmp_path):
    with pytest.raises(ConfigError, match=message) as raised:
        load(production_env(**changes), tmp_path)
    secret = changes.get("ENGAGE_SECRET_KEY")
    assert secret is None or secret not in str(raised.value)  # the message never shows the key


@pytest.mark.parametrize(
    "changes",
    [
        {"FLASK_DEBUG": "0"},
        {"FLASK_DEBUG": "false"},
        {"FLASK_DEBUG": "no"},
        {"FLASK_DEBUG": ""},
        {"ENGAGE_MIN_CELL": "5", "ENGAGE_ROUND_BASE": "5"},
        {"ENGAGE_MIN_CELL": "11", "ENGAGE_ROUND_BASE": "3"},
        {"ENGAGE_PUBLIC_URL": "https://engage.example.org:8443/base"},
        {"ENGAGE_SECRET_KEY": "a-long-test-of-passwords-in-keys-9f2c41d7"},
    ],
)
def test_production_accepts_safe_settings(changes, tmp_path):
    load(production_env(**changes), tmp_path)


@pytest.mark.parametrize("environment", ["development", "production"])
@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("ENGAGE_MIN_CELL", "0", "ENGAGE_MIN_CELL must be at least 2"),
        ("ENGAGE_MIN_CELL", "1", "ENGAGE_MIN_CELL must be at least 2"),
        ("ENGAGE_ROUND_BASE", "0", "ENGAGE_ROUND_BASE must be at least 1"),
        ("ENGAGE_ROUND_BASE", "-5", "ENGAGE_ROUND_BASE must be at least 1"),
        ("ENGAGE_MIN_PERCENT_BASE", "-1", "ENGAGE_MIN_PERCENT_BASE cannot be negative"),
        ("ENGAGE_TRUSTED_PROXIES", "-1", "ENGAGE_TRUSTED_PROXIES cannot be negative"),
        ("ENGAGE_TRUSTED_PROXIES", "one", "whole number"),
        ("ENGAGE_ROUND_BASE", "five", "whole number"),
    ],
)
def test_nonsense_is_refused_in_every_environment(environment, name, value, message, tmp_path):
    env = production_env(**{name: value}) if environment == "production" else {name: value}
    env["ENGAGE_ENV"] = environment
    with pytest.raises(ConfigError, match=message):
        load(env, tmp_path)


def test_new_settings_have_their_defaults_and_development_keeps_its_latitude(tmp_path):
    config = load(production_env(), tmp_path)
    assert (config["ENGAGE_ROUND_BASE"], config["ENGAGE_TRUSTED_PROXIES"]) == (5, 0)
    development = load(
        {
            "ENGAGE_ENV": "development",
            "ENGAGE_MIN_CELL": "2",
            "ENGAGE_ROUND_BASE": "1",
            "ENGAGE_MIN_PERCENT_BASE": "0",
            "ENGAGE_TRUSTED_PROXIES": "2",
            "FLASK_DEBUG": "1",
            "ENGAGE_SECRET_KEY": "dev",
        },
        tmp_path,
    )
    assert development["ENGAGE_MIN_CELL"] == 2 and development["ENGAGE_TRUSTED_PROXIES"] == 2


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
    [
        ("ENGAGE_IDLE_HOURS", "soon", "whole number"),
        ("ENGAGE_QUIET_HOURS", "late", "21-8"),
        ("ENGAGE_RETENTION_DAYS", "-3", "ENGAGE_RETENTION_DAYS must be a number of days"),
        ("ENGAGE_RETENTION_DAYS", "a year", "whole number"),
        ("TWILIO_TIMEOUT", "fast", "TWILIO_TIMEOUT must be a number of seconds"),
        ("TWILIO_TIMEOUT", "0", "more than 0 seconds"),
    ],
)
def test_bad_numbers_are_named(name, value, message, tmp_path):
    with pytest.raises(ConfigError, match=message):
        load({"ENGAGE_ENV": "development", name: value}, tmp_path)


def test_retention_timeout_and_burst_are_read_with_the_rest(tmp_path):
    env = {"ENGAGE_ENV": "development"}
    assert (
        load(env, tmp_path)["ENGAGE_RETENTION_DAYS"],
        load(env, tmp_path)["TWILIO_TIMEOUT"],
    ) == (
        None,
        10.0,
    )
    config = load(
        {
            **env,
            "ENGAGE_RETENTION_DAYS": "400",
            "TWILIO_TIMEOUT": "2.5",
            "ENGAGE_WORKER_BURST": "1",
        },
        tmp_path,
    )
    assert (config["ENGAGE_RETENTION_DAYS"], config["TWILIO_TIMEOUT"]) == (400, 2.5)
    assert config["ENGAGE_WORKER_BURST"] is True
