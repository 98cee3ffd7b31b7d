"""Send jobs for the `replies` queue, written to Redis in one call.

Every inbound message enqueues its reply. Building RQ's Job object for it and writing it in
RQ's six commands cost the webhook more CPU than its whole conversation engine (bench/README.md).
Here RQ builds one Job per process, as the template: its fields are what RQ writes for every
reply but the four that differ per job (`PER_JOB`), and a Lua script, made from the template,
writes a job's hash, pushes its id onto the queue and registers the queue, atomically, in one
round trip. The hash is field for field the one RQ's own `enqueue_many` writes for the same
call (tests/test_sending.py compares them, so an RQ upgrade that changes its format fails there),
and RQ's workers run these jobs as any other.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from typing import Any

from rq import Queue
from rq.job import Job
from rq.utils import get_call_string, now, utcformat

SEND_MESSAGE = "engage.jobs.send.send_message"
PER_JOB = ("created_at", "enqueued_at", "data", "description")


def _lua(value: Any) -> str:
    """A Lua string literal holding exactly these bytes."""
    raw = value if isinstance(value, bytes) else str(value).encode()
    return (
        '"'
        + "".join(chr(b) if chr(b).isascii() and chr(b).isalnum() else f"\\{b:03d}" for b in raw)
        + '"'
    )


class ReplyJobs:
    """Enqueues `send_message(message_id)` jobs on one queue with the given RQ job options."""

    def __init__(self, queue: Queue, options: Mapping[str, Any]) -> None:
        self.queue = queue
        template = queue.create_job(SEND_MESSAGE, args=(0,), job_id="send-0", **options)
        # What RQ sets when it enqueues (Queue._prepare_for_queue).
        template.origin = queue.name
        template.enqueued_at = now()
        if template.timeout is None:
            template.timeout = Queue.DEFAULT_TIMEOUT
        fields = {**template.to_dict(), "status": "queued"}
        constant = {k: v for k, v in fields.items() if k not in PER_JOB and v is not None}
        pairs = ", ".join(f"{_lua(k)}, {_lua(v)}" for k, v in constant.items())
        # KEYS: the queue, RQ's set of queues, then one job hash per job.
        # ARGV: the time, then per job its id, data and description.
        self._script = queue.connection.register_script(
            f"""
            for i = 3, #KEYS do
                local a = 2 + (i - 3) * 3
                redis.call("HSET", KEYS[i], "created_at", ARGV[1], "enqueued_at", ARGV[1],
                    "data", ARGV[a + 1], "description", ARGV[a + 2], {pairs})
                redis.call("RPUSH", KEYS[1], ARGV[a])
            end
            redis.call("SADD", KEYS[2], KEYS[1])
            return #KEYS - 2
            """
        )

    def enqueue(self, message_ids: Sequence[int]) -> None:
        serializer = self.queue.serializer
        keys = [self.queue.key, Queue.redis_queues_keys]
        args: list[Any] = [utcformat(now())]
        for message_id in message_ids:
            job_id = f"send-{message_id}"
            call = (SEND_MESSAGE, None, (message_id,), {})
            keys.append(Job.key_for(job_id))
            args += [
                job_id,
                zlib.compress(serializer.dumps(call)),
                get_call_string(SEND_MESSAGE, (message_id,), {}, max_length=75),
            ]
        self._script(keys=keys, args=args)
