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

# The local part takes the characters addresses are written with (`!#$%&'*+=?^~` included);
# `＠` and `．` are how a phone keyboard in full-width mode writes the at sign and the dot.
_EMAIL = re.compile(r"[\w.!#$%&'*+=?^~-]+[@＠][\w-]+(?:[.．][\w-]+)+")

# What people put between the digits of a number: every kind of space (\s is Unicode-aware),
# dot, dash (each Unicode dash punctuation, and the minus signs), slash, underscore, comma and
# bracket, and the invisible characters that would otherwise split a number unseen.
_SPACES = "\\s\u200b\u200c\u200d\u2060\ufeff\u00ad\u180e"
_DOTS = ".\u00b7\u2022\u2024\u2027\u2219\u22c5\u3002\uff0e\uff61"
_DASHES = (
    "\\-\u058a\u05be\u1400\u1806\u2010-\u2015\u2e17\u2e1a\u2e3a\u2e3b\u2e40\u2e5d\u301c"
    "\u3030\u30a0\ufe31\ufe32\ufe58\ufe63\uff0d\u2212\u2043\u02d7\u2796\u207b\u208b"
)
_SLASHES = "/\\\\\u2044\u2215\u29f8\uff0f\uff3c"
_UNDERSCORES = "_\u2017\uff3f"
_COMMAS = ",\u060c\u3001\uff0c\ufe50\uff64\u201a"
_OPENING = "(\\[{<\uff08\uff3b\uff5b\u3008\u27e8\u3010\u3014"
_CLOSING = ")\\]}>\uff09\uff3d\uff5d\u3009\u27e9\u3011\u3015"
_SEPARATORS = _SPACES + _DOTS + _DASHES + _SLASHES + _UNDERSCORES + _COMMAS + _OPENING + _CLOSING
# Seven or more digits with any separators between them: phone numbers, but also ids, dates and
# card numbers, which a staff file does not need either. Separators and digits are disjoint, so
# matching stays linear.
_DIGIT_RUN = re.compile(rf"[+\uff0b]?[{_OPENING}]?\d(?:[{_SEPARATORS}]*\d){{6,}}[{_CLOSING}]?")


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
