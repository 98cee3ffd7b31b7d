"""Accounts: creating users, set-password links, signing in (slowed after failures), and the
audit trail."""

from __future__ import annotations

import hashlib
import ipaddress
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from engage.db import insert_ignoring_conflicts, table_of, utcnow
from engage.models import AuditEntry, SignInFailure, User
from engage.models.users import ROLES
from engage.services.sessions import end_user_sessions, start_session

MIN_PASSWORD_LENGTH = 12
MAX_EMAIL_LENGTH = 254
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# C0 and C1 control characters: no e-mail address holds one, and PostgreSQL refuses NUL.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
# Free tries before waiting: per account from one client, and per client over all accounts
# (higher, for offices behind one address). Nobody elsewhere can slow an account's owner.
FREE_TRIES = {"account": 3, "client": 20}
MAX_WAIT = timedelta(minutes=5)
# A set-password link (made by an admin, no e-mail involved) works once, for this long.
PASSWORD_LINK_LIFETIME = timedelta(hours=72)
# Longer than any token this module makes: a longer one is not looked up at all.
MAX_TOKEN_LENGTH = 100


@cache
def _dummy_hash() -> str:
    """Checked when the account does not exist, so a miss costs the same time as a wrong
    password. Made at the first sign-in attempt, not at import: every process (web, worker,
    CLI) would otherwise pay a scrypt, ~0.1 s, before doing anything."""
    return generate_password_hash("not a real password", method="scrypt")


class AccountError(ValueError):
    """A user that cannot be created or changed as asked.

    `reason` names the rule for pages that say it in the reader's language: `email`, `role`,
    `password`, `exists`, `no_account`, `self`, `totp_set`.
    """

    def __init__(self, message: str, *, reason: str = "") -> None:
        super().__init__(message)
        self.reason = reason


class PasswordLinkError(AccountError):
    """A set-password link that opens nothing: unknown, already used, or expired."""

    def __init__(self, message: str, *, is_expired: bool) -> None:
        super().__init__(message, reason="expired" if is_expired else "unknown")
        self.is_expired = is_expired


@dataclass(frozen=True)
class SignIn:
    user: User | None
    retry_after: float = 0.0


def is_possible_email(text: str) -> bool:
    """Could be an account's e-mail: not too long, and no control character (NUL included)."""
    return len(text) <= MAX_EMAIL_LENGTH and not _CONTROL.search(text)


def hash_password(password: str) -> str:
    return generate_password_hash(password, method="scrypt")


def create_user(
    session: Session, email: str, password: str, role: str, *, actor: str = "system"
) -> User:
    """A new account, audited; the password is only ever stored hashed (scrypt)."""
    _check_password(password)
    user = _add_user(session, email, role, hash_password(password))
    record_account_change(session, actor=actor, action="create_user", account=user, role=role)
    return user


def invite_user(
    session: Session, email: str, role: str, *, actor: str, now: datetime
) -> tuple[User, str]:
    """A new account with no usable password yet, and the token of the one-time link that
    sets one (for the admin to hand over); audited without the token."""
    _check_role(role)
    user = _add_user(session, email, role, _unusable_password_hash())
    token = _issue_password_link(user, now)
    session.flush()
    record_account_change(
        session,
        actor=actor,
        action="create_user",
        account=user,
        role=role,
        link_expires_at=_minute(user.password_token_expires_at),
    )
    return user, token


def _add_user(session: Session, email: str, role: str, password_hash: str) -> User:
    email = email.strip().lower()
    if not _EMAIL.match(email) or not is_possible_email(email):
        raise AccountError(f"{email!r} is not an e-mail address", reason="email")
    _check_role(role)
    if session.scalar(select(User.id).where(User.email == email)) is not None:
        raise AccountError(f"{email} already has an account", reason="exists")
    user = User(email=email, password_hash=password_hash, role=role)
    session.add(user)
    session.flush()
    return user


def _check_role(role: str) -> None:
    if role not in ROLES:
        raise AccountError(f"role must be one of {', '.join(ROLES)}", reason="role")


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(
            f"the password needs at least {MIN_PASSWORD_LENGTH} characters", reason="password"
        )


