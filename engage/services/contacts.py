"""Importing contacts from a CSV file: all rows or none, duplicates merged, opt-outs kept."""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engage.db import insert_returning_ids, table_of, utcnow
from engage.models import Contact, DoNotContact
from engage.models.contacts import new_record_key
from engage.privacy import PhoneNumberError, Vault, normalize_number
from engage.services.quiet_hours import timezone_for
from engage.survey.keywords import LANGUAGE_CODE

REQUIRED_COLUMNS = ("phone", "language", "consent_source")
_PROFILE_KEY = re.compile(r"^[a-z_][a-z0-9_]*$")


_contacts = table_of(Contact)
# Numbers looked up and written per round: each round's look-ups stay well under SQLite's limit
# on statement parameters, and a progress bar moves after each.
CHUNK = 1000


@dataclass(frozen=True)
class RowProblem:
    """One bad line of a contacts file: what is wrong (`kind`) and the value at fault, if it
    may be shown (never a phone number: a mistyped one may still be someone's)."""

    line: int
    kind: str  # missing_columns | bad_columns | not_a_number | impossible_number | bad_language
    value: str = ""

    def describe(self) -> str:
        return {
            "missing_columns": f"missing column(s) {self.value}",
            "bad_columns": f"bad profile column(s) {self.value}",
            "not_a_number": "not a phone number",
            "impossible_number": "not a possible phone number",
            "bad_language": f"language {self.value!r} is not a language code",
        }[self.kind]


class ContactImportError(ValueError):
    """The file cannot be imported; `problems` lists every bad line (as `FILE:LINE: message`),
    `rows` the same as RowProblem."""

    def __init__(self, rows: list[RowProblem], name: str) -> None:
        super().__init__(f"{len(rows)} problem(s)")
        self.rows = rows
        self.problems = [f"{name}:{row.line}: {row.describe()}" for row in rows]


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
    # Known contacts in the file who had opted out: updated, and still opted out.
    opted_out_kept: int = 0


@dataclass(frozen=True)
class ImportPreview:
    """What importing the rows would do, read before anything is written."""

    rows: int
    numbers: int  # distinct numbers: rows minus duplicates merged in the file
    new: int
    known: int
    opted_out: int  # known and opted out: the opt-out stays
    erased: int  # on the do-not-contact list: skipped


# Called after each round of an import with (numbers done, numbers in all).
Progress = Callable[[int, int], None]


def read_rows(lines: Iterable[str], *, default_region: str, name: str) -> list[ImportRow]:
    """Parse and check every row; raises ContactImportError naming each bad line."""
    reader = csv.DictReader(lines)
    header = [h.strip() for h in reader.fieldnames or []]
    problems: list[RowProblem] = []
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise ContactImportError([RowProblem(1, "missing_columns", ", ".join(missing))], name)
    bad_keys = [h for h in header if h not in REQUIRED_COLUMNS and not _PROFILE_KEY.match(h)]
    if bad_keys:
        raise ContactImportError([RowProblem(1, "bad_columns", ", ".join(bad_keys))], name)
    rows: list[ImportRow] = []
    for record in reader:
        line = reader.line_num
        values = {(k or "").strip(): (v or "").strip() for k, v in record.items() if k}
        try:
            e164 = normalize_number(values.get("phone", ""), default_region)
        except PhoneNumberError as exc:
            problems.append(RowProblem(line, exc.kind))
            continue
        language = values.get("language") or None
        if language is not None and not LANGUAGE_CODE.fullmatch(language):
            problems.append(RowProblem(line, "bad_language", language))
            continue
        profile = {k: v for k, v in values.items() if k not in REQUIRED_COLUMNS and v}
        rows.append(ImportRow(line, e164, language, values.get("consent_source") or None, profile))
    if problems:
        raise ContactImportError(problems, name)
    return rows


def _merge(vault: Vault, rows: list[ImportRow]) -> dict[str, ImportRow]:
    """One row per number (by its keyed hash): a later row wins, field by field."""
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
    return merged


