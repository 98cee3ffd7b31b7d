"""The send job: one outbound row to Twilio, at most once."""

from __future__ import annotations

import logging
import time
from collections import deque

from flask import current_app
from rq import get_current_job

from engage import db
from engage.jobs import BULK, dispatch_sends, redis_connection
from engage.messaging import (
    AmbiguousSendError,
    MessageSender,
    OutboundMessage,
    PermanentSendError,
    TransientSendError,
)
from engage.messaging.pool import Flight, Outcomes, SendPool
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
    """This process's sender: Twilio with credentials, else the console (development)."""
    sender = current_app.extensions.get("engage.sender")
    if sender is None:
        config = current_app.config
        if config["TWILIO_ACCOUNT_SID"] and config["TWILIO_AUTH_TOKEN"]:
            from engage.messaging.twilio import TwilioSender

            sender = TwilioSender(
                config["TWILIO_ACCOUNT_SID"],
                config["TWILIO_AUTH_TOKEN"],
                api_url=config["ENGAGE_TWILIO_API_URL"] or None,
                timeout=config.get("TWILIO_TIMEOUT", 10.0),
            )
            # The client imports its REST modules on first use: do it now, not between a
            # rate-limit grant and the send it grants.
            sender.client.messages  # noqa: B018
        else:
            from engage.messaging.console import ConsoleSender

            sender = ConsoleSender()
        current_app.extensions["engage.sender"] = sender
    return sender


def rate_limiter():
    """The per-sender rate limit shared by every worker (None without Redis)."""
    limiter = current_app.extensions.get("engage.ratelimiter")
    if limiter is None:
        if current_app.config["ENGAGE_SEND_RATE"] == 0:
            return None  # explicitly no limit (mocks, tests): not even a look-up per send
        connection = redis_connection()
        if connection is None:
            return None
        from engage.messaging.ratelimit import RateLimiter

        limiter = RateLimiter(connection, current_app.config["ENGAGE_SEND_RATE"])
        current_app.extensions["engage.ratelimiter"] = limiter
    return limiter


def send_pool() -> SendPool:
    """This process's send threads (ENGAGE_SEND_CONCURRENCY), kept for every job it runs."""
    pool = current_app.extensions.get("engage.send_pool")
    if pool is None:
        pool = SendPool(current_app.config["ENGAGE_SEND_CONCURRENCY"])
        current_app.extensions["engage.send_pool"] = pool
    return pool


def status_callback_url(message_id: int) -> str | None:
    base = current_app.config["ENGAGE_PUBLIC_URL"]
    return f"{base}/twilio/status?m={message_id}" if base else None


def send_message(message_id: int) -> str:
    """Send one outbound row, then the rest of its step in order; idempotent."""
    outcome = send_one(message_id)
    while outcome in ("sent", "reconciled", "failed"):
        with db.transaction() as session:
            following = outbox.next_in_step(session, message_id)
        if following is None:
            break
        message_id = following
        outcome = send_one(message_id)
    return outcome


