"""Contact files uploaded on the staff pages: checked at once (every bad row by line, nothing
saved), kept encrypted until staff confirm, then imported as `engage contacts import` does.

The file is the same CSV the command reads. Between the check and the import it is kept in the
database encrypted with the PII key, and it is deleted when the import is done or has failed,
or an hour after an upload nobody confirmed (the clock).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from engage.db import rows_matched
from engage.models import AuditEntry, ContactImport, User
from engage.privacy import Vault
from engage.services.contacts import (
    ImportRow,
    Progress,
    import_contacts,
    preview_import,
    read_rows,
)

# Uploads may be larger than other requests (1 MB): about 30 bytes a row.
MAX_UPLOAD_BYTES = 8 * 1024 * 1024
# Files of up to this many rows are imported within the request; larger ones on `bulk`.
IN_REQUEST_ROWS = 2000
# An upload nobody confirmed is forgotten after this long.
UPLOAD_LIFETIME = timedelta(hours=1)
# An import still queued or running after this long lost its worker (its transaction rolled
# back: nothing was imported) and is marked failed.
RUN_LIFETIME = timedelta(hours=2)

CHECKED, QUEUED, RUNNING, DONE, FAILED, FORGOTTEN = (
    "checked",
    "queued",
    "running",
    "done",
    "failed",
    "forgotten",
)


class NotTextError(ValueError):
    """The upload is not UTF-8 text."""


def read_upload(data: bytes, *, name: str, default_region: str) -> list[ImportRow]:
    """The rows of an uploaded file, checked; ContactImportError names every bad line."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise NotTextError(f"{name}: not UTF-8 text") from None
    return read_rows(io.StringIO(text, newline=""), default_region=default_region, name=name)


def check_upload(
    session: Session,
    vault: Vault,
    data: bytes,
    *,
    name: str,
    default_region: str,
    user: User,
    now: datetime,
) -> ContactImport:
    """Check an uploaded file and keep it (encrypted) for its confirmation, with what importing
    it would do. Raises ContactImportError or NotTextError, and then keeps nothing."""
    rows = read_upload(data, name=name, default_region=default_region)
    preview = preview_import(session, vault, rows)
    upload = ContactImport(
        user_id=user.id,
        actor=user.email,
        name=name[:255],
        file_encrypted=vault.encrypt_bytes(data),
        state=CHECKED,
        rows=preview.rows,
        numbers=preview.numbers,
        new_numbers=preview.new,
        known_numbers=preview.known,
        opted_out_numbers=preview.opted_out,
        erased_numbers=preview.erased,
        created_at=now,
    )
    session.add(upload)
    session.flush()
    return upload


def is_large(upload: ContactImport) -> bool:
    """Whether the import runs on the `bulk` queue rather than in the request."""
    return upload.rows > IN_REQUEST_ROWS


def confirm_upload(session: Session, upload_id: int) -> bool:
    """Staff confirmed: the upload is queued for its import, once (False if it was already,
    or is gone)."""
    claimed = session.execute(
        update(ContactImport)
        .where(
            ContactImport.id == upload_id,
            ContactImport.state == CHECKED,
            ContactImport.file_encrypted.is_not(None),
        )
        .values(state=QUEUED)
    )
    return rows_matched(claimed) == 1


def start_import(session: Session, upload_id: int, now: datetime) -> bool:
    """The import begins: False when it is not waiting to (done already, or failed)."""
    claimed = session.execute(
        update(ContactImport)
        .where(ContactImport.id == upload_id, ContactImport.state == QUEUED)
        .values(state=RUNNING, started_at=now)
    )
    return rows_matched(claimed) == 1


def run_import(
    session: Session,
    vault: Vault,
    upload_id: int,
    *,
    default_region: str,
    now: datetime,
    progress: Progress | None = None,
) -> ContactImport | None:
    """Import a started upload in the caller's transaction, record what it did (audited) and
    delete the file; None when it is not running (an earlier run finished it)."""
    upload = session.get(ContactImport, upload_id, with_for_update=True)
    if upload is None or upload.state != RUNNING or upload.file_encrypted is None:
        return None
    data = vault.decrypt_bytes(upload.file_encrypted)
    rows = read_upload(data, name=upload.name, default_region=default_region)
    result = import_contacts(session, vault, rows, now=now, progress=progress)
    upload.created = result.created
    upload.updated = result.updated
    upload.merged_in_file = result.merged_in_file
    upload.opted_out_kept = result.opted_out_kept
    upload.skipped_erased = result.skipped_erased
    upload.state = DONE
    upload.file_encrypted = None
    upload.finished_at = now
    session.add(
        AuditEntry(
            user_id=upload.user_id,
            actor=upload.actor,
            action="import",
            survey_id=None,
            parameters={
                "file": upload.name,
                "rows": upload.rows,
                "created": result.created,
                "updated": result.updated,
                "merged_in_file": result.merged_in_file,
                "opted_out_kept": result.opted_out_kept,
                "skipped_erased": result.skipped_erased,
            },
            created_at=now,
        )
    )
    session.flush()
    return upload


def fail_import(session: Session, upload_id: int, now: datetime) -> None:
    """The import failed (its transaction rolled back: nothing imported); the file goes."""
    session.execute(
        update(ContactImport)
        .where(ContactImport.id == upload_id, ContactImport.state.in_((QUEUED, RUNNING)))
        .values(state=FAILED, file_encrypted=None, finished_at=now)
    )


def forget_stale_uploads(session: Session, now: datetime) -> int:
    """Delete the files of uploads never confirmed within UPLOAD_LIFETIME, and of imports that
    lost their worker; how many."""
    forgotten = session.execute(
        update(ContactImport)
        .where(ContactImport.state == CHECKED, ContactImport.created_at < now - UPLOAD_LIFETIME)
        .values(state=FORGOTTEN, file_encrypted=None)
    )
    lost = session.execute(
        update(ContactImport)
        .where(
            ContactImport.state.in_((QUEUED, RUNNING)),
            or_(
                ContactImport.started_at < now - RUN_LIFETIME,
                ContactImport.created_at < now - RUN_LIFETIME - UPLOAD_LIFETIME,
            ),
        )
        .values(state=FAILED, file_encrypted=None, finished_at=now)
    )
    return rows_matched(forgotten) + rows_matched(lost)


@dataclass(frozen=True)
class ImportStatus:
    """An upload as its progress page and JSON show it."""

    id: int
    name: str
    state: str
    rows: int
    numbers: int
    done: int
    created: int | None
    updated: int | None
    merged_in_file: int | None
    opted_out_kept: int | None
    skipped_erased: int | None

    def as_json(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "rows": self.rows,
            "numbers": self.numbers,
            "done": self.done,
            "created": self.created,
            "updated": self.updated,
            "merged_in_file": self.merged_in_file,
            "opted_out_kept": self.opted_out_kept,
            "skipped_erased": self.skipped_erased,
        }


def import_status(session: Session, upload_id: int, done: int | None) -> ImportStatus | None:
    """An upload's state; `done` is the progress the running import reported (numbers)."""
    upload = session.scalar(select(ContactImport).where(ContactImport.id == upload_id))
    if upload is None:
        return None
    finished = upload.numbers if upload.state == DONE else (done or 0)
    return ImportStatus(
        id=upload.id,
        name=upload.name,
        state=upload.state,
        rows=upload.rows,
        numbers=upload.numbers,
        done=min(finished, upload.numbers),
        created=upload.created,
        updated=upload.updated,
        merged_in_file=upload.merged_in_file,
        opted_out_kept=upload.opted_out_kept,
        skipped_erased=upload.skipped_erased,
    )
