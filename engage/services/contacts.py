"""Importing contacts from a CSV file: all rows or none, duplicates merged, opt-outs kept."""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from engage.db import utcnow
from engage.models import Contact, DoNotContact
from engage.privacy import PhoneNumberError, Vault, normalize_number
from engage.services.quiet_hours import timezone_for

REQUIRED_COLUMNS = ("phone", "language", "consent_source")
_LANGUAGE = re.compile(r"^[a-z]{2,3}$")
_PROFILE_KEY = re.compile(r"^[a-z_][a-z0-9_]*$")


class ContactImportError(ValueError):
    """The file cannot be imported; `problems` lists every bad line."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__(f"{len(problems)} problem(s)")
        self.problems = problems


@dataclass
class ImportRow:
    line: int
    e164: str
    language: str | None
    consent_source: str | None
    profile: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ImportResult:
    created: int
    updated: int
    merged_in_file: int
    # Numbers on the do-not-contact list (erased before): never imported again.
    skipped_erased: int = 0


def read_rows(lines: Iterable[str], *, default_region: str, name: str) -> list[ImportRow]:
    """Parse and check every row; raises ContactImportError naming each bad line."""
    reader = csv.DictReader(lines)
    header = [h.strip() for h in reader.fieldnames or []]
    problems = []
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise ContactImportError([f"{name}:1: missing column(s) {', '.join(missing)}"])
    bad_keys = [h for h in header if h not in REQUIRED_COLUMNS and not _PROFILE_KEY.match(h)]
    if bad_keys:
        raise ContactImportError([f"{name}:1: bad profile column(s) {', '.join(bad_keys)}"])
    rows: list[ImportRow] = []
    for record in reader:
        line = reader.line_num
        values = {(k or "").strip(): (v or "").strip() for k, v in record.items() if k}
        try:
            e164 = normalize_number(values.get("phone", ""), default_region)
        except PhoneNumberError as exc:
            problems.append(f"{name}:{line}: {exc}")
            continue
        language = values.get("language") or None
        if language is not None and not _LANGUAGE.match(language):
            problems.append(f"{name}:{line}: language {language!r} is not a language code")
            continue
        profile = {k: v for k, v in values.items() if k not in REQUIRED_COLUMNS and v}
        rows.append(ImportRow(line, e164, language, values.get("consent_source") or None, profile))
    if problems:
        raise ContactImportError(problems)
    return rows


def import_contacts(
    session: Session, vault: Vault, rows: list[ImportRow], *, now: datetime | None = None
) -> ImportResult:
    """Create or update contacts; a later row for the same number wins, an opt-out stays.

    Each imported profile value counts as set now (a profile question's max_age_days).
    """
    set_at = (now or utcnow()).isoformat()
    merged: dict[str, ImportRow] = {}
    for row in rows:
        key = vault.phone_hash(row.e164)
        if key in merged:
            earlier = merged[key]
            merged[key] = ImportRow(
                row.line,
                row.e164,
                row.language or earlier.language,
                row.consent_source or earlier.consent_source,
                {**earlier.profile, **row.profile},
            )
        else:
            merged[key] = row
    erased = set(
        session.scalars(
            select(DoNotContact.phone_hash).where(DoNotContact.phone_hash.in_(list(merged)))
        )
    )
    existing = {
        c.phone_hash: c
        for c in session.scalars(select(Contact).where(Contact.phone_hash.in_(list(merged))))
    }
    created = updated = 0
    for key, row in merged.items():
        contact = existing.get(key)
        if contact is None and key in erased:
            continue
        if contact is None:
            key_encrypted, cipher = vault.new_contact_key()
            contact = Contact(
                phone_hash=key,
                phone_encrypted=cipher.encrypt(row.e164),
                key_encrypted=key_encrypted,
                profile={},
            )
            session.add(contact)
            created += 1
        else:
            updated += 1
        if row.language:
            contact.language = row.language
        if row.consent_source:
            contact.consent_source = row.consent_source
        contact.profile = {**(contact.profile or {}), **row.profile}
        contact.profile_updated_at = {
            **(contact.profile_updated_at or {}),
            **dict.fromkeys(row.profile, set_at),
        }
        contact.timezone = timezone_for(contact.profile.get("state"), row.e164)
    session.flush()
    skipped = len([key for key in erased if key not in existing])
    return ImportResult(created, updated, len(rows) - len(merged), skipped)
