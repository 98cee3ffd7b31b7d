from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from engage.db import Base, utcnow


class Contact(Base):
    """A worker, known only by an encrypted phone number and a keyed hash of it.

    An erased contact keeps its row, holding nothing about anyone: its answers still count once
    each (results group them by contact), under the same record key.
    """

    __tablename__ = "contacts"

    id: Mapped[int] = mapped_column(primary_key=True)
    # A keyed hash of the number (privacy.Vault.phone_hash); an erased contact's is random.
    phone_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # The number, under the contact's own key; empty once erased.
    phone_encrypted: Mapped[str] = mapped_column(String(300))
    # The contact's own key, wrapped with the PII key (privacy.Vault.contact_cipher): the
    # contact's texts and every copy of its number are encrypted with it. None once erased.
    key_encrypted: Mapped[str | None] = mapped_column(String(200))
    language: Mapped[str | None] = mapped_column(String(8))
    has_consented: Mapped[bool] = mapped_column(default=False)
    consented_at: Mapped[datetime | None]
    consent_source: Mapped[str | None] = mapped_column(String(100))
    is_opted_out: Mapped[bool] = mapped_column(default=False)
    opted_out_at: Mapped[datetime | None]
    is_menu_open: Mapped[bool] = mapped_column(default=False)
    is_simulated: Mapped[bool] = mapped_column(default=False)
    profile: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # When each profile value was last answered or imported ({key: ISO time}): a profile
    # question with max_age_days asks again once its value is older.
    profile_updated_at: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # Random, given once and never shown: the cell key of a published count is the sum of the
    # record keys of the people it counts (engage/results/disclosure.py). Copied onto the
    # contact's conversations and answers when they are written.
    record_key: Mapped[int] = mapped_column(default=lambda: new_record_key())
    last_nudged_at: Mapped[datetime | None]
    # When safety words found inside a message last got the help text (at most once in 24 h).
    last_safety_help_at: Mapped[datetime | None]
    # WhatsApp's 24-hour customer-service window opens with each inbound WhatsApp message.
    last_whatsapp_inbound_at: Mapped[datetime | None]
    # BORRAR asked for confirmation at this time (it lapses: services/erasure.py).
    erase_requested_at: Mapped[datetime | None]
    erased_at: Mapped[datetime | None]
    # IANA time zone for quiet hours (from the profile state or the phone's area code).
    timezone: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    @property
    def pseudonym(self) -> str:
        """How logs and consoles name a contact: never the phone."""
        return f"contact-{self.id}"


RECORD_KEY_RANGE = 256


def new_record_key() -> int:
    """A contact's record key: uniform from 0 to 255, from the system's secure random source."""
    return secrets.randbelow(RECORD_KEY_RANGE)
