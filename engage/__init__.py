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
from engage.privacy import Vault


def create_app(overrides: Mapping[str, Any] | None = None, *, web: bool = True) -> Flask:
    """The one factory: configuration from the environment (and overrides), then extensions.

    `web=False` (the worker) leaves out the pages and webhooks: importing them is a good part
    of a worker's start-up, and a worker serves no request.
    """
    app = Flask(__name__, instance_path=_instance_path(overrides))
    env = dict(os.environ)
    env.update({k: str(v) for k, v in (overrides or {}).items() if isinstance(v, str)})
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
        # the address); without trusted proxies, X-Forwarded-* from anyone is ignored.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies)  # type: ignore[method-assign]
    _configure_logging(app)
    app.extensions["engage.vault"] = Vault(app.config["ENGAGE_PII_KEY"])
    db.init_app(app)

    if web:
        from engage.web import register_blueprints

        register_blueprints(app)
    if not app.config["IS_PRODUCTION"] and not app.config["TWILIO_AUTH_TOKEN"]:
        app.logger.warning(
            "development without Twilio credentials: console sender, webhook signatures NOT checked"
        )
    return app


def _instance_path(overrides: Mapping[str, Any] | None) -> str:
    explicit = (overrides or {}).get("INSTANCE_PATH") or os.environ.get("ENGAGE_INSTANCE_PATH")
    return str(Path(explicit).resolve()) if explicit else str(Path.cwd() / "instance")


def _configure_logging(app: Flask) -> None:
    if not logging.getLogger().handlers:
        logging.basicConfig(
            level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
        )
