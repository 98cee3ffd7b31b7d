"""RQ entry points (thin, take ids, idempotent) and how work reaches them.

With REDIS_URL, work goes to RQ's `replies` and `bulk` queues; without it (the embedded
default) it runs in-process right after the commit.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TypedDict

from flask import current_app
from redis import Redis
from redis.exceptions import RedisError
from rq import Queue

from engage.states import QueueName

log = logging.getLogger(__name__)

REPLIES = QueueName.REPLIES
BULK = QueueName.BULK


class SendJobOptions(TypedDict):
    """The send jobs' options: keyword arguments of RQ's enqueue and prepare_data."""

    result_ttl: int
    failure_ttl: int


SEND_JOB_OPTIONS: SendJobOptions = {"result_ttl": 0, "failure_ttl": 7 * 24 * 3600}
# Bulk rows go to RQ in jobs of this many: RQ's own bookkeeping per job costs more than a send.
BULK_BATCH = 100
# Jobs enqueued per Redis pipeline.
ENQUEUE_BATCH = 500
SEND_REPLIES = "engage.jobs.send.send_replies"
SEND_BATCH = "engage.jobs.send.send_batch"
PLACE_CALL = "engage.jobs.calls.place_call"
PLACE_CAMPAIGN_CALLS = "engage.jobs.calls.place_campaign_calls"
# Set while a reply-sending job is queued and has not started: more replies wake no other job.
# It expires by itself, so a job lost with Redis never stops replies for longer than this (the
# clock's sweep hands over what is still pending meanwhile).
REPLY_SENDER_WOKEN = "engage:reply-sender-woken"
REPLY_SENDER_WAKE_TTL = 60
# Set (per campaign) while a placer of the campaign's calls is queued or at work: a burst of
# dispatches (the fan-out, a resume, every round of the clock) starts one placer, not many. It
# expires by itself: a placer lost with Redis, or with a killed worker, holds no campaign up for
# longer than this (queued) or CALL_PLACER_BUSY_TTL (at work, renewed at each call).
CALL_PLACER = "engage:call-placer:"
CALL_PLACER_QUEUED_TTL = 600
CALL_PLACER_BUSY_TTL = 60


def redis_connection() -> Redis | None:
    """The app's Redis (made in create_app), or None in the embedded default."""
    return current_app.extensions["engage.redis"]


def queue(name: str) -> Queue:
    """One of the app's RQ queues (made in create_app, with JSON jobs)."""
    return current_app.extensions["engage.queues"][name]


def make_queues(connection: Redis) -> dict[str, Queue]:
    """The queues workers listen to, `replies` before `bulk`, for create_app."""
    return {
        name: Queue(name, connection=connection, serializer="rq.serializers.JSONSerializer")
        for name in (REPLIES, BULK)
    }


def dispatch_sends(message_ids: Iterable[int], *, queue_name: str = REPLIES) -> int:
    """Hand committed outbound rows to the senders; returns how many were handed over.

    Called only after the commit. Replies wake the reply sender, which sends every due reply
    (one job for a burst of them); bulk rows go in jobs of BULK_BATCH. Without Redis the rows
    are sent in this process, now. If Redis is unreachable the rows stay pending and the sweep
    hands them over later: nothing is lost, the worker just hears of them late.
    """
    ids = list(message_ids)
    if not ids:
        return 0
    connection = redis_connection()
    if connection is None:
        from engage.jobs.send import send_batch, send_replies

        if queue_name == REPLIES:
            send_replies()
        else:
            send_batch(ids)
        return len(ids)
    if queue_name == REPLIES:
        return len(ids) if wake_reply_sender() else 0
    jobs = [
        Queue.prepare_data(
            SEND_BATCH,
            args=(ids[start : start + BULK_BATCH],),
            job_id=f"send-batch-{ids[start]}-{len(ids[start : start + BULK_BATCH])}",
            **SEND_JOB_OPTIONS,
        )
        for start in range(0, len(ids), BULK_BATCH)
    ]
    try:
        for start in range(0, len(jobs), ENQUEUE_BATCH):
            with connection.pipeline() as pipe:
                queue(BULK).enqueue_many(jobs[start : start + ENQUEUE_BATCH], pipeline=pipe)
                pipe.execute()
    except RedisError as exc:
        log.warning("queue: %d send(s) left for the sweep, Redis unavailable: %s", len(ids), exc)
        return 0
    return len(ids)


