"""RQ entry points (thin, take ids, idempotent) and how work reaches them.

With REDIS_URL, work goes to RQ's `replies` and `bulk` queues; without it (the embedded
default) it runs in-process right after the commit.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime

from flask import current_app
from redis import Redis
from redis.exceptions import RedisError
from rq import Queue, Retry

log = logging.getLogger(__name__)

REPLIES = "replies"
BULK = "bulk"
# Transient Twilio errors: retry with backoff (seconds).
SEND_RETRY = Retry(max=6, interval=[2, 5, 15, 60, 300, 900])
SEND_JOB_OPTIONS = {"retry": SEND_RETRY, "result_ttl": 0, "failure_ttl": 7 * 24 * 3600}
# Bulk rows go to RQ in jobs of this many: RQ's own bookkeeping per job costs more than a send.
BULK_BATCH = 100
# Jobs enqueued per Redis pipeline.
ENQUEUE_BATCH = 500
SEND_MESSAGE = "engage.jobs.send.send_message"


def redis_connection() -> Redis | None:
    """The app's Redis, or None in the embedded default."""
    url = current_app.config["REDIS_URL"]
    if not url:
        return None
    connection = current_app.extensions.get("engage.redis")
    if connection is None:
        connection = Redis.from_url(url, socket_timeout=5, socket_connect_timeout=2)
        current_app.extensions["engage.redis"] = connection
    return connection


def queue(name: str, connection: Redis) -> Queue:
    """An RQ queue with JSON jobs; kept per app, since building one checks its serializer."""
    queues = current_app.extensions.setdefault("engage.queues", {})
    key = (name, id(connection))
    found = queues.get(key)
    if found is None or found[0] is not connection:
        found = queues[key] = (
            connection,
            Queue(name, connection=connection, serializer="rq.serializers.JSONSerializer"),
        )
    return found[1]


def dispatch_sends(message_ids: Iterable[int], *, queue_name: str = REPLIES) -> int:
    """Hand committed outbound rows to the senders; returns how many were handed over.

    Called only after the commit. If Redis is unreachable the rows stay pending and the sweep
    enqueues them later: nothing is lost, the worker just hears of them late.
    """
    ids = list(message_ids)
    if not ids:
        return 0
    connection = redis_connection()
    if connection is None:
        from engage.jobs.send import send_message

        for message_id in ids:
            send_message(message_id)
        return len(ids)
    try:
        if queue_name == REPLIES:
            # A job per reply, so that one slow send never holds up another worker's reply.
            jobs = [
                Queue.prepare_data(
                    SEND_MESSAGE,
                    args=(message_id,),
                    job_id=f"send-{message_id}",
                    **SEND_JOB_OPTIONS,
                )
                for message_id in ids
            ]
        else:
            jobs = [
                Queue.prepare_data(
                    "engage.jobs.send.send_batch",
                    args=(ids[start : start + BULK_BATCH],),
                    job_id=f"send-batch-{ids[start]}-{len(ids[start : start + BULK_BATCH])}",
                    result_ttl=0,
                    failure_ttl=SEND_JOB_OPTIONS["failure_ttl"],
                )
                for start in range(0, len(ids), BULK_BATCH)
            ]
        for start in range(0, len(jobs), ENQUEUE_BATCH):
            with connection.pipeline() as pipe:
                queue(queue_name, connection).enqueue_many(
                    jobs[start : start + ENQUEUE_BATCH], pipeline=pipe
                )
                pipe.execute()
    except RedisError as exc:
        log.warning("queue: %d send(s) left for the sweep, Redis unavailable: %s", len(ids), exc)
        return 0
    return len(ids)


def schedule_send(message_id: int, at: datetime, *, queue_name: str = BULK) -> bool:
    """Enqueue a send for a later time (quiet hours, --at); False when Redis is unavailable."""
    connection = redis_connection()
    if connection is None:
        return False  # the in-process clock sends it when due
    try:
        queue(queue_name, connection).enqueue_at(
            at,
            SEND_MESSAGE,
            message_id,
            job_id=f"send-{message_id}",
            retry=SEND_RETRY,
            result_ttl=0,
        )
    except RedisError as exc:
        log.warning("queue: send %s left for the sweep, Redis unavailable: %s", message_id, exc)
        return False
    return True
