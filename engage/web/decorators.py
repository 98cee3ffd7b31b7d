"""Checks that cut across views: Twilio's signature, sign-in and roles."""

from __future__ import annotations

import functools
import hmac
import logging
from collections.abc import Callable, Iterator
from typing import Any

from flask import abort, current_app, redirect, request, url_for
from flask_login import current_user
from twilio.request_validator import RequestValidator
from werkzeug.datastructures import MultiDict

log = logging.getLogger(__name__)

# Twilio's form posts are a few KB; anything much larger is not Twilio.
MAX_WEBHOOK_BYTES = 64 * 1024


def public_url() -> str:
    """The URL Twilio called: the configured public base + path + raw query string.

    Behind a TLS-terminating proxy request.url says http:// and the internal host, and the
    signature (computed by Twilio over the URL it called) would never match (docs/twilio.md §1).
    """
    base = current_app.config["ENGAGE_PUBLIC_URL"] or request.host_url.rstrip("/")
    query = request.query_string.decode("latin-1")
    return f"{base}{request.path}" + (f"?{query}" if query else "")


class _SignedParams:
    """A form as RequestValidator reads it: its names, and every value of a name (`getall`).

    Werkzeug's MultiDict has `getlist` only, and the validator finds it after an exception per
    field (two per field, as a plain dict)."""

    def __init__(self, form: MultiDict[str, str]) -> None:
        self._form = form

    def __iter__(self) -> Iterator[str]:
        return iter(self._form)

    def __len__(self) -> int:
        return len(self._form)

    def getall(self, name: str) -> list[str]:
        return self._form.getlist(name)


def is_signed_by_twilio(token: str, url: str, form: MultiDict[str, str], signature: str) -> bool:
    """RequestValidator.validate, with its usual answer first.

    `validate` always computes two HMACs, over the URL with and without its port (Twilio's own
    signing is inconsistent there); the signature over the URL as configured is nearly always
    the one, so it is checked first and the validator's full check runs only when it fails.
    """
    validator = RequestValidator(token)
    params = _SignedParams(form)
    if hmac.compare_digest(validator.compute_signature(url, params).encode(), signature.encode()):
        return True
    return validator.validate(url, params, signature)


def twilio_signed(view: Callable[..., Any]) -> Callable[..., Any]:
    """413 when too large, 403 unless X-Twilio-Signature is valid for the public URL."""

    @functools.wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if request.content_length is not None and request.content_length > MAX_WEBHOOK_BYTES:
            log.warning("webhook %s: %s bytes, refused", request.path, request.content_length)
            abort(413)
        token = current_app.config["TWILIO_AUTH_TOKEN"]
        if not token:
            # Only possible in development: production refuses to start without a token.
            return view(*args, **kwargs)
        signature = request.headers.get("X-Twilio-Signature", "")
        form = request.form  # reading the form enforces MAX_CONTENT_LENGTH (413) for chunked bodies
        if not signature or not is_signed_by_twilio(token, public_url(), form, signature):
            log.warning("webhook %s: bad or missing signature", request.path)
            abort(403)
        return view(*args, **kwargs)

    return wrapped


def role_required(*roles: str, is_download: bool = False) -> Callable[..., Any]:
    """Signed in with one of these roles: pages send strangers to /login, downloads say 401."""

    def decorator(view: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            if not current_user.is_authenticated:
                if is_download:
                    abort(401)
                return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
            if current_user.role not in roles:
                abort(403)
            return view(*args, **kwargs)

        return wrapped

    return decorator


EVERYONE = ("admin", "staff", "policy")
STAFF = ("admin", "staff")
ADMIN = ("admin",)
