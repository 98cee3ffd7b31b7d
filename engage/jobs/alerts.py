"""Alerts to ENGAGE_ALERT_WEBHOOK: one JSON POST per urgent message, after the commit.

With REDIS_URL an alert is a job on `replies`; without it, it is posted in-process. A post that
fails is left for the clock, which tries again until one succeeds.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from datetime import timedelta

import urllib3
from flask import current_app
from redis.exceptions import RedisError

from engage import db
from engage.db import utcnow
from engage.jobs import REPLIES, queue, redis_connection
from engage.services import alerts

log = logging.getLogger(__name__)

SEND_ALERT = "engage.jobs.alerts.send_alert"
# The clock leaves an alert this long to its own job before it tries again; after `GIVE_UP`
# it stops (a webhook configured later does not get the backlog).
RETRY_GRACE = timedelta(seconds=60)
GIVE_UP = timedelta(days=7)
# Short: without Redis the post runs before the webhook answers Twilio.
TIMEOUT = urllib3.Timeout(connect=3.0, read=5.0)


def _http() -> urllib3.PoolManager:
    return current_app.extensions["engage.alert_http"]


def send_alert(message_id: int) -> bool:
    """Post one urgent message's alert; True when the webhook took it. Idempotent."""
    url = current_app.config["ENGAGE_ALERT_WEBHOOK"]
    if not url:
        return False
    with db.transaction() as session:
        message = alerts.urgent_message(session, message_id)
        if message is None:
            return False
        payload = alerts.alert_payload(message, current_app.config["ENGAGE_PUBLIC_URL"])
    try:
        response = _http().request(
            "POST",
            url,
            body=json.dumps(payload).encode(),
            headers={"Content-Type": "application/json"},
            timeout=TIMEOUT,
            retries=False,
            redirect=False,
        )
    except urllib3.exceptions.HTTPError as exc:
        # The URL may hold a token: it is never logged.
        log.warning("alert for message %s: not delivered (%s)", message_id, type(exc).__name__)
        return False
    if not 200 <= response.status < 300:
        log.warning("alert for message %s: webhook answered %s", message_id, response.status)
        return False
    with db.transaction() as session:
        alerts.mark_alert_sent(session, message_id, utcnow())
    log.info("alert for message %s: sent", message_id)
    return True


def dispatch_alerts(message_ids: Iterable[int]) -> int:
    """Hand urgent messages' alerts over (after the commit); how many were handed over."""
    ids = [message_id for message_id in message_ids if message_id is not None]
    if not ids or not current_app.config["ENGAGE_ALERT_WEBHOOK"]:
        return 0
    connection = redis_connection()
    if connection is None:
        for message_id in ids:
            send_alert(message_id)
        return len(ids)
    try:
        replies = queue(REPLIES)
        for message_id in ids:
            replies.enqueue(
                SEND_ALERT,
                message_id,
                job_id=f"alert-{message_id}",
                result_ttl=0,
                failure_ttl=7 * 24 * 3600,
            )
    except RedisError as exc:
        log.warning("alerts: %d left for the clock, Redis unavailable: %s", len(ids), exc)
        return 0
    return len(ids)


def retry_alerts() -> int:
    """The clock's part: alerts not delivered yet, handed over again."""
    if not current_app.config["ENGAGE_ALERT_WEBHOOK"]:
        return 0
    with db.transaction() as session:
        ids = alerts.due_alert_ids(session, now=utcnow(), older_than=RETRY_GRACE, within=GIVE_UP)
    return dispatch_alerts(ids)
