"""GET /healthz for operators and load balancers."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify
from redis.exceptions import RedisError
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from engage import db
from engage.intake import spool
from engage.jobs import redis_connection

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> tuple[Response, int]:
    """200 while inbound messages can be accepted (database up, or the spool writable).

    503 also while any message is set aside as a dead letter.
    """
    try:
        with db.engine().connect() as conn:
            conn.execute(text("SELECT 1"))
        database = "ok"
    except SQLAlchemyError:
        database = "unavailable"
    connection = redis_connection()
    if connection is None:
        queue = "in-process"
    else:
        try:
            connection.ping()
            queue = "ok"
        except RedisError:
            queue = "unavailable"
    is_writable = spool().is_writable()
    # A dead letter is a worker's message that no retry will store: someone must look at it.
    has_dead_letters = spool().has_dead_letters()
    if has_dead_letters:
        spool_state = "dead letters"
    elif not is_writable:
        spool_state = "unwritable"
    elif spool().has_entries():
        spool_state = "ok, messages waiting for replay"
    else:
        spool_state = "ok"
    healthy = not has_dead_letters and (database == "ok" or is_writable)
    body = {"database": database, "queue": queue, "spool": spool_state}
    return jsonify(body), 200 if healthy else 503