def _unusable_password_hash() -> str:
    """The hash of a password nobody knows: the account opens only through its link, and a
    sign-in attempt costs the same time as for any other account."""
    return hash_password(secrets.token_urlsafe(32))


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _minute(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment else ""


def _issue_password_link(user: User, now: datetime) -> str:
    """A new link for the account (any earlier one stops working); only its hash is kept."""
    token = secrets.token_urlsafe(32)
    user.password_token_hash = _token_hash(token)
    user.password_token_expires_at = now + PASSWORD_LINK_LIFETIME
    return token


def reset_password(session: Session, user: User, *, actor: str, now: datetime) -> str:
    """The account's password stops working and its sessions end; returns the token of a new
    one-time link that sets the next password. Audited without the token."""
    if not user.is_active:
        raise AccountError(f"{user.email} is deactivated", reason="inactive")
    user.password_hash = _unusable_password_hash()
    token = _issue_password_link(user, now)
    session.flush()
    end_user_sessions(session, user.id, now)
    record_account_change(
        session,
        actor=actor,
        action="reset_password",
        account=user,
        link_expires_at=_minute(user.password_token_expires_at),
    )
    return token


def find_password_link(
    session: Session, token: str, now: datetime, *, for_update: bool = False
) -> User:
    """The account a set-password link opens; PasswordLinkError when it opens none (unknown,
    used, expired, or the account deactivated)."""
    user = None
    if 0 < len(token) <= MAX_TOKEN_LENGTH and token.isascii():
        query = select(User).where(User.password_token_hash == _token_hash(token))
        user = session.scalar(query.with_for_update() if for_update else query)
    if user is None or not user.is_active:
        raise PasswordLinkError("no such link, or it was used", is_expired=False)
    expires_at = user.password_token_expires_at
    if expires_at is None or expires_at <= now:
        raise PasswordLinkError("the link expired", is_expired=True)
    return user


def use_password_link(session: Session, token: str, password: str, *, now: datetime) -> User:
    """The password chosen through a link, which then opens nothing any more; every session
    of the account ends; audited (the person is the actor, the token is not recorded).

    The account's row is locked first: one link used twice at once sets one password.
    """
    user = find_password_link(session, token, now, for_update=True)
    set_password(session, user, password, actor=user.email, now=now)
    user.password_token_hash = None
    user.password_token_expires_at = None
    session.flush()
    return user


def find_user(session: Session, email: str) -> User:
    """The account of an e-mail address; AccountError when there is none."""
    user = (
        session.scalar(select(User).where(User.email == email.strip().lower()))
        if is_possible_email(email)
        else None
    )
    if user is None:
        raise AccountError(f"{email!r} has no account", reason="no_account")
    return user


def set_password(session: Session, user: User, password: str, *, actor: str, now: datetime) -> None:
    """A new password, audited; every session of the account ends (a thief's copy included)."""
    _check_password(password)
    user.password_hash = hash_password(password)
    session.flush()
    end_user_sessions(session, user.id, now)
    record_account_change(session, actor=actor, action="set_password", account=user)


def set_role(session: Session, user: User, role: str, *, actor: str, now: datetime) -> None:
    """A new role, audited; open sessions end, so no page goes on with the old one's rights."""
    _check_role(role)
    previous, user.role = user.role, role
    session.flush()
    end_user_sessions(session, user.id, now)
    record_account_change(
        session, actor=actor, action="set_role", account=user, role=role, previous_role=previous
    )


def deactivate_user(session: Session, user: User, *, actor: str, now: datetime) -> None:
    """The account can no longer sign in, its open sessions end now and its set-password
    link stops working; audited."""
    user.is_active = False
    user.password_token_hash = None
    user.password_token_expires_at = None
    session.flush()
    end_user_sessions(session, user.id, now)
    record_account_change(session, actor=actor, action="deactivate_user", account=user)


def reactivate_user(session: Session, user: User, *, actor: str) -> None:
    """A deactivated account may sign in again (with its password as it was); audited."""
    user.is_active = True
    session.flush()
    record_account_change(session, actor=actor, action="reactivate_user", account=user)


def check_not_own_lockout(
    acting: User, account: User, *, role: str | None = None, deactivate: bool = False
) -> None:
    """An admin never removes their own admin rights (nobody might be left to give them back):
    AccountError with reason `self`."""
    if acting.id != account.id:
        return
    if deactivate:
        raise AccountError("an admin cannot deactivate their own account", reason="self")
    if role is not None and role != "admin" and account.role == "admin":
        raise AccountError("an admin cannot take away their own admin role", reason="self")


def list_accounts(session: Session) -> list[User]:
    """Every account: active ones first, then by e-mail."""
    return list(session.scalars(select(User).order_by(User.is_active.desc(), User.email)))


def client_of(address: str) -> str:
    """The client behind an address: itself for IPv4, its /64 network for IPv6.

    One IPv6 host commonly holds a whole /64 and could try from a new address each time.
    """
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _keys(email: str, address: str) -> dict[str, str]:
    """Failure counters: this account from this client, and this client over all accounts."""
    client = client_of(address)
    return {
        "account": _digest(f"account\0{email.strip().lower()}\0{client}"),
        "client": _digest(f"client\0{client}"),
    }


def second_factor_keys(user_id: int, address: str) -> dict[str, str]:
    """Failure counters for codes: this account's codes from this client, and the client's
    counter shared with passwords (guessing codes or passwords, it is one client guessing)."""
    client = client_of(address)
    return {
        "account": _digest(f"second factor\0{user_id}\0{client}"),
        "client": _digest(f"client\0{client}"),
    }


@dataclass(frozen=True)
class Attempt:
    """One try at a secret (a password or a code) against the counters that slow guessing."""

    keys: dict[str, str]
    rows: dict[str, SignInFailure | None]
    retry_after: float


def begin_attempt(session: Session, keys: dict[str, str], now: datetime) -> Attempt:
    """The counters' rows (locked), and how many seconds the caller must still wait (0: none)."""
    rows = {
        kind: session.get(SignInFailure, key, with_for_update=True) for kind, key in keys.items()
    }
    retry_after = max(
        (
            (row.last_failure_at + _wait(row.failures, kind) - now).total_seconds()
            for kind, row in rows.items()
            if row is not None
        ),
        default=0.0,
    )
    return Attempt(keys, rows, retry_after)


def pass_attempt(session: Session, attempt: Attempt) -> None:
    """The secret was right: this account's counter from this client starts again."""
    account_row = attempt.rows["account"]
    if account_row is not None:
        session.delete(account_row)
    session.flush()


def fail_attempt(session: Session, attempt: Attempt, now: datetime) -> None:
    """The secret was wrong: one more failure on every counter."""
    for key in attempt.keys.values():
        _count_failure(session, key, now)
    session.flush()


def _count_failure(session: Session, key: str, now: datetime) -> None:
    """One more failure for a counter; two first failures at once both count, neither fails."""
    dialect = session.get_bind().dialect.name
    table = table_of(SignInFailure)
    session.execute(
        insert_ignoring_conflicts(dialect, table, "key").values(
            key=key, failures=0, last_failure_at=now
        )
    )
    session.execute(
        update(SignInFailure)
        .where(SignInFailure.key == key)
        .values(failures=SignInFailure.failures + 1, last_failure_at=now)
    )


def _wait(failures: int, kind: str) -> timedelta:
    extra = failures - FREE_TRIES[kind]
    if extra < 0:
        return timedelta(0)
    return min(timedelta(seconds=2**extra), MAX_WAIT)


def sign_in(
    session: Session, email: str, password: str, address: str, *, now: datetime | None = None
) -> SignIn:
    """Check a password; after repeated failures, ask the caller to wait before trying again.

    A right password is the first step only: `complete_sign_in` (after the second factor,
    when the account has one) records the sign-in and opens the session.
    """
    now = now or utcnow()
    attempt = begin_attempt(session, _keys(email, address), now)
    if attempt.retry_after > 0:
        return SignIn(None, attempt.retry_after)
    dummy = _dummy_hash()  # made (once) whether or not the account exists
    user = (
        session.scalar(select(User).where(User.email == email.strip().lower()))
        if is_possible_email(email)
        else None  # never sent to the database, which would refuse a NUL with an error
    )
    valid = check_password_hash(user.password_hash if user else dummy, password)
    if user is not None and valid and user.is_active:
        pass_attempt(session, attempt)
        return SignIn(user)
    fail_attempt(session, attempt, now)
    return SignIn(None)


def complete_sign_in(session: Session, user: User, now: datetime) -> str:
    """Every step passed: the sign-in is recorded and a session opened; returns its token."""
    user.last_login_at = now
    session.flush()
    return start_session(session, user, now)


def record_download(
    session: Session,
    *,
    user: User | None,
    actor: str,
    survey_id: str,
    parameters: dict[str, Any],
    action: str = "download",
) -> AuditEntry:
    """One line of the audit trail: who downloaded what, when, with which parameters."""
    entry = AuditEntry(
        user_id=user.id if user else None,
        actor=actor,
        action=action,
        survey_id=survey_id,
        parameters=parameters,
    )
    session.add(entry)
    session.flush()
    return entry


def record_account_change(
    session: Session, *, actor: str, action: str, account: User, **parameters: str
) -> AuditEntry:
    """One line of the audit trail: an account created or changed (never a password)."""
    entry = AuditEntry(
        user_id=None,
        actor=actor,
        action=action,
        survey_id=None,
        parameters={"account": account.email, **parameters},
    )
    session.add(entry)
    session.flush()
    return entry


def record_publish(
    session: Session,
    *,
    actor: str,
    survey_id: str,
    action: str,
    version: str,
    user: User | None = None,
    **parameters: str,
) -> AuditEntry:
    """One line of the audit trail: a survey version published, or a survey deactivated,
    retired, copied or its draft deleted (from the staff pages: by `user`)."""
    entry = AuditEntry(
        user_id=user.id if user else None,
        actor=actor,
        action="publish" if action == "published" else action,
        survey_id=survey_id,
        parameters={"version": version, **parameters},
    )
    session.add(entry)
    session.flush()
    return entry


def record_erasure(session: Session, *, actor: str, contact_id: int | None, by: str) -> AuditEntry:
    """One line of the audit trail: a contact erased (its pseudonym: nothing else is left), or
    an erasure that found no contact (asking is itself a look-up of a number: audited too)."""
    entry = AuditEntry(
        user_id=None,
        actor=actor,
        action="erase",
        survey_id=None,
        parameters={
            "contact": f"contact-{contact_id}" if contact_id is not None else "none found",
            "by": by,
        },
    )
    session.add(entry)
    session.flush()
    return entry


def audit_trail(session: Session, *, limit: int = 500) -> list[AuditEntry]:
    return list(session.scalars(select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)))
