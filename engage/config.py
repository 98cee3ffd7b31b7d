"""Settings from the environment, read and checked once, inside create_app."""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parent.parent
LOCALES_DIR = ROOT / "locales"


class ConfigError(RuntimeError):
    """The configuration cannot work; the message says what to set."""


MIN_SECRET_KEY_LENGTH = 32
# Words that sample configurations and tutorials put where a secret belongs: a key made of them
# (or containing one of the longer phrases) was copied, not generated.
PLACEHOLDER_SECRETS = frozenset(
    {"changeme", "secret", "secretkey", "dev", "development", "test", "testing", "password"}
    | {"default", "example", "insecure", "flask", "engage", "key", "xxx", "todo"}
)
PLACEHOLDER_PHRASES = (
    "changeme",
    "changethis",
    "replaceme",
    "placeholder",
    "notsecret",
    "yoursecret",
)
# The floors below which published counts could identify a worker (docs/disclosure-control.md).
PRODUCTION_MIN_CELL = 5
PRODUCTION_MIN_ROUND_BASE = 3


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw in (None, ""):
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}") from None


def _seconds(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw in (None, ""):
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number of seconds, got {raw!r}") from None
    if value <= 0:
        raise ConfigError(f"{name} must be more than 0 seconds, got {raw!r}")
    return value


def _flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name} must be 1 or 0 (true or false), got {raw!r}")


def _require_totp(env: Mapping[str, str], is_production: bool) -> bool:
    """Staff and admins sign in with a TOTP code: always in production, by choice elsewhere."""
    required = _flag(env, "ENGAGE_REQUIRE_TOTP", is_production)
    if is_production and not required:
        raise ConfigError(
            "ENGAGE_REQUIRE_TOTP cannot be turned off in production: staff and admin accounts "
            "sign in with a second factor (unset it)"
        )
    return required


def _quiet_hours(raw: str) -> tuple[int, int]:
    try:
        start, end = (int(part) for part in raw.split("-"))
    except ValueError:
        raise ConfigError(f"ENGAGE_QUIET_HOURS must look like 21-8, got {raw!r}") from None
    if not (0 <= start <= 23 and 0 <= end <= 23):
        raise ConfigError(f"ENGAGE_QUIET_HOURS hours must be 0-23, got {raw!r}")
    return start, end


def _is_placeholder(key: str) -> bool:
    """A known placeholder, alone, repeated or inside the key (case and punctuation ignored)."""
    letters = re.sub(r"[^a-z0-9]", "", key.lower())
    unit = re.fullmatch(r"(.+?)\1*", letters)
    return (
        letters in PLACEHOLDER_SECRETS
        or (unit is not None and (unit.group(1) in PLACEHOLDER_SECRETS or len(unit.group(1)) < 4))
        or any(phrase in letters for phrase in PLACEHOLDER_PHRASES)
    )


def _check_secret_key(secret_key: str) -> None:
    """Production signs sessions with this key: it must be long and really secret."""
    how = 'make one with python -c "import secrets; print(secrets.token_hex(32))"'
    if len(secret_key) < MIN_SECRET_KEY_LENGTH:
        raise ConfigError(
            f"ENGAGE_SECRET_KEY is {len(secret_key)} characters long; production needs at least "
            f"{MIN_SECRET_KEY_LENGTH} random ones ({how})"
        )
    if _is_placeholder(secret_key):
        raise ConfigError(f"ENGAGE_SECRET_KEY looks like a placeholder, not a secret ({how})")


def _check_public_url(public_url: str) -> None:
    """Session cookies are Secure in production: the site must be served over https."""
    parts = urlsplit(public_url)
    if parts.scheme != "https" or not parts.netloc:
        raise ConfigError(
            f"ENGAGE_PUBLIC_URL must be an https:// URL in production, got {public_url!r}"
        )


def _check_database(db_url: str) -> None:
    """SQLite is the embedded demo: one host, no backups, a file beside the code."""
    if db_url.lower().startswith("sqlite"):
        raise ConfigError("DATABASE_URL must be PostgreSQL in production, not SQLite")


def _is_debug_on(env: Mapping[str, str]) -> bool:
    """FLASK_DEBUG as Flask reads it: anything but empty, 0, false or no turns it on."""
    value = env.get("FLASK_DEBUG", "").strip().lower()
    return bool(value) and value not in ("0", "false", "no")


