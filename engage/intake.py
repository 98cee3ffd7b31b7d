"""Worker text as it comes in: one cleaning for every path in (webhook, spool replay, simulate)."""

from __future__ import annotations

import re

# C0 and C1 control characters, and DEL between them, but tab and newline. PostgreSQL refuses a
# NUL in text (the message would be lost, and a spooled one would block every replay behind
# it); the others carry nothing a person wrote and can steer a terminal or a spreadsheet.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]+")


def strip_control_characters(text: str) -> str:
    """The text without C0/C1 control characters (tab and newline are kept)."""
    return _CONTROL.sub("", text)
