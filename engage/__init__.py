"""Engage: multilingual SMS/WhatsApp surveys for worker engagement."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from engage import config, db
from engage.messaging import MessageSender
from engage.privacy import Vault


def create_app(overrides: Mapping[str, Any] | None = None, *, web: bool = True) -> Flask:
    """The one factory: configuration from the environment (and overrides), then extensions.

    `web=False` (the worker) leaves out the pages and webhooks: importing them is a good part
    of a worker's start-up, and a worker serves no request.
    """
    env = dict(os.environ)
    env.update({k: str(v) for k, v in (overrides or {}).items() if isinstance(v, str)})
    app = Flask(__name__, instance_path=config.instance_path(env))
    app.config.update(config.load(env, app.instance_path))
    app.config.update({k: v for k, v in (overrides or {}).items() if not isinstance(v, str)})
    # The instance folder holds the development keys, SQLite database and spool: owner only.
    try:
        config.make_private_folder(Path(app.instance_path))
    except OSError as exc:  # a read-only checkout: production may keep nothing there
        app.logger.warning("instance folder %s: %s", app.instance_path, exc)
    app.config["MAX_CONTENT_LENGTH"] = 1024 * 1024
    proxies = app.config["ENGAGE_TRUSTED_PROXIES"]
    if proxies:
        # The client's address and scheme as the proxies saw them (sign-in throttling keys on
        # the address); without trusted proxies, X-Forwarded-* from anyone is ignored. Flask's
        # documented way to add middleware, though to a type checker it replaces a method.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies)  # type: ignore[method-assign]
    _configure_logging(app)
    app.extensions["engage.vault"] = Vault(app.config["ENGAGE_PII_KEY"])
    db.init_app(app)
    _make_shared_objects(app, warm_sender=not web)

    if web:
        from engage.web import register_blueprints

        register_blueprints(app)
    if not app.config["IS_PRODUCTION"] and not app.config["TWILIO_AUTH_TOKEN"]:
        app.logger.warning(
            "development without Twilio credentials: console sender, webhook signatures NOT checked"
        )
    return app


def _make_shared_objects(app: Flask, *, warm_sender: bool) -> None:
    """Every object the jobs and the webhook share, made once, here: Redis and its queues, the
    sender, the rate limits (sends, calls), the send threads, the spool and the alerts' HTTP
    pool. Nothing connects yet: Redis and Twilio are reached on first use."""
    import urllib3
    from redis import Redis

    from engage.jobs import make_queues
    from engage.messaging.pool import SendPool
    from engage.messaging.ratelimit import LocalRateLimiter, RateLimiter
    from engage.spool import Spool

    config, extensions = app.config, app.extensions
    redis = (
        Redis.from_url(config["REDIS_URL"], socket_timeout=5, socket_connect_timeout=2)
        if config["REDIS_URL"]
        else None
    )
    extensions["engage.redis"] = redis
    extensions["engage.queues"] = make_queues(redis) if redis is not None else {}
    extensions["engage.sender"] = _make_sender(config, warm=warm_sender)
    rate = config["ENGAGE_SEND_RATE"]
    # A rate of 0 means no limit (mocks, tests): not even a look-up per send.
    extensions["engage.ratelimiter"] = (
        RateLimiter(redis, rate) if redis is not None and rate != 0 else None
    )
    # Calls we place, per caller ID (ENGAGE_CALL_RATE): across every worker through Redis, else
    # paced in this process.
    call_rate = config["ENGAGE_CALL_RATE"]
    extensions["engage.call_limiter"] = (
        RateLimiter(redis, call_rate, prefix="engage:call-rate:")
        if redis is not None
        else LocalRateLimiter(call_rate)
    )
    extensions["engage.send_pool"] = SendPool(config["ENGAGE_SEND_CONCURRENCY"])
    extensions["engage.spool"] = Spool(config["ENGAGE_SPOOL_DIR"], extensions["engage.vault"])
    extensions["engage.alert_http"] = urllib3.PoolManager()


def _make_sender(config: Mapping[str, Any], *, warm: bool) -> MessageSender:
    """Twilio with credentials, else the console (development)."""
    if not (config["TWILIO_ACCOUNT_SID"] and config["TWILIO_AUTH_TOKEN"]):
        from engage.messaging.console import ConsoleSender

        return ConsoleSender()
    from engage.messaging.twilio import TwilioSender

    sender = TwilioSender(
        config["TWILIO_ACCOUNT_SID"],
        config["TWILIO_AUTH_TOKEN"],
        api_url=config["ENGAGE_TWILIO_API_URL"] or None,
        timeout=config["TWILIO_TIMEOUT"],
    )
    if warm:
        # The client imports its REST modules on first use: a worker does it now, not between
        # a rate-limit grant and the send it grants.
        sender.client.messages  # noqa: B018
    return sender


def _configure_logging(app: Flask) -> None:
    if not logging.getLogger().handlers:
        logging.basicConfig(
            level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
        )
