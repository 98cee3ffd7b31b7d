"""The RQ worker: `replies` before `bulk`, with RQ's scheduler for delayed sends and retries."""

from __future__ import annotations

import logging

from rq import SimpleWorker

from engage import db
from engage.jobs import BULK, REPLIES, queue, redis_connection

log = logging.getLogger(__name__)


class SendWorker(SimpleWorker):
    """RQ's SimpleWorker, stopping its command listener without a one-second wait."""

    def unsubscribe(self) -> None:
        """Stop the pub/sub thread first, then unsubscribe (RQ does it the other way round).

        The thread waits for a message for up to 60 s. The UNSUBSCRIBE reply wakes it; if it is
        still marked running then, it waits again, and RQ gives up joining it after 1 s: every
        stop of a worker (burst end, deploy) took a second longer than its work.
        """
        if self.pubsub_thread:
            self.pubsub_thread.stop()
        super().unsubscribe()


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
    worker = SendWorker(
        [queue(REPLIES, connection), queue(BULK, connection)],
        connection=connection,
        serializer="rq.serializers.JSONSerializer",
    )
    try:
        worker.work(burst=burst, with_scheduler=True, logging_level="WARNING")
    finally:
        # Say goodbye to PostgreSQL and Redis now: worker.py leaves without Python's teardown.
        db.engine().dispose()
        connection.close()
    return 0
