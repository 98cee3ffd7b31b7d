"""Inbound messages as they come in: the webhook's form, receive-or-spool, the spool's replay.

One cleaning for every path in (webhook, spool replay, simulate): control characters go. A
message is received in one transaction (the conversation step), or, with the database down,
kept in the spool and replayed in order later; one the database refuses is set aside as a dead
letter.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask import current_app
from sqlalchemy.exc import (
    DBAPIError,
    DisconnectionError,
    InterfaceError,
    OperationalError,
)
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from engage import db
from engage.db import utcnow
from engage.jobs import REPLIES, dispatch_sends
from engage.jobs.alerts import dispatch_alerts
from engage.privacy import parse_sender
from engage.services import erasure
from engage.services.conversations import (
    InboundResult,
    RepeatedMessageError,
    handle_inbound,
    settings_from,
)
from engage.spool import ReplayResult, Spool

# C0 and C1 control characters, and DEL between them, but tab and newline. PostgreSQL refuses a
# NUL in text (the message would be lost, and a spooled one would block every replay behind
# it); the others carry nothing a person wrote and can steer a terminal or a spreadsheet.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]+")


def strip_control_characters(text: str) -> str:
    """The text without C0/C1 control characters (tab and newline are kept)."""
    return _CONTROL.sub("", text)


log = logging.getLogger(__name__)

_SID = re.compile(r"^(SM|MM)[0-9a-fA-F]{32}$")
_FIELDS = ("MessageSid", "SmsSid", "From", "To", "Body", "NumMedia", "MediaUrl0", "OptOutType")


class MalformedWebhookError(ValueError):
    """A webhook post that is not a Twilio message (400)."""


class RefusedMessageError(RuntimeError):
    """The database refused a message for a reason other than being down: a retry won't help."""


def is_database_unavailable(exc: BaseException) -> bool:
    """Whether a failure means the database is down or unreachable now, so a retry may succeed."""
    # psycopg and sqlite3 raise OperationalError for a refused or dropped connection, a locked
    # or missing SQLite file, a restart, a deadlock; the pool's timeout means it is saturated.
    if isinstance(exc, OperationalError | InterfaceError | DisconnectionError | PoolTimeoutError):
        return True
    return isinstance(exc, DBAPIError) and exc.connection_invalidated


@dataclass(frozen=True)
class InboundForm:
    """The allow-listed fields of an inbound webhook: nothing else is kept."""

    sid: str
    from_: str
    to: str
    body: str
    media_url: str | None
    opt_out_type: str | None

    @classmethod
    def parse(cls, raw: Mapping[str, str]) -> InboundForm:
        """The allow-listed fields, without control characters (webhooks and spooled entries)."""
        form = {name: strip_control_characters(raw.get(name) or "") for name in _FIELDS}
        sid = form["MessageSid"] or form["SmsSid"]
        from_, to = form["From"], form["To"]
        if not _SID.match(sid) or not from_ or not to:
            raise MalformedWebhookError("MessageSid, From and To are required")
        try:
            num_media = int(form["NumMedia"] or 0)
        except ValueError:
            raise MalformedWebhookError("NumMedia is not a number") from None
        return cls(
            sid=sid,
            from_=from_,
            to=to,
            body=form["Body"],
            media_url=form["MediaUrl0"] if num_media > 0 else None,
            opt_out_type=form["OptOutType"] or None,
        )

    def to_spool(self, received_at: datetime) -> dict[str, Any]:
        return {
            "MessageSid": self.sid,
            "From": self.from_,
            "To": self.to,
            "Body": self.body,
            "NumMedia": "1" if self.media_url else "0",
            **({"MediaUrl0": self.media_url} if self.media_url else {}),
            **({"OptOutType": self.opt_out_type} if self.opt_out_type else {}),
            "_received_at": received_at.isoformat(),
        }


