"""How many SMS segments a text costs: GSM-7 when every character allows it, UCS-2 otherwise."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from functools import lru_cache

# GSM 03.38 default alphabet (3GPP TS 23.038) without ESC.
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ"
    " !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# Reached through ESC, so each costs two septets.
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")

# Characters with no letter under them that have a plain GSM-7 stand-in.
_PLAIN = str.maketrans({"‘": "'", "’": "'", "“": '"', "”": '"', "–": "-", "—": "-", "…": "..."})

GSM7 = "GSM-7"
UCS2 = "UCS-2"
# (single message, per part of a concatenated message): the rest of a part is its header.
_SIZES = {GSM7: (160, 153), UCS2: (70, 67)}


@dataclass(frozen=True)
class Segments:
    encoding: str
    units: int  # septets for GSM-7, UTF-16 code units for UCS-2
    segments: int


def is_gsm7(text: str) -> bool:
    """Whether every character of the text is in the GSM-7 basic or extension table."""
    return all(ch in GSM7_BASIC or ch in GSM7_EXTENSION for ch in text)


def to_gsm7(text: str) -> str:
    """The text in plain GSM-7 spelling: a character outside GSM-7 loses its accent (á→a, È→E).

    A character with no GSM-7 form (an emoji) is kept: the message then goes as UCS-2.
    """
    if is_gsm7(text):
        return text
    out = []
    for ch in text.translate(_PLAIN):
        if ch in GSM7_BASIC or ch in GSM7_EXTENSION:
            out.append(ch)
            continue
        base = "".join(c for c in unicodedata.normalize("NFD", ch) if not unicodedata.combining(c))
        out.append(base if base and is_gsm7(base) else ch)
    return "".join(out)


def _costs(text: str, encoding: str) -> list[int]:
    if encoding == GSM7:
        return [2 if ch in GSM7_EXTENSION else 1 for ch in text]
    # Characters outside the BMP (most emoji) are a surrogate pair in UTF-16.
    return [2 if ord(ch) > 0xFFFF else 1 for ch in text]


@lru_cache(maxsize=1024)
def count_segments(text: str) -> Segments:
    """The encoding, size in units and number of segments an SMS with this text costs.

    Kept per text: the same questions and system texts are measured for every message.
    """
    encoding = GSM7 if is_gsm7(text) else UCS2
    costs = _costs(text, encoding)
    units = sum(costs)
    single, per_part = _SIZES[encoding]
    if units == 0:
        return Segments(encoding, 0, 0)
    if units <= single:
        return Segments(encoding, units, 1)
    # Phones never split an escape pair or a surrogate pair across parts, so a part may
    # carry one unit less than its size.
    segments = 1
    used = 0
    for cost in costs:
        if used + cost > per_part:
            segments += 1
            used = 0
        used += cost
    return Segments(encoding, units, segments)
