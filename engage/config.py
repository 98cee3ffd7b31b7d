"""Settings from the environment, read and checked once, inside create_app."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parent.parent
LOCALES_DIR = ROOT / "locales"


class ConfigError(RuntimeError):
    """The configuration cannot work; the message says what to set."""


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw in (None, ""):
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}") from None


def _quiet_hours(raw: str) -> tuple[int, int]:
    try:
        start, end = (int(part) for part in raw.split("-"))
    except ValueError:
        raise ConfigError(f"ENGAGE_QUIET_HOURS must look like 21-8, got {raw!r}") from None
    if not (0 <= start <= 23 and 0 <= end <= 23):
        raise ConfigError(f"ENGAGE_QUIET_HOURS hours must be 0-23, got {raw!r}")
    return start, end


def database_url(raw: str) -> str:
    """Platforms write postgres:// or postgresql://; SQLAlchemy needs the psycopg 3 driver named."""
    for prefix in ("postgres://", "postgresql://"):
        if raw.startswith(prefix):
            return "postgresql+psycopg://" + raw[len(prefix) :]
    return raw


def _instance_secret(instance: Path, name: str, make: Any) -> str:
    """A development secret generated once into the instance folder, so restarts keep it."""
    path = instance / name
    if not path.exists():
        instance.mkdir(parents=True, exist_ok=True)
        path.write_text(make())
        path.chmod(0o600)
    return path.read_text().strip()


def load(env: Mapping[str, str], instance_path: str | Path) -> dict[str, Any]:
    """Flask config keys from the environment; raises ConfigError when production lacks a must."""
    instance = Path(instance_path)
    environment = env.get("ENGAGE_ENV", "production")
    if environment not in ("production", "development"):
        raise ConfigError(f"ENGAGE_ENV must be production or development, got {environment!r}")
    is_production = environment == "production"

    missing = []
    account_sid = env.get("TWILIO_ACCOUNT_SID", "")
    auth_token = env.get("TWILIO_AUTH_TOKEN", "")
    public_url = env.get("ENGAGE_PUBLIC_URL", "").rstrip("/")
    secret_key = env.get("ENGAGE_SECRET_KEY", "")
    pii_key = env.get("ENGAGE_PII_KEY", "")
    db_url = env.get("DATABASE_URL", "")
    if is_production:
        for name, value in (
            ("ENGAGE_SECRET_KEY", secret_key),
            ("ENGAGE_PII_KEY", pii_key),
            ("TWILIO_ACCOUNT_SID", account_sid),
            ("TWILIO_AUTH_TOKEN", auth_token),
            ("ENGAGE_PUBLIC_URL", public_url),
            ("DATABASE_URL", db_url),
        ):
            if not value:
                missing.append(name)
        if missing:
            raise ConfigError(
                "production needs " + ", ".join(missing) + " (set ENGAGE_ENV=development "
                "for a local demo)"
            )
    else:
        secret_key = secret_key or _instance_secret(
            instance, "secret_key", lambda: secrets.token_hex(32)
        )
        pii_key = pii_key or _instance_secret(
            instance, "pii_key", lambda: Fernet.generate_key().decode()
        )
        db_url = db_url or f"sqlite:///{instance / 'engage.db'}"
    try:
        Fernet(pii_key.encode())
    except (ValueError, TypeError):
        raise ConfigError(
            "ENGAGE_PII_KEY must be a Fernet key (32 url-safe base64 bytes); make one with "
            'python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key())"'
        ) from None

    api_url = env.get("ENGAGE_TWILIO_API_URL", "").rstrip("/")
    if api_url and is_production and not api_url.startswith("https://"):
        raise ConfigError("ENGAGE_TWILIO_API_URL must be https:// in production")
    send_rate = env.get("ENGAGE_SEND_RATE")
    send_concurrency = _int(env, "ENGAGE_SEND_CONCURRENCY", 4)
    if not 1 <= send_concurrency <= 64:
        raise ConfigError(
            "ENGAGE_SEND_CONCURRENCY must be from 1 to 64 (sends in flight per worker)"
        )
    return {
        "ENGAGE_ENV": environment,
        "IS_PRODUCTION": is_production,
        "SECRET_KEY": secret_key,
        "ENGAGE_PII_KEY": pii_key,
        "DATABASE_URL": database_url(db_url),
        "REDIS_URL": env.get("REDIS_URL", ""),
        "ENGAGE_PUBLIC_URL": public_url,
        "TWILIO_ACCOUNT_SID": account_sid,
        "TWILIO_AUTH_TOKEN": auth_token,
        "TWILIO_SMS_FROM": env.get("TWILIO_SMS_FROM", ""),
        "TWILIO_WHATSAPP_FROM": env.get("TWILIO_WHATSAPP_FROM", ""),
        "ENGAGE_TWILIO_API_URL": api_url,
        "ENGAGE_SEND_RATE": None if send_rate in (None, "") else _int(env, "ENGAGE_SEND_RATE", 0),
        "ENGAGE_SEND_CONCURRENCY": send_concurrency,
        "ENGAGE_SURVEYS_DIR": str(Path(env.get("ENGAGE_SURVEYS_DIR", "surveys"))),
        "ENGAGE_LOCALES_DIR": str(LOCALES_DIR),
        "ENGAGE_ORG_NAME": env.get("ENGAGE_ORG_NAME", "Engage"),
        "ENGAGE_DEFAULT_REGION": env.get("ENGAGE_DEFAULT_REGION", "US"),
        "ENGAGE_IDLE_HOURS": _int(env, "ENGAGE_IDLE_HOURS", 72),
        "ENGAGE_QUIET_HOURS": _quiet_hours(env.get("ENGAGE_QUIET_HOURS", "21-8")),
        "ENGAGE_SPOOL_DIR": env.get("ENGAGE_SPOOL_DIR", str(instance / "spool")),
        "ENGAGE_MIN_CELL": _int(env, "ENGAGE_MIN_CELL", 11),
        "ENGAGE_MIN_PERCENT_BASE": _int(env, "ENGAGE_MIN_PERCENT_BASE", 30),
        "ENGAGE_ROUND_BASE": _int(env, "ENGAGE_ROUND_BASE", 5),
        "SESSION_COOKIE_SECURE": is_production,
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
    }
