"""The webhook's ceilings, served by gunicorn with the same settings as Engage.

A (`make_bare()`): parse the same Twilio form, check the same required fields, return the same
TwiML. B (`make_checked()`): A plus Twilio's signature check over the public URL, then one
INSERT and one SELECT on the same PostgreSQL in one committed transaction (SQLAlchemy Core,
psycopg 3, a pool sized like Engage's).

    gunicorn 'bench.ceiling_app:make_bare()'
    gunicorn 'bench.ceiling_app:make_checked()'   # needs BENCH_DATABASE_URL, TWILIO_AUTH_TOKEN,
                                                  # ENGAGE_PUBLIC_URL
"""

from __future__ import annotations

import os

from flask import Flask, Response, abort, request
from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    func,
    insert,
    select,
)
from twilio.request_validator import RequestValidator

from engage.web.twilio import EMPTY_TWIML

metadata = MetaData()
# What B writes per request: the claim of a MessageSid, like Engage's unique messages.sid.
inbound = Table(
    "bench_ceiling_inbound",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("sid", String(64), nullable=False, unique=True),
    Column("sender", String(100), nullable=False, index=True),
    Column("body", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)


def _parse() -> tuple[str, str, str]:
    form = request.form
    sid = form.get("MessageSid") or form.get("SmsSid") or ""
    sender, to = form.get("From", ""), form.get("To", "")
    if not sid or not sender or not to:
        abort(400)
    return sid, sender, form.get("Body", "")


def _twiml() -> Response:
    return Response(EMPTY_TWIML, status=200, mimetype="text/xml")


def make_bare() -> Flask:
    """Ceiling A: form in, TwiML out."""
    app = Flask(__name__)

    @app.post("/twilio/messages")
    def inbound_message() -> Response:
        _parse()
        return _twiml()

    return app


def make_checked() -> Flask:
    """Ceiling B: A + signature check + one INSERT + one SELECT, committed."""
    app = Flask(__name__)
    engine = create_engine(os.environ["BENCH_DATABASE_URL"], pool_size=5, max_overflow=10)
    token = os.environ["TWILIO_AUTH_TOKEN"]
    public_url = os.environ["ENGAGE_PUBLIC_URL"].rstrip("/")

    @app.post("/twilio/messages")
    def inbound_message() -> Response:
        signature = request.headers.get("X-Twilio-Signature", "")
        url = public_url + request.path
        if not signature or not RequestValidator(token).validate(url, request.form, signature):
            abort(403)
        sid, sender, body = _parse()
        with engine.begin() as conn:
            conn.execute(insert(inbound).values(sid=sid, sender=sender, body=body))
            # The sender's latest message: an indexed read, as Engage's contact lookup is.
            conn.execute(
                select(inbound.c.id)
                .where(inbound.c.sender == sender)
                .order_by(inbound.c.id.desc())
                .limit(1)
            ).scalar_one()
        return _twiml()

    return app


def create_table(url: str) -> None:
    """The table B writes to, in the benchmark's database."""
    engine = create_engine(url)
    metadata.create_all(engine)
    engine.dispose()
