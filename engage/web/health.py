"""GET /healthz for operators and load balancers."""

from __future__ import annotations

from flask import Blueprint, jsonify
from redis.exceptions import RedisError
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from engage import db
from engage.jobs import redis_connection
from engage.jobs.inbound import spool

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    """200 while inbound messages can be accepted (database up, or the spool writable)."""
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
    spool_state = "ok" if spool().is_writable() else "unwritable"
    if spool_state == "ok" and spool().has_entries():
        spool_state = "ok, messages waiting for replay"
    healthy = database == "ok" or spool_state.startswith("ok")
    body = {"database": database, "queue": queue, "spool": spool_state}
    return jsonify(body), 200 if healthy else 503
