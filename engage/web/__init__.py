"""Blueprints: webhooks, health, and (later) staff and results pages."""

from __future__ import annotations

from flask import Flask


def register_blueprints(app: Flask) -> None:
    from engage.web import health, twilio

    app.register_blueprint(health.bp)
    app.register_blueprint(twilio.bp)
