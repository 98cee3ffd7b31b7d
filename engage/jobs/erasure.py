"""Erasure's work outside the conversation step: by staff or the CLI, and the clock's part."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime

from flask import current_app

from engage import db
from engage.db import utcnow
from engage.privacy import parse_sender
from engage.services import erasure

log = logging.getLogger(__name__)


def erase(
    contact_ids: Iterable[int], *, by: str, now: datetime | None = None
) -> list[erasure.Erased]:
    """Erase contacts, one transaction each, then their dead letters; what was erased."""
    done = []
    for contact_id in contact_ids:
        with db.engine().begin() as connection:
            erased = erasure.erase_contact(connection, contact_id, by=by, now=now)
        if erased is not None:
            done.append(erased)
    forget_dead_letters(done)
    return done


def forget_dead_letters(erased: Iterable[erasure.Erased]) -> int:
    """Remove the spool's dead letters from erased contacts' numbers (this host's spool)."""
    hashes = {e.phone_hash for e in erased}
    if not hashes:
        return 0
    from engage.jobs.inbound import spool

    vault = current_app.extensions["engage.vault"]

    def is_theirs(entry: dict) -> bool:
        sender = parse_sender(str(entry.get("From") or ""))
        return sender.e164 is not None and vault.phone_hash(sender.e164) in hashes

    removed = spool().forget_dead_letters(is_theirs)
    if removed:
        log.info("spool: %d dead letter(s) of erased contacts removed", removed)
    return removed


def run_erasure_clock(now: datetime | None = None) -> dict[str, int]:
    """Retention, the addresses of sent erasure confirmations, and deletions at Twilio."""
    from engage.jobs.send import message_sender

    now = now or utcnow()
    counts = {"retention": 0}
    days = current_app.config["ENGAGE_RETENTION_DAYS"]
    if days:
        with db.engine().begin() as connection:
            inactive = erasure.inactive_contacts(connection, days=days, now=now)
        counts["retention"] = len(erase(inactive, by=erasure.BY_RETENTION, now=now))
    with db.engine().begin() as connection:
        counts["confirmations"] = erasure.forget_erasure_confirmations(connection, now=now)
        due = erasure.due_deletions(connection, now=now)
    counts["deleted"] = 0
    if due:
        sender = message_sender()
        with db.engine().begin() as connection:
            counts["deleted"] = erasure.delete_at_twilio(connection, sender, due, now=now).deleted
    return counts