def _chunks(keys: list[str]) -> Iterable[list[str]]:
    for start in range(0, len(keys), CHUNK):
        yield keys[start : start + CHUNK]


def preview_import(session: Session, vault: Vault, rows: list[ImportRow]) -> ImportPreview:
    """What importing these (checked) rows would do; reads only."""
    keys = list(_merge(vault, rows))
    known = opted_out = erased = 0
    for chunk in _chunks(keys):
        found: dict[str, bool] = {
            phone_hash: is_opted_out
            for phone_hash, is_opted_out in session.execute(
                select(Contact.phone_hash, Contact.is_opted_out).where(
                    Contact.phone_hash.in_(chunk)
                )
            )
        }
        known += len(found)
        opted_out += sum(found.values())
        erased += len(
            set(
                session.scalars(
                    select(DoNotContact.phone_hash).where(DoNotContact.phone_hash.in_(chunk))
                )
            )
            - set(found)
        )
    return ImportPreview(
        rows=len(rows),
        numbers=len(keys),
        new=len(keys) - known - erased,
        known=known,
        opted_out=opted_out,
        erased=erased,
    )


def import_contacts(
    session: Session,
    vault: Vault,
    rows: list[ImportRow],
    *,
    now: datetime | None = None,
    progress: Progress | None = None,
) -> ImportResult:
    """Create or update contacts; a later row for the same number wins, an opt-out stays.

    Each imported profile value counts as set now (a profile question's max_age_days). All in
    the caller's transaction (nothing is half-imported), a round of numbers at a time;
    `progress` hears after each round. New contacts are written in bulk (COPY on PostgreSQL:
    db.insert_returning_ids), known ones updated in place.
    """
    now = now or utcnow()
    merged = _merge(vault, rows)
    keys = list(merged)
    created = updated = kept = skipped = done = 0
    for chunk in _chunks(keys):
        erased = set(
            session.scalars(
                select(DoNotContact.phone_hash).where(DoNotContact.phone_hash.in_(chunk))
            )
        )
        existing = {
            c.phone_hash: c
            for c in session.scalars(select(Contact).where(Contact.phone_hash.in_(chunk)))
        }
        new_rows = []
        for key in chunk:
            row = merged[key]
            contact = existing.get(key)
            if contact is not None:
                _update_contact(contact, row, now)
                kept += contact.is_opted_out
            elif key in erased:
                skipped += 1
            else:
                new_rows.append(_new_contact(vault, key, row, now))
        session.flush()
        insert_returning_ids(session, _contacts, new_rows)
        created += len(new_rows)
        updated += len(existing)
        done += len(chunk)
        if progress is not None:
            progress(done, len(keys))
    return ImportResult(created, updated, len(rows) - len(merged), skipped, kept)


def _new_contact(vault: Vault, key: str, row: ImportRow, now: datetime) -> dict[str, Any]:
    """A new contact's row, as the ORM would write it."""
    key_encrypted, cipher = vault.new_contact_key()
    return {
        "phone_hash": key,
        "phone_encrypted": cipher.encrypt(row.e164),
        "key_encrypted": key_encrypted,
        "language": row.language,
        "consent_source": row.consent_source,
        "has_consented": False,
        "is_opted_out": False,
        "is_menu_open": False,
        "is_simulated": False,
        "profile": row.profile,
        "profile_updated_at": dict.fromkeys(row.profile, now.isoformat()),
        "record_key": new_record_key(),
        "timezone": timezone_for(row.profile.get("state"), row.e164),
        "created_at": now,
        "updated_at": now,
    }


def _update_contact(contact: Contact, row: ImportRow, now: datetime) -> None:
    """A known contact: what the row gives replaces what was known; its opt-out stays."""
    if row.language:
        contact.language = row.language
    if row.consent_source:
        contact.consent_source = row.consent_source
    contact.profile = {**(contact.profile or {}), **row.profile}
    contact.profile_updated_at = {
        **(contact.profile_updated_at or {}),
        **dict.fromkeys(row.profile, now.isoformat()),
    }
    contact.timezone = timezone_for(contact.profile.get("state"), row.e164)
