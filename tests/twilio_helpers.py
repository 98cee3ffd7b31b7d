"""Helpers for tests of the Twilio channel: signed posts, apps wired to the fake Twilio."""

from __future__ import annotations

import secrets
from pathlib import Path
from urllib.parse import urlencode

from twilio.request_validator import RequestValidator

PUBLIC_URL = "https://engage.example.org"
OUR_NUMBER = "+15005550006"


def new_sid(prefix: str = "SM") -> str:
    return prefix + secrets.token_hex(16)


def inbound_form(phone: str, body: str, *, sid: str | None = None, to: str = OUR_NUMBER, **extra):
    channel = "whatsapp:" if phone.startswith("whatsapp:") else ""
    return {
        "MessageSid": sid or new_sid(),
        "SmsSid": sid or "",
        "AccountSid": "AC" + "a" * 32,
        "From": phone,
        "To": f"{channel}{to}",
        "Body": body,
        "NumMedia": "0",
        "NumSegments": "1",
        "ApiVersion": "2010-04-01",
        **extra,
    }


def signature(token: str, url: str, form: dict) -> str:
    return RequestValidator(token).compute_signature(url, form)


def post_signed(client, token: str, path: str, form: dict, *, url_base: str = PUBLIC_URL, **kw):
    """POST a form the way Twilio does: signed over the public URL it called."""
    url = url_base + path
    return client.post(
        path,
        data=urlencode(form),
        content_type="application/x-www-form-urlencoded",
        headers={"X-Twilio-Signature": signature(token, url, form)},
        **kw,
    )


def twilio_overrides(fake, tmp_path: Path, **extra) -> dict:
    return {
        "TWILIO_ACCOUNT_SID": fake.account_sid,
        "TWILIO_AUTH_TOKEN": fake.auth_token,
        "ENGAGE_PUBLIC_URL": PUBLIC_URL,
        "ENGAGE_TWILIO_API_URL": fake.base_url,
        "TWILIO_SMS_FROM": OUR_NUMBER,
        "TWILIO_WHATSAPP_FROM": f"whatsapp:{OUR_NUMBER}",
        "ENGAGE_SEND_RATE": "0",
        "TWILIO_TIMEOUT": 1.0,
        **extra,
    }