def dispatch_call(call_id: int) -> bool:
    """Hand a committed call to place to the workers (`replies`: never behind bulk sends), or
    place it now without Redis. False when Redis is unavailable (the call is not placed)."""
    connection = redis_connection()
    if connection is None:
        from engage.jobs.calls import place_call

        place_call(call_id)
        return True
    try:
        queue(REPLIES).enqueue(
            PLACE_CALL, call_id, job_id=f"place-call-{call_id}", **SEND_JOB_OPTIONS
        )
    except RedisError as exc:
        log.warning("queue: call-%s not placed, Redis unavailable: %s", call_id, exc)
        return False
    return True


def dispatch_campaign_calls(campaign_id: int) -> bool:
    """Make sure a placer will place the campaign's due calls (`bulk`: never ahead of replies or
    call backs): one is enqueued unless one is queued or at work already. Without Redis the
    calls are placed in this process, now. False when Redis is unavailable (the clock
    dispatches again)."""
    connection = redis_connection()
    if connection is None:
        from engage.jobs.calls import place_campaign_calls

        place_campaign_calls(campaign_id)
        return True
    try:
        if connection.set(f"{CALL_PLACER}{campaign_id}", 1, nx=True, ex=CALL_PLACER_QUEUED_TTL):
            queue(BULK).enqueue(PLACE_CAMPAIGN_CALLS, campaign_id, **SEND_JOB_OPTIONS)
    except RedisError as exc:
        log.warning(
            "queue: campaign %s's calls left for the clock, Redis unavailable: %s", campaign_id, exc
        )
        return False
    return True


def call_placer_busy(campaign_id: int) -> None:
    """A campaign's placer is at work: no dispatch queues another meanwhile (said again before
    each call, so that it lapses soon after a placer that died)."""
    connection = redis_connection()
    if connection is None:
        return
    try:
        connection.set(f"{CALL_PLACER}{campaign_id}", 1, ex=CALL_PLACER_BUSY_TTL)
    except RedisError as exc:
        log.warning("queue: could not mark campaign %s's placer at work: %s", campaign_id, exc)


def call_placer_done(campaign_id: int) -> None:
    """A campaign's placer stops: a dispatch from now on queues a new one. (A dispatch that came
    while it was finding nothing more to place is the clock's to repeat.)"""
    connection = redis_connection()
    if connection is None:
        return
    try:
        connection.delete(f"{CALL_PLACER}{campaign_id}")
    except RedisError as exc:
        log.warning("queue: could not clear campaign %s's placer mark: %s", campaign_id, exc)


def wake_reply_sender() -> bool:
    """Make sure a reply-sending job will run: enqueue one unless one is queued and not yet
    started. False when Redis is unavailable (the sweep hands the replies over later)."""
    connection = redis_connection()
    if connection is None:
        return False
    try:
        if connection.set(REPLY_SENDER_WOKEN, 1, nx=True, ex=REPLY_SENDER_WAKE_TTL):
            queue(REPLIES).enqueue(SEND_REPLIES, **SEND_JOB_OPTIONS)
    except RedisError as exc:
        log.warning("queue: replies left for the sweep, Redis unavailable: %s", exc)
        return False
    return True


def reply_sender_woken() -> None:
    """A reply-sending job has started: replies written from now on wake another."""
    connection = redis_connection()
    if connection is None:
        return
    try:
        connection.delete(REPLY_SENDER_WOKEN)
    except RedisError as exc:
        log.warning("queue: could not clear the reply sender's wake-up: %s", exc)
