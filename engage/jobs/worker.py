"""The RQ worker: `replies` before `bulk`, with RQ's scheduler for delayed sends and retries."""

from __future__ import annotations

import logging

from rq import SimpleWorker

from engage import db
from engage.jobs import BULK, REPLIES, queue, redis_connection

log = logging.getLogger(__name__)


def run_worker(*, burst: bool = False) -> int:
    """Work until stopped (or, with burst, until the queues are empty). Needs an app context.

    SimpleWorker runs each job in this process: a send is one HTTP call, and forking a work
    horse per job (RQ's default Worker) costs more than the call itself (docs: ~14 vs ~150
    jobs/s). Jobs are idempotent and short, so the isolation a fork gives buys little here.
    """
    connection = redis_connection()
    if connection is None:
        raise RuntimeError("REDIS_URL is not set")
    # No pooled connection opened before this point may be shared with the work loop.
    db.engine().dispose()
    worker = SimpleWorker(
        [queue(REPLIES, connection), queue(BULK, connection)],
        connection=connection,
        serializer="rq.serializers.JSONSerializer",
    )
    worker.work(burst=burst, with_scheduler=True, logging_level="WARNING")
    return 0
