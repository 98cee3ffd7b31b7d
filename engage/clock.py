"""The clock: periodic work in its own process (`engage clock`), or a thread of the development
server without Redis. Expiry, the outbox sweep, looking up lost answers, the spool, snapshots,
alerts, erasure's part (retention, deletions at Twilio), campaigns' (reminders, a scheduled
start, the end), call backs still waiting; erasure by staff or the CLI too."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime, timedelta

from flask import current_app

from engage import db
from engage.db import utcnow
from engage.intake import forget_dead_letters, replay_spooled
from engage.jobs import BULK, REPLIES, dispatch_call, dispatch_sends
from engage.jobs.alerts import retry_alerts
from engage.jobs.campaigns import run_campaign_clock
from engage.jobs.send import message_sender, reconcile
from engage.messaging import SendError
from engage.services import erasure, outbox, voice
from engage.services.contact_imports import forget_stale_uploads
from engage.services.inbox import release_held_replies
from engage.services.maintenance import expire_idle_conversations

log = logging.getLogger(__name__)

# A row this old and still pending was never handed to a worker (Redis was down at commit).
PENDING_GRACE = timedelta(seconds=60)
# A send begun this long ago and not finished lost its answer (a killed worker): look it up.
DISPATCH_GRACE = timedelta(minutes=2)


def run_periodic() -> dict[str, int]:
    """One round of periodic work; returns counts for the log."""
    counts: dict[str, int] = {}
    with db.transaction() as session:
        counts["expired"] = expire_idle_conversations(
            session, idle_hours=current_app.config["ENGAGE_IDLE_HOURS"]
        )
        dispatching = outbox.stale_dispatching_ids(session, older_than=DISPATCH_GRACE)
        released = release_held_replies(session, now=db.now())
    counts["held_replies_released"] = dispatch_sends(released) if released else 0
    counts["swept"] = sweep_pending()
    counts["looked_up"] = look_up_lost(dispatching)
    counts["replayed"] = replay_spool()
    counts["snapshots"] = take_snapshots()
    counts["alerts"] = retry_alerts()
    counts.update(run_erasure_clock())
    counts["uploads_forgotten"] = forget_uploads()
    counts.update(run_campaign_clock())
    counts["calls_placed"] = place_waiting_calls()
    if any(counts.values()):
        log.info("clock: %s", ", ".join(f"{k}={v}" for k, v in counts.items()))
    return counts


def place_waiting_calls() -> int:
    """Hand over again the call backs that are still waiting (Redis was down, or Twilio asked
    us to try later)."""
    with db.engine().begin() as connection:
        waiting = voice.calls_waiting(connection, older_than=PENDING_GRACE, now=db.now())
    return sum(dispatch_call(call_id) for call_id in waiting)


def forget_uploads() -> int:
    """Delete uploaded contact files nobody confirmed, and those of imports that died."""
    with db.transaction() as session:
        return forget_stale_uploads(session, utcnow())


def look_up_lost(message_ids: list[int]) -> int:
    """Look up at Twilio the rows whose answer was lost; how many were settled."""
    return sum(reconcile(message_id) in ("reconciled", "unconfirmed") for message_id in message_ids)


def sweep_pending(batch: int = 5000, max_rounds: int = 100) -> int:
    """Hand over every pending row that is due (a campaign's morning, or Redis was down)."""
    swept = 0
    after = 0
    for _ in range(max_rounds):
        with db.transaction() as session:
            pending = outbox.stale_pending_ids(
                session, older_than=PENDING_GRACE, limit=batch, after_id=after
            )
        for queue_name in (REPLIES, BULK):
            ids = [message_id for message_id, q in pending if q == queue_name]
            swept += dispatch_sends(ids, queue_name=queue_name) if ids else 0
        if len(pending) < batch:
            break
        after = pending[-1][0]
    return swept


def take_snapshots() -> int:
    """Each survey's daily results snapshot, where one is due (off the downloads: it is the
    costly part of results)."""
    from engage.services.results import report_rule, surveys_with_results, take_daily_snapshot

    rule = report_rule(current_app.config)
    with db.transaction() as session:
        survey_ids = surveys_with_results(session)
    taken = 0
    for survey_id in survey_ids:
        # A transaction each: a long count holds one survey's lock at a time.
        with db.transaction() as session:
            taken += take_daily_snapshot(session, survey_id, rule=rule) is not None
    return taken


def replay_spool() -> int:
    """Replay this host's spool of webhooks taken while the database was down."""
    return replay_spooled().replayed


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


def run_erasure_clock(now: datetime | None = None) -> dict[str, int]:
    """Retention, the addresses of sent erasure confirmations, and deletions at Twilio."""
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
    gone, waiting = _delete_at_twilio(due)
    if due:
        with db.engine().begin() as connection:
            erasure.record_deletions(connection, gone=gone, waiting=waiting, now=now)
    counts["deleted"] = len(gone)
    return counts


def _delete_at_twilio(sids: list[str]) -> tuple[list[str], list[str]]:
    """Ask Twilio to delete these messages, outside any transaction: (gone, to try later)."""
    sender = message_sender()
    gone: list[str] = []
    waiting: list[str] = []
    for sid in sids:
        try:
            is_gone = sender.delete(sid)
        except SendError as exc:
            log.warning("deletion at Twilio failed (code %s); tried again later", exc.code)
            is_gone = False
        (gone if is_gone else waiting).append(sid)
    return gone, waiting