def send_batch(message_ids: list[int]) -> int:
    """Send bulk rows a chunk at a time, several in flight; returns how many Twilio accepted.

    One transaction per chunk records the answers of the chunk sent before and claims the next
    one, while the chunk after it is being sent: the database work overlaps the waiting on
    Twilio. A row that must wait (a transient error, a lost answer) is left to the clock's sweep
    and reconcile, not retried by RQ: one slow row must not hold up a hundred others. After
    BATCH_SECONDS the rows not yet claimed go to a new job, before RQ's timeout stops this one.
    """
    vault = current_app.extensions["engage.vault"]
    sender = message_sender()
    limiter = rate_limiter()
    pool = send_pool()
    # With a rate limit a claimed row may wait for its slot (up to the limiter's timeout): one
    # row per thread and one chunk out at a time, so that few rows sit `dispatching` waiting.
    chunk_size = pool.concurrency * (1 if limiter is not None else CHUNK_ROUNDS)
    ahead = 1 if limiter is not None else 2
    todo = deque(message_ids)
    flights: deque[Flight] = deque()
    answered: Outcomes | None = None
    sent = 0
    deadline = time.monotonic() + BATCH_SECONDS
    while True:
        claims: list[list[OutboundMessage]] = []
        with db.transaction() as session:
            if answered is not None:
                outbox.record_chunk(
                    session, sent=answered.sent, failed=answered.failed, retry=answered.retry
                )
                # A step's later rows were skipped while the earlier one was unsent: send them
                # next, before the rest of the batch (send_message's order, for a whole chunk).
                done = [message_id for message_id, _ in answered.sent + answered.failed]
                todo.extendleft(reversed(outbox.following_rows(session, done)))
                sent += len(answered.sent)
            # At most two chunks out at once: one being sent, the next queued behind it.
            overdue = time.monotonic() > deadline
            while todo and len(flights) + len(claims) < ahead and not overdue:
                chunk = [todo.popleft() for _ in range(min(chunk_size, len(todo)))]
                claimed = outbox.claim_chunk(
                    session, vault, chunk, status_callback=status_callback_url
                )
                if claimed:
                    claims.append(claimed)
        # Sent only once the claim is committed: a rollback never leaves a row sent unmarked.
        flights.extend(pool.submit(sender, limiter, claimed) for claimed in claims)
        if not flights:
            if todo:
                log.info(
                    "batch: %d row(s) left after %.0f s, handed to a new job",
                    len(todo),
                    BATCH_SECONDS,
                )
                dispatch_sends(list(todo), queue_name=BULK)
            return sent
        answered = flights.popleft().outcomes()


def send_one(message_id: int) -> str:
    """Send one outbound row; does nothing when it is already sent, cancelled or not due."""
    vault = current_app.extensions["engage.vault"]
    sender = message_sender()
    limiter = rate_limiter()
    if limiter is not None:
        with db.transaction() as session:
            from_address = outbox.sender_of(session, message_id)
        if from_address:
            limiter.acquire(from_address)
    with db.transaction() as session:
        plan = outbox.prepare_send(
            session, vault, message_id, status_callback=status_callback_url(message_id)
        )
    if plan.action == "done" or plan.message is None:
        return "done"
    if plan.action == "reconcile":
        return _reconcile(sender, plan)
    try:
        result = sender.send(plan.message)
    except PermanentSendError as exc:
        with db.transaction() as session:
            outbox.record_failure(session, message_id, exc.code, permanent=True)
        return "failed"
    except TransientSendError as exc:
        with db.transaction() as session:
            outbox.record_failure(session, message_id, exc.code, permanent=False)
        _retry_or_leave(message_id)
        return "retry"
    except AmbiguousSendError:
        # The request may have reached Twilio: the row stays `dispatching`, and the retry
        # looks it up instead of sending it again.
        log.warning("message %s: answer lost, will look it up", message_id)
        _retry_or_leave(message_id)
        return "ambiguous"
    with db.transaction() as session:
        outbox.record_sent(session, message_id, result)
    return "sent"


def _reconcile(sender: MessageSender, plan: outbox.SendPlan) -> str:
    assert plan.message is not None and plan.attempted_at is not None
    message_id = plan.message.message_id
    try:
        found = sender.lookup(plan.message, since=plan.attempted_at)
    except (TransientSendError, AmbiguousSendError):
        _retry_or_leave(message_id)
        return "retry"
    with db.transaction() as session:
        if found is not None:
            outbox.record_sent(session, message_id, found)
            log.info("message %s: found at Twilio as %s, not resent", message_id, found.sid)
            return "reconciled"
        outbox.record_unconfirmed(session, message_id)
    return "unconfirmed"


def _retry_or_leave(message_id: int) -> None:
    """Under RQ, raise so its Retry policy runs the job again later; in-process, the sweep does."""
    if get_current_job() is not None:
        raise RetryLaterError(f"message {message_id}: retry")


class RetryLaterError(RuntimeError):
    """Raised inside an RQ job so the job's Retry (backoff) takes over."""
