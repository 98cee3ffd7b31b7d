"""Accounts: creating users, signing in (slowed after failures), and the audit trail."""

from __future__ import annotations

import hashlib
import ipaddress
import re
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
from engage.services.sessions import end_user_sessions

MIN_PASSWORD_LENGTH = 12
MAX_EMAIL_LENGTH = 254
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# C0 and C1 control characters: no e-mail address holds one, and PostgreSQL refuses NUL.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
# Free tries before waiting: per account from one client, and per client over all accounts
# (higher, for offices behind one address). Nobody elsewhere can slow an account's owner.
FREE_TRIES = {"account": 3, "client": 20}
MAX_WAIT = timedelta(minutes=5)


@cache
def _dummy_hash() -> str:
    """Checked when the account does not exist, so a miss costs the same time as a wrong
    password. Made at the first sign-in attempt, not at import: every process (web, worker,
    CLI) would otherwise pay a scrypt, ~0.1 s, before doing anything."""
    return generate_password_hash("not a real password", method="scrypt")


class AccountError(ValueError):
    """A user that cannot be created as asked."""


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
    email = email.strip().lower()
    if not _EMAIL.match(email) or not is_possible_email(email):
        raise AccountError(f"{email!r} is not an e-mail address")
    if role not in ROLES:
        raise AccountError(f"role must be one of {', '.join(ROLES)}")
    _check_password(password)
    if session.scalar(select(User.id).where(User.email == email)) is not None:
        raise AccountError(f"{email} already has an account")
    user = User(email=email, password_hash=hash_password(password), role=role)
    session.add(user)
    session.flush()
    record_account_change(session, actor=actor, action="create_user", account=user, role=role)
    return user


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(f"the password needs at least {MIN_PASSWORD_LENGTH} characters")


def find_user(session: Session, email: str) -> User:
    """The account of an e-mail address; AccountError when there is none."""
    user = (
        session.scalar(select(User).where(User.email == email.strip().lower()))
        if is_possible_email(email)
        else None
    )
    if user is None:
        raise AccountError(f"{email!r} has no account")
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
    if role not in ROLES:
        raise AccountError(f"role must be one of {', '.join(ROLES)}")
    previous, user.role = user.role, role
    session.flush()
    end_user_sessions(session, user.id, now)
    record_account_change(
        session, actor=actor, action="set_role", account=user, role=role, previous_role=previous
    )


def deactivate_user(session: Session, user: User, *, actor: str, now: datetime) -> None:
    """The account can no longer sign in, and its open sessions end now; audited."""
    user.is_active = False
    session.flush()
    end_user_sessions(session, user.id, now)
    record_account_change(session, actor=actor, action="deactivate_user", account=user)


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


def _keys(email: str, address: str) -> dict[str, str]:
    """Failure counters: this account from this client, and this client over all accounts."""

    def digest(text: str) -> str:
        return hashlib.sha256(text.encode()).hexdigest()

    client = client_of(address)
    return {
        "account": digest(f"account\0{email.strip().lower()}\0{client}"),
        "client": digest(f"client\0{client}"),
    }


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
    """Check a password; after repeated failures, ask the caller to wait before trying again."""
    now = now or utcnow()
    keys = _keys(email, address)
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
    if retry_after > 0:
        return SignIn(None, retry_after)
    dummy = _dummy_hash()  # made (once) whether or not the account exists
    user = (
        session.scalar(select(User).where(User.email == email.strip().lower()))
        if is_possible_email(email)
        else None  # never sent to the database, which would refuse a NUL with an error
    )
    valid = check_password_hash(user.password_hash if user else dummy, password)
    if user is not None and valid and user.is_active:
        account_row = rows["account"]
        if account_row is not None:
            session.delete(account_row)
        user.last_login_at = now
        session.flush()
        return SignIn(user)
    for key in keys.values():
        _count_failure(session, key, now)
    session.flush()
    return SignIn(None)


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
