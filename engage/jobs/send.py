"""The send jobs: outbound rows to Twilio, at most once each, a chunk at a time."""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Sequence

from flask import current_app
from sqlalchemy.orm import Session

from engage import db
from engage.jobs import BULK, dispatch_sends, wake_reply_sender
from engage.messaging import (
    AmbiguousSendError,
    MessageSender,
    OutboundMessage,
    TransientSendError,
)
from engage.messaging.pool import Flight, Outcomes, SendPool
from engage.messaging.ratelimit import RateLimiter
from engage.services import outbox

log = logging.getLogger(__name__)

# A bulk chunk is this many rows per send thread. The claim and the record are one transaction
# each per chunk, so a bigger chunk costs less per row; but a worker killed mid-send leaves up to
# two chunks `dispatching`, and every row of them that never reached Twilio ends `unconfirmed`
# after the clock's look-up, for staff to decide. So: a few rows per thread, not a whole batch.
CHUNK_ROUNDS = 4
# A bulk job claims no new chunk after this long and hands the rest of its rows to a new job.
# RQ stops a job after 180 s; under a shared rate limit of one send a second (Twilio's default for
# a US long code) 100 rows take 100 s with one worker sending and 200 s with two.
BATCH_SECONDS = 120.0


def message_sender() -> MessageSender:
    """This process's sender (made in create_app)."""
    return current_app.extensions["engage.sender"]


def rate_limiter() -> RateLimiter | None:
    """The per-sender rate limit shared by every worker (None without Redis or with a rate of
    0: no look-up per send at all)."""
    return current_app.extensions["engage.ratelimiter"]


def send_pool() -> SendPool:
    """This process's send threads (ENGAGE_SEND_CONCURRENCY), kept for every job it runs."""
    return current_app.extensions["engage.send_pool"]


def status_callback_url(message_id: int) -> str | None:
    base = current_app.config["ENGAGE_PUBLIC_URL"]
    return f"{base}/twilio/status?m={message_id}" if base else None


def send_replies() -> int:
    """RQ entry point (`replies`): send every due reply, a chunk at a time, several in flight;
    returns how many Twilio accepted. A burst of webhooks wakes one such job, not one each
    (`engage.jobs.wake_reply_sender`)."""
    from engage.jobs import reply_sender_woken

    reply_sender_woken()
    return _send(_Rows())


def send_batch(message_ids: list[int]) -> int:
    """RQ entry point (`bulk`): send these bulk rows a chunk at a time, several in flight, with
    every due reply first: a reply never waits behind a campaign. Returns how many Twilio
    accepted."""
    return _send(_Rows(message_ids))


class _Rows:
    """What a send job works through: due replies first, then its own rows, if any."""

    def __init__(self, message_ids: Sequence[int] = ()) -> None:
        self.todo = deque(message_ids)
        # Replies with a transient error: left for the sweep, not taken again by this job.
        self.left: set[int] = set()

    def next_chunk(self, session: Session, size: int) -> list[int]:
        replies = outbox.due_replies(session, limit=size, exclude=sorted(self.left))
        if replies:
            return replies
        return [self.todo.popleft() for _ in range(min(size, len(self.todo)))]

    def not_claimed(self, message_ids: set[int]) -> None:
        """Rows a claim left (not due, cancelled, waiting for an earlier one): not asked for
        again by this job, so that it always moves on."""
        self.left.update(message_ids)

    def answered(self, session: Session, answers: Outcomes) -> int:
        """Write what Twilio answered; the rows of those steps that come next go first."""
        outbox.record_chunk(session, sent=answers.sent, failed=answers.failed, retry=answers.retry)
        done = [message_id for message_id, _ in answers.sent + answers.failed]
        self.todo.extendleft(reversed(outbox.following_rows(session, done)))
        self.left.update(answers.retry)
        return len(answers.sent)