def receive(form: InboundForm, *, now: datetime | None = None) -> InboundResult:
    """Run the conversation step in one transaction, then hand the replies to the senders.

    Raises RefusedMessageError when the step fails for any reason but the database being
    down (a constraint, a value it will not store, a bug): trying again would fail again.
    """
    app = current_app
    settings = settings_from(app.config, app.extensions["engage.vault"])
    try:
        with db.engine().begin() as connection:
            result = handle_inbound(
                connection,
                settings,
                sender=parse_sender(form.from_),
                to=form.to,
                body=form.body,
                sid=form.sid,
                media_url=form.media_url,
                now=now,
                twilio_confirmed=form.opt_out_type in ("STOP", "START"),
            )
    except RepeatedMessageError:
        log.info("inbound %s: repeat, ignored", form.sid)
        return InboundResult(message_id=None, is_duplicate=True)
    except Exception as exc:
        if is_database_unavailable(exc):
            raise
        # Only the type: database errors quote the message text.
        raise RefusedMessageError(type(exc).__name__) from exc
    dispatch_sends(result.outbound_ids, queue_name=REPLIES)
    if result.urgent_message_id is not None:
        dispatch_alerts([result.urgent_message_id])
    if result.erased is not None:
        forget_dead_letters([result.erased])
    return result


def spool() -> Spool:
    """This host's spool (made in create_app)."""
    return current_app.extensions["engage.spool"]


def accept(form: InboundForm) -> bool:
    """Receive a webhook's message now, or spool it; True when it was spooled.

    Messages spooled during an outage go first, so none is overtaken by a newer one. With the
    database unreachable the message is kept durably instead, and Twilio still gets its 200:
    the spool replays it in order once the database is back. A message the database refuses
    is kept too, as a dead letter beside the spool, for staff to look at.
    """
    try:
        waiting = spool().has_entries()
        if waiting:
            replay_spooled()
            waiting = spool().has_entries()
        if not waiting:
            receive(form)
            return False
        reason = "older messages still spooled"
    except RefusedMessageError as exc:
        spool().set_aside(form.to_spool(utcnow()), str(exc))
        log.error("inbound %s: refused (%s), set aside as a dead letter", form.sid, exc)
        return False
    except Exception as exc:
        if not is_database_unavailable(exc):
            raise
        reason = type(exc).__name__
    spool().append(form.to_spool(utcnow()))
    log.error("inbound %s: spooled (%s)", form.sid, reason)
    return True


def replay_spooled() -> ReplayResult:
    """Replay this host's spool in order; stops at the first failure (the database still down).

    An entry that can never be received (refused by the database, or not a message at all) is
    set aside as a dead letter and does not hold up the ones behind it.
    """

    def handle(entry: dict[str, Any]) -> None:
        try:
            form = InboundForm.parse(entry)
            received = entry.get("_received_at")
            now = datetime.fromisoformat(received) if received else None
        except (TypeError, ValueError) as exc:
            raise RefusedMessageError(type(exc).__name__) from exc
        receive(form, now=now)

    result = spool().replay(handle, is_refused=_is_refused)
    if result.replayed or result.failed or result.set_aside:
        log.info(
            "spool: %d replayed, %d failed, %d set aside",
            result.replayed,
            result.failed,
            result.set_aside,
        )
    return result


def _is_refused(exc: Exception) -> bool:
    return isinstance(exc, RefusedMessageError)


def forget_dead_letters(erased: Iterable[erasure.Erased]) -> int:
    """Remove the spool's dead letters from erased contacts' numbers (this host's spool)."""
    hashes = {e.phone_hash for e in erased}
    if not hashes:
        return 0
    vault = current_app.extensions["engage.vault"]

    def is_theirs(entry: dict) -> bool:
        sender = parse_sender(str(entry.get("From") or ""))
        return sender.e164 is not None and vault.phone_hash(sender.e164) in hashes

    removed = spool().forget_dead_letters(is_theirs)
    if removed:
        log.info("spool: %d dead letter(s) of erased contacts removed", removed)
    return removed
