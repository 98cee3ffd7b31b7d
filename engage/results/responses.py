"""The staff responses file: pseudonymous ids, answer cells, and free text with contacts masked."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

MASKED_NUMBER = "[number]"
MASKED_EMAIL = "[email]"
SKIPPED_CELL = "_skipped"
MISSED_CELL = "_missed"
MULTI_SEPARATOR = ";"
FIXED_COLUMNS = ("respondent_id", "version", "language", "status", "answered_on")

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
# Seven or more digits, with spaces, dots, dashes or parentheses between them: phone numbers,
# but also ids, dates and card numbers, which a staff file does not need either. Separators and
# digits are disjoint, so matching stays linear.
_DIGIT_RUN = re.compile(r"\+?\(?\d(?:[\s().-]*\d){6,}\)?")


@dataclass
class ResponsesExport:
    """The staff file before it is written: a header and rows produced as they are read."""

    survey_id: str
    columns: list[str]
    rows: Iterator[Sequence[Any]]


def respondent_id(contact_id: int, secret_key: str) -> str:
    """A stable pseudonym for a contact: a keyed hash, truncated, that cannot be reversed."""
    digest = hmac.new(secret_key.encode(), f"respondent:{contact_id}".encode(), hashlib.sha256)
    return digest.hexdigest()[:16]


def mask_free_text(text: str) -> str:
    """Free text with every e-mail address and every run of 7+ digits masked."""
    return _DIGIT_RUN.sub(MASKED_NUMBER, _EMAIL.sub(MASKED_EMAIL, text))


def stored_value(question_type: str | None, text: str | None) -> Any:
    """An answer's value from the text form of its JSON (`value ->> 'v'`)."""
    if text is None:
        return None
    try:
        if question_type == "multi":
            value = json.loads(text)
            return value if isinstance(value, list) else text
        if question_type == "number":
            return float(text)
    except ValueError:
        pass
    return text


def answer_cell(question_type: str | None, status: str, value: Any) -> Any:
    """One answer as a responses cell: the value, `_skipped`/`_missed`, free text masked."""
    if status == "skipped":
        return SKIPPED_CELL
    if status == "missed":
        return MISSED_CELL
    if value is None:
        return ""
    if isinstance(value, list):
        return MULTI_SEPARATOR.join(str(v) for v in value)
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, int | float):
        return value
    # A text question, or anything unexpected: treated as free text, never trusted.
    return mask_free_text(str(value)) if question_type in (None, "text") else str(value)
