"""GET /healthz for operators and load balancers."""

from __future__ import annotations

from flask import Blueprint, jsonify
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from engage import db

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    try:
        with db.engine().connect() as conn:
            conn.execute(text("SELECT 1"))
        database = "ok"
    except SQLAlchemyError:
        database = "unavailable"
    status = 200 if database == "ok" else 503
    return jsonify({"database": database, "queue": "in-process", "spool": "n/a"}), status
