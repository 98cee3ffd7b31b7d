"""Signed-in sessions kept on the server, so that signing out (or an account change) ends them."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from engage.db import rows_matched
from engage.models import User, UserSession

IDLE_LIMIT = timedelta(hours=12)
AGE_LIMIT = timedelta(days=7)
# last_seen_at is written at most this often: a page's every request need not write a row.
TOUCH_EVERY = timedelta(minutes=1)


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def user_stamp(user: User) -> str:
    """A fingerprint of what a session was granted on: the password (hash) and the role."""
    return hashlib.sha256(f"{user.password_hash}\0{user.role}".encode()).hexdigest()


def start_session(session: Session, user: User, now: datetime) -> str:
    """A new session for a user who just signed in; returns the token for the cookie."""
    token = secrets.token_urlsafe(32)
    session.add(
        UserSession(
            token_hash=_hash(token),
            user_id=user.id,
            user_stamp=user_stamp(user),
            created_at=now,
            last_seen_at=now,
        )
    )
    session.flush()
    return token


def find_session(session: Session, token: str) -> UserSession | None:
    """The open session of a token, if any."""
    return session.scalar(
        select(UserSession).where(
            UserSession.token_hash == _hash(token), UserSession.ended_at.is_(None)
        )
    )


def is_session_live(row: UserSession, user: User | None, now: datetime) -> bool:
    """Still usable: the account active and unchanged, not idle 12 hours, not 7 days old."""
    return (
        user is not None
        and user.is_active
        and hmac.compare_digest(row.user_stamp, user_stamp(user))
        and now - row.last_seen_at <= IDLE_LIMIT
        and now - row.created_at <= AGE_LIMIT
    )


def should_touch(row: UserSession, now: datetime) -> bool:
    return now - row.last_seen_at >= TOUCH_EVERY


def touch_session(session: Session, session_id: int, now: datetime) -> None:
    """Record activity, which keeps the session from ending idle."""
    session.execute(
        update(UserSession).where(UserSession.id == session_id).values(last_seen_at=now)
    )


def end_session(session: Session, token: str, now: datetime) -> None:
    """Sign-out: the token opens nothing any more, wherever a copy of the cookie is."""
    session.execute(
        update(UserSession)
        .where(UserSession.token_hash == _hash(token), UserSession.ended_at.is_(None))
        .values(ended_at=now)
    )


def end_session_by_id(session: Session, session_id: int, now: datetime) -> None:
    session.execute(
        update(UserSession)
        .where(UserSession.id == session_id, UserSession.ended_at.is_(None))
        .values(ended_at=now)
    )


def end_user_sessions(session: Session, user_id: int, now: datetime) -> int:
    """End every open session of a user (password or role changed, account deactivated)."""
    result = session.execute(
        update(UserSession)
        .where(UserSession.user_id == user_id, UserSession.ended_at.is_(None))
        .values(ended_at=now)
    )
    return rows_matched(result)
