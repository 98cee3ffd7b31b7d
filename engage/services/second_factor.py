"""The second factor: a TOTP code from an authenticator app, for staff and admins.

The secret is kept encrypted with the vault, together with the last time step whose code was
accepted: a code seen over someone's shoulder cannot be used again, even within its window.
Wrong codes are slowed by the same counters as wrong passwords.
"""

from __future__ import annotations

import hmac
import re
from datetime import datetime

import pyotp
from sqlalchemy.orm import Session

from engage.models import User
from engage.privacy import Vault
from engage.services.accounts import (
    AccountError,
    SignIn,
    begin_attempt,
    fail_attempt,
    pass_attempt,
    record_account_change,
    second_factor_keys,
)

# The roles whose accounts need a second factor where one is required.
ROLES_WITH_SECOND_FACTOR = ("admin", "staff")
_CODE = re.compile(r"^[0-9]{6}$")
# A step before and after the current one is accepted: a phone's clock may be a little off.
VALID_WINDOW = 1


def new_secret() -> str:
    """A fresh base32 secret for an authenticator app."""
    return pyotp.random_base32()


def provisioning_uri(secret: str, email: str, issuer: str) -> str:
    """The otpauth:// URI an authenticator app reads (as a QR code or pasted)."""
    return pyotp.TOTP(secret).provisioning_uri(name=email, issuer_name=issuer)


def has_second_factor(user: User) -> bool:
    return user.totp_secret_encrypted is not None


def should_enrol(user: User, *, is_required: bool) -> bool:
    """The account must set up a second factor before its sign-in can finish."""
    return is_required and user.role in ROLES_WITH_SECOND_FACTOR and not has_second_factor(user)


def needs_second_step(user: User, *, is_required: bool) -> bool:
    """A right password does not finish this account's sign-in: a code (or enrolment) follows."""
    return has_second_factor(user) or should_enrol(user, is_required=is_required)


def _seal(vault: Vault, secret: str, step: int) -> str:
    return vault.encrypt(f"{secret}:{step}")


def _unseal(vault: Vault, sealed: str) -> tuple[str, int]:
    secret, _, step = vault.decrypt(sealed).partition(":")
    return secret, int(step) if step else -1


def _matching_step(secret: str, code: str, now: datetime) -> int | None:
    """The time step whose code this is (within the window), else None."""
    code = code.replace(" ", "")
    if not _CODE.match(code):
        return None
    totp = pyotp.TOTP(secret)
    if not totp.verify(code, for_time=now, valid_window=VALID_WINDOW):
        return None
    current = totp.timecode(now)
    for offset in range(VALID_WINDOW, -VALID_WINDOW - 1, -1):  # the latest step first
        if hmac.compare_digest(totp.at(now, counter_offset=offset), code):
            return current + offset
    return None


def check_code(
    session: Session, user: User, code: str, address: str, *, vault: Vault, now: datetime
) -> SignIn:
    """The second step of a sign-in: the code of the account's secret, not used before.

    Wrong codes count as failed sign-ins (for this account from this client, and for the
    client); after repeated failures the caller is asked to wait, as for passwords.
    """
    attempt = begin_attempt(session, second_factor_keys(user.id, address), now)
    if attempt.retry_after > 0:
        return SignIn(None, attempt.retry_after)
    # Locked: the same code sent twice at once is taken once.
    session.refresh(user, with_for_update=True)
    sealed = user.totp_secret_encrypted
    if sealed is None:
        raise AccountError("the account has no second factor", reason="no_second_factor")
    secret, last_step = _unseal(vault, sealed)
    step = _matching_step(secret, code, now)
    if step is None or step <= last_step:
        fail_attempt(session, attempt, now)
        return SignIn(None)
    user.totp_secret_encrypted = _seal(vault, secret, step)
    pass_attempt(session, attempt)
    return SignIn(user)


def enrol(
    session: Session,
    user: User,
    secret: str,
    code: str,
    address: str,
    *,
    vault: Vault,
    now: datetime,
) -> SignIn:
    """Set up the account's second factor once its app shows a right code; audited.

    Wrong codes are slowed as in `check_code`. An account that already has a second factor
    keeps it (AccountError, reason `totp_set`): only an admin's reset clears it.
    """
    attempt = begin_attempt(session, second_factor_keys(user.id, address), now)
    if attempt.retry_after > 0:
        return SignIn(None, attempt.retry_after)
    session.refresh(user, with_for_update=True)
    if has_second_factor(user):
        raise AccountError("the account already has a second factor", reason="totp_set")
    step = _matching_step(secret, code, now)
    if step is None:
        fail_attempt(session, attempt, now)
        return SignIn(None)
    user.totp_secret_encrypted = _seal(vault, secret, step)
    pass_attempt(session, attempt)
    record_account_change(session, actor=user.email, action="set_up_totp", account=user)
    return SignIn(user)


def reset_second_factor(session: Session, user: User, *, actor: str) -> None:
    """Clear the account's second factor (a lost phone); it sets up a new one at its next
    sign-in where one is required. Audited."""
    user.totp_secret_encrypted = None
    session.flush()
    record_account_change(session, actor=actor, action="reset_totp", account=user)
