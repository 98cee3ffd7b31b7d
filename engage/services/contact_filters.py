"""Which contacts a page or a campaign means: one filter, the same for the contacts list and for
choosing a campaign's contacts (profile values, language, a channel used, opted out or not, last
activity). Simulated and erased contacts are never chosen."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, exists

from engage.models import Contact, Message

# The keys of a campaign's stored filter that are not profile keys.
LANGUAGE = "language"
CHANNEL = "channel"


@dataclass(frozen=True)
class ContactFilter:
    """Which contacts: profile values, language, a channel used, opted out or not, and when the
    last message from or to them was (on or after `active_after`; before `active_before`, which
    includes contacts never written to)."""

    profile: Mapping[str, str] = field(default_factory=dict)
    language: str | None = None
    channel: str | None = None
    is_opted_out: bool | None = None
    active_after: datetime | None = None
    active_before: datetime | None = None

    @classmethod
    def from_stored(cls, stored: Mapping[str, Any]) -> ContactFilter:
        """A campaign's stored filter (`Campaign.filters`: profile keys, `language`, `channel`)."""
        profile = {k: str(v) for k, v in stored.items() if k not in (LANGUAGE, CHANNEL)}
        return cls(
            profile=profile,
            language=stored.get(LANGUAGE) or None,
            channel=stored.get(CHANNEL) or None,
        )

    def stored(self) -> dict[str, str]:
        """The filter as a campaign keeps it (the form `engage campaigns start --where` takes)."""
        kept = dict(self.profile)
        if self.language:
            kept[LANGUAGE] = self.language
        if self.channel:
            kept[CHANNEL] = self.channel
        return kept


def filter_conditions(chosen: ContactFilter) -> list[ColumnElement[bool]]:
    """The WHERE conditions on `contacts` for a filter."""
    conditions: list[ColumnElement[bool]] = [
        Contact.is_simulated.is_(False),
        Contact.erased_at.is_(None),
    ]
    for key, value in chosen.profile.items():
        conditions.append(Contact.profile[key].as_string() == value)
    if chosen.language:
        conditions.append(Contact.language == chosen.language)
    if chosen.is_opted_out is not None:
        conditions.append(Contact.is_opted_out.is_(chosen.is_opted_out))
    # Each an index probe per contact (messages by contact), never a scan of messages.
    theirs = Message.contact_id == Contact.id
    if chosen.channel:
        conditions.append(exists().where(theirs, Message.channel == chosen.channel))
    if chosen.active_after is not None:
        conditions.append(exists().where(theirs, Message.created_at >= chosen.active_after))
    if chosen.active_before is not None:
        conditions.append(~exists().where(theirs, Message.created_at >= chosen.active_before))
    return conditions
