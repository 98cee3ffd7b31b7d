"""Importing an uploaded contacts file: in the request when small, else a job on `bulk`.

The import is one transaction (nothing half-imported), so its progress cannot be read from the
database while it runs: it is reported to Redis (or, without Redis, to this process, where the
import then runs in a thread), where the progress page's JSON reads it.
"""

from __future__ import annotations

import logging
import threading

from flask import current_app
from redis.exceptions import RedisError

from engage import db
from engage.jobs import BULK, queue, redis_connection
from engage.services import contact_imports

log = logging.getLogger(__name__)

RUN_CONTACT_IMPORT = "engage.jobs.contact_imports.run_contact_import"
PROGRESS_KEY = "engage:contact-import:{}"
PROGRESS_TTL = 24 * 3600
# A large file takes minutes (bench/README.md): more than RQ's default of 180 s.
JOB_TIMEOUT = 3600

# Progress of imports running in this process's threads (no Redis): {upload id: numbers done}.
_local_progress: dict[int, int] = {}


def report_progress(upload_id: int, done: int) -> None:
    """How many numbers of an upload are imported so far (its transaction has not ended)."""
    connection = redis_connection()
    if connection is None:
        _local_progress[upload_id] = done
        return
    try:
        connection.set(PROGRESS_KEY.format(upload_id), done, ex=PROGRESS_TTL)
    except RedisError as exc:  # the page's bar stands still; the import goes on
        log.warning("contact import %s: progress not reported: %s", upload_id, exc)


def read_progress(upload_id: int) -> int | None:
    connection = redis_connection()
    if connection is None:
        return _local_progress.get(upload_id)
    try:
        value = connection.get(PROGRESS_KEY.format(upload_id))
    except RedisError:
        return None
    return int(value) if value is not None else None


def run_contact_import(upload_id: int) -> str:
    """RQ entry point (`bulk`): import a confirmed upload. Idempotent: an upload done, failed
    or running elsewhere is left alone."""
    config = current_app.config
    vault = current_app.extensions["engage.vault"]
    with db.transaction() as session:
        if not contact_imports.start_import(session, upload_id, db.now()):
            return "not waiting"
    try:
        with db.transaction() as session:
            upload = contact_imports.run_import(
                session,
                vault,
                upload_id,
                default_region=config["ENGAGE_DEFAULT_REGION"],
                now=db.now(),
                progress=lambda done, _total: report_progress(upload_id, done),
            )
    except Exception:
        log.exception("contact import %s: failed, nothing imported", upload_id)
        with db.transaction() as session:
            contact_imports.fail_import(session, upload_id, db.now())
        return "failed"
    finally:
        _local_progress.pop(upload_id, None)
    if upload is not None:
        log.info(
            "contact import %s: %d created, %d updated", upload_id, upload.created, upload.updated
        )
    return "done"


def enqueue_contact_import(upload_id: int) -> None:
    """Hand a confirmed upload to a worker on `bulk`, after the commit; without Redis (or with
    Redis unreachable) run it in a thread of this process, so the request ends at once."""
    connection = redis_connection()
    if connection is not None:
        try:
            queue(BULK).enqueue(
                RUN_CONTACT_IMPORT,
                upload_id,
                job_id=f"contact-import-{upload_id}",
                job_timeout=JOB_TIMEOUT,
                result_ttl=0,
                failure_ttl=7 * 24 * 3600,
            )
            return
        except RedisError as exc:
            log.warning("contact import %s: Redis unavailable, importing here: %s", upload_id, exc)
    # The app's own method, not the proxy's: the thread has no context to look it up in.
    app_context = current_app.app_context

    def run() -> None:
        with app_context():
            run_contact_import(upload_id)

    threading.Thread(target=run, name=f"contact-import-{upload_id}", daemon=True).start()
