from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey
from sqlalchemy.orm import Mapped, mapped_column

from engage.db import Base


class Thread(Base):
    """Staff's hold on one contact's thread: who has it, and who last marked it handled.

    Whether a thread is open is not stored here: it is open while any of its messages that need
    a person has no `handled_at` (models/messages.py `is_waiting_for_staff`), so a new such
    message opens it again without anything written on the webhook's path.
    """

    __tablename__ = "threads"

    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"), primary_key=True)
    assigned_to_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    assigned_at: Mapped[datetime | None]
    handled_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    handled_at: Mapped[datetime | None]
    # The time of the last message that marking handled covered: a text answer given later
    # waits (text answers are found through their answer rows, services/inbox.py).
    handled_through_at: Mapped[datetime | None]
