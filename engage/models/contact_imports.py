from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from engage.db import Base, utcnow


class ContactImport(Base):
    """A contacts file uploaded on the staff pages: checked, then imported once confirmed.

    The file is kept only between its check and its import, encrypted with the PII key, and
    deleted once the import is done or failed (or the upload was left unconfirmed: the clock).
    """

    __tablename__ = "contact_imports"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    actor: Mapped[str] = mapped_column(String(254))
    # The file's name as uploaded (for the pages and the audit; never its content).
    name: Mapped[str] = mapped_column(String(255))
    # The uploaded bytes, encrypted with the PII key; None once imported, failed or forgotten.
    file_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary)
    # checked → queued → running → done | failed; checked → forgotten (never confirmed).
    state: Mapped[str] = mapped_column(String(10), default="checked")
    rows: Mapped[int] = mapped_column(default=0)
    numbers: Mapped[int] = mapped_column(default=0)
    # What the check foresaw: numbers not known yet, known ones, known and opted out, erased.
    new_numbers: Mapped[int] = mapped_column(default=0)
    known_numbers: Mapped[int] = mapped_column(default=0)
    opted_out_numbers: Mapped[int] = mapped_column(default=0)
    erased_numbers: Mapped[int] = mapped_column(default=0)
    # What the import did (None until it is done).
    created: Mapped[int | None]
    updated: Mapped[int | None]
    merged_in_file: Mapped[int | None]
    opted_out_kept: Mapped[int | None]
    skipped_erased: Mapped[int | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