def _check_debug(env: Mapping[str, str]) -> None:
    """The debugger runs any code its visitor types; it must never face the internet."""
    if _is_debug_on(env):
        raise ConfigError("FLASK_DEBUG is on: production never runs the debugger (unset it)")


def _check_disclosure(min_cell: int, min_percent_base: int, round_base: int) -> None:
    """Disclosure parameters that cannot work anywhere (0 used to crash every export)."""
    if min_cell < 2:
        raise ConfigError(f"ENGAGE_MIN_CELL must be at least 2, got {min_cell}")
    if round_base < 1:
        raise ConfigError(f"ENGAGE_ROUND_BASE must be at least 1, got {round_base}")
    if min_percent_base < 0:
        raise ConfigError(f"ENGAGE_MIN_PERCENT_BASE cannot be negative, got {min_percent_base}")


def _check_production_disclosure(min_cell: int, round_base: int) -> None:
    """Production publishes to the policy team: counts this small could point at a worker."""
    if min_cell < PRODUCTION_MIN_CELL:
        raise ConfigError(
            f"ENGAGE_MIN_CELL must be at least {PRODUCTION_MIN_CELL} in production, got {min_cell}"
        )
    if not PRODUCTION_MIN_ROUND_BASE <= round_base <= min_cell:
        raise ConfigError(
            f"ENGAGE_ROUND_BASE must be from {PRODUCTION_MIN_ROUND_BASE} to ENGAGE_MIN_CELL "
            f"({min_cell}) in production, got {round_base}"
        )


# A WhatsApp Content template's SID, as Twilio's console shows it.
_CONTENT_SID = re.compile(r"HX[0-9a-fA-F]{32}")


def _reply_template(env: Mapping[str, str]) -> str:
    """The template staff replies use outside WhatsApp's 24-hour window; empty: none."""
    sid = env.get("ENGAGE_WHATSAPP_REPLY_TEMPLATE", "").strip()
    if sid and not _CONTENT_SID.fullmatch(sid):
        raise ConfigError(
            "ENGAGE_WHATSAPP_REPLY_TEMPLATE must be a Content SID (HX followed by 32 hexadecimal "
            f"digits), got {sid!r}"
        )
    return sid


def _call_rate(env: Mapping[str, str]) -> float:
    """Outbound calls per second per caller ID (Twilio queues calls beyond its own limit)."""
    raw = env.get("ENGAGE_CALL_RATE", "")
    try:
        rate = float(raw) if raw else 1.0
    except ValueError:
        raise ConfigError(f"ENGAGE_CALL_RATE must be calls per second, got {raw!r}") from None
    if rate <= 0:
        raise ConfigError(f"ENGAGE_CALL_RATE must be more than 0, got {raw!r}")
    return rate


def _hotline(env: Mapping[str, str]) -> str:
    """The help line a caller is connected to by pressing 0, in E.164."""
    number = env.get("ENGAGE_HOTLINE_NUMBER", "").strip() or "+18883737888"
    if not re.fullmatch(r"\+[1-9][0-9]{7,14}", number):
        raise ConfigError(f"ENGAGE_HOTLINE_NUMBER must be an E.164 number, got {number!r}")
    return number


def _trusted_proxies(env: Mapping[str, str]) -> int:
    proxies = _int(env, "ENGAGE_TRUSTED_PROXIES", 0)
    if proxies < 0:
        raise ConfigError(f"ENGAGE_TRUSTED_PROXIES cannot be negative, got {proxies}")
    return proxies


def database_url(raw: str) -> str:
    """Platforms write postgres:// or postgresql://; SQLAlchemy needs the psycopg 3 driver named."""
    for prefix in ("postgres://", "postgresql://"):
        if raw.startswith(prefix):
            return "postgresql+psycopg://" + raw[len(prefix) :]
    return raw


