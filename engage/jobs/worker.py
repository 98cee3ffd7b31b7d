"""The RQ worker: `replies` before `bulk`. Sends wait for their time in the database (the clock's
sweep hands them over when due), so RQ's scheduler is not needed."""

from __future__ import annotations

import logging

from rq import SimpleWorker

from engage import db
from engage.jobs import BULK, REPLIES, queue, redis_connection

log = logging.getLogger(__name__)


def run_worker(*, burst: bool = False) -> int:
    """Work until stopped (or, with burst, until the queues are empty). Needs an app context.

    SimpleWorker runs each job in this process: a send is one HTTP call, and forking a work
    horse per job (RQ's default Worker) costs more than the call itself (~14 vs ~150 jobs/s,
    docs/performance.md §4.1). Jobs are idempotent and short, so the isolation a fork gives buys
    little here.
    """
    connection = redis_connection()
    if connection is None:
        raise RuntimeError("REDIS_URL is not set")
    # No pooled connection opened before this point may be shared with the work loop.
    db.engine().dispose()
    worker = SimpleWorker(
        [queue(REPLIES), queue(BULK)],
        connection=connection,
        serializer="rq.serializers.JSONSerializer",
    )
    try:
        worker.work(burst=burst, logging_level="WARNING")
    finally:
        # Say goodbye to PostgreSQL and Redis now: worker.py leaves without Python's teardown.
        db.engine().dispose()
        connection.close()
    return 0