def _send(rows: _Rows) -> int:
    """Claim, send and record chunks until nothing is due; returns how many Twilio accepted.

    One transaction per round records the answers of the chunk sent before and claims the next
    one, while the chunk after it is being sent: the database work overlaps the waiting on
    Twilio. A row that must wait (a transient error, a lost answer) is left to the clock's sweep
    and look-up, never retried here: one slow row must not hold up the others. After
    BATCH_SECONDS no new chunk is claimed and the rest goes to new jobs, before RQ's timeout.
    """
    vault = current_app.extensions["engage.vault"]
    sender = message_sender()
    limiter = rate_limiter()
    pool = send_pool()
    # With a rate limit a claimed row may wait for its slot (up to the limiter's timeout): one
    # chunk out at a time, paced to the senders' limit (`_paced`), so that few rows sit
    # `dispatching` waiting and a reply written meanwhile is the next to go.
    chunk_size = pool.concurrency * CHUNK_ROUNDS if limiter is None else 1
    ahead = 1 if limiter is not None else 2
    flights: deque[Flight] = deque()
    answered: Outcomes | None = None
    sent = 0
    deadline = time.monotonic() + BATCH_SECONDS
    while True:
        claims: list[list[OutboundMessage]] = []
        overdue = time.monotonic() > deadline
        recorded = answered is not None
        with db.transaction() as session:
            if answered is not None:
                sent += rows.answered(session, answered)
            # At most two chunks out at once: one being sent, the next queued behind it.
            while len(flights) + len(claims) < ahead and not overdue:
                chunk = rows.next_chunk(session, chunk_size)
                if not chunk:
                    break
                claimed = outbox.claim_chunk(
                    session,
                    vault,
                    chunk,
                    status_callback=status_callback_url,
                    public_url=current_app.config["ENGAGE_PUBLIC_URL"] or None,
                )
                rows.not_claimed(set(chunk) - {m.message_id for m in claimed})
                if claimed:
                    claims.append(claimed)
                    if limiter is not None:
                        chunk_size = _paced(pool.concurrency, limiter, claimed)
        # Sent only once the claim is committed: a rollback never leaves a row sent unmarked.
        flights.extend(pool.submit(sender, limiter, claimed) for claimed in claims)
        if not flights:
            if overdue:
                _hand_over(rows)
                return sent
            if recorded:
                # Look once more now that the last answers are committed. A reply written while
                # they were being recorded waited for the row before it; the job it woke, seeing
                # that row still `dispatching`, left it, and nobody else would send it before the
                # clock's sweep.
                answered = None
                continue
            return sent
        answered = flights.popleft().outcomes()


def _paced(concurrency: int, limiter: RateLimiter, sent: Sequence[OutboundMessage]) -> int:
    """Rows in the next chunk under a rate limit: what the slowest of these senders may send in
    one window, one per send thread at most. Every row of a chunk waits for its slot before the
    next chunk is claimed, so at a US long code's one a second a chunk of four would hold a
    reply written meanwhile for four seconds behind a campaign; a chunk of one holds it for one.
    """
    allowed = [limiter.sends_per_window(m.from_) for m in sent if m.from_]
    return max(1, min([concurrency, *(n for n in allowed if n is not None)]))


def _hand_over(rows: _Rows) -> None:
    """Out of time: what is left goes to new jobs."""
    if rows.todo:
        log.info(
            "batch: %d row(s) left after %.0f s, handed to a new job", len(rows.todo), BATCH_SECONDS
        )
        dispatch_sends(list(rows.todo), queue_name=BULK)
    wake_reply_sender()


def reconcile(message_id: int) -> str:
    """The clock's look-up of a row whose answer was lost: `reconciled` when Twilio has it,
    `unconfirmed` when it does not (staff decide, it is never resent), `retry` when Twilio
    could not be asked now, `done` when there is nothing to look up."""
    vault = current_app.extensions["engage.vault"]
    with db.transaction() as session:
        lost = outbox.lost_message(session, vault, message_id)
    if lost is None:
        return "done"
    message, attempted_at = lost
    try:
        found = message_sender().lookup(message, since=attempted_at)
    except (TransientSendError, AmbiguousSendError):
        return "retry"  # the clock asks again on its next round
    with db.transaction() as session:
        if found is not None:
            outbox.record_found(session, message_id, found)
            return "reconciled"
        outbox.record_unconfirmed(session, message_id)
    return "unconfirmed"