def make_private_folder(path: Path) -> None:
    """A folder only its owner can enter (0700), made if missing, tightened if we own it."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    if path.stat().st_uid == os.getuid() and path.stat().st_mode & 0o077:
        path.chmod(0o700)  # mkdir's mode is cut by the umask, and an old folder may be open


def _instance_secret(instance: Path, name: str, make: Any) -> str:
    """A development secret generated once into the instance folder, so restarts keep it."""
    path = instance / name
    if not path.exists():
        make_private_folder(instance)
        # Created 0600: never readable by others, not even between writing and a chmod.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as file:
            file.write(make())
    return path.read_text().strip()


def survey_settings(env: Mapping[str, str]) -> dict[str, str]:
    """The settings `engage surveys check` needs, which runs without an app (and its secrets)."""
    return {
        "ENGAGE_SURVEYS_DIR": str(Path(env.get("ENGAGE_SURVEYS_DIR", "surveys"))),
        "ENGAGE_ORG_NAME": env.get("ENGAGE_ORG_NAME", "Engage"),
    }


def instance_path(env: Mapping[str, str]) -> str:
    """The instance folder (development keys, the SQLite file, the spool): known before the
    app is made, as Flask takes it when it is created."""
    explicit = env.get("INSTANCE_PATH") or env.get("ENGAGE_INSTANCE_PATH")
    return str(Path(explicit).resolve()) if explicit else str(Path.cwd() / "instance")


def load(env: Mapping[str, str], instance_path: str | Path) -> dict[str, Any]:
    """Flask config keys from the environment; ConfigError for a missing must or an unsafe value."""
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
    min_cell = _int(env, "ENGAGE_MIN_CELL", 11)
    min_percent_base = _int(env, "ENGAGE_MIN_PERCENT_BASE", 30)
    round_base = _int(env, "ENGAGE_ROUND_BASE", 5)
    _check_disclosure(min_cell, min_percent_base, round_base)
    if is_production:
        _check_secret_key(secret_key)
        _check_public_url(public_url)
        _check_database(db_url)
        _check_debug(env)
        _check_production_disclosure(min_cell, round_base)
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
    alert_webhook = env.get("ENGAGE_ALERT_WEBHOOK", "")
    if alert_webhook and is_production and not alert_webhook.startswith("https://"):
        raise ConfigError("ENGAGE_ALERT_WEBHOOK must be an https:// URL in production")
    retention_days = _int(env, "ENGAGE_RETENTION_DAYS", 0) or None
    if retention_days is not None and retention_days < 1:
        raise ConfigError("ENGAGE_RETENTION_DAYS must be a number of days (empty: never)")
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
        "TWILIO_VOICE_FROM": env.get("TWILIO_VOICE_FROM", ""),
        "ENGAGE_VOICE_CALLBACK": _flag(env, "ENGAGE_VOICE_CALLBACK", False),
        "ENGAGE_CALL_RATE": _call_rate(env),
        "ENGAGE_HOTLINE_NUMBER": _hotline(env),
        "ENGAGE_TWILIO_API_URL": api_url,
        "ENGAGE_SEND_RATE": None if send_rate in (None, "") else _int(env, "ENGAGE_SEND_RATE", 0),
        "ENGAGE_SEND_CONCURRENCY": send_concurrency,
        "ENGAGE_WORKER_BURST": bool(env.get("ENGAGE_WORKER_BURST")),
        "TWILIO_TIMEOUT": _seconds(env, "TWILIO_TIMEOUT", 10.0),
        **survey_settings(env),
        "ENGAGE_LOCALES_DIR": str(LOCALES_DIR),
        "ENGAGE_DEFAULT_REGION": env.get("ENGAGE_DEFAULT_REGION", "US"),
        "ENGAGE_IDLE_HOURS": _int(env, "ENGAGE_IDLE_HOURS", 72),
        "ENGAGE_ALERT_WEBHOOK": alert_webhook,
        "ENGAGE_WHATSAPP_REPLY_TEMPLATE": _reply_template(env),
        "ENGAGE_RETENTION_DAYS": retention_days,
        "ENGAGE_QUIET_HOURS": _quiet_hours(env.get("ENGAGE_QUIET_HOURS", "21-8")),
        "ENGAGE_SPOOL_DIR": env.get("ENGAGE_SPOOL_DIR", str(instance / "spool")),
        "ENGAGE_MIN_CELL": min_cell,
        "ENGAGE_MIN_PERCENT_BASE": min_percent_base,
        "ENGAGE_ROUND_BASE": round_base,
        "ENGAGE_TRUSTED_PROXIES": _trusted_proxies(env),
        "ENGAGE_REQUIRE_TOTP": _require_totp(env, is_production),
        "SESSION_COOKIE_SECURE": is_production,
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Strict",
    }
