"""System keywords, the fixed language menu, and the folding every match uses."""

from __future__ import annotations

import re
import unicodedata

OPT_OUT = frozenset(
    "STOP STOPALL UNSUBSCRIBE CANCEL END QUIT REVOKE OPTOUT PARAR ALTO BAJA CANCELAR".split()
    + ["SISPANN"]
)
# Twilio itself answers these on SMS (it blocks the number and confirms): we only record them.
TWILIO_OPT_OUT = frozenset("STOP STOPALL UNSUBSCRIBE CANCEL END QUIT REVOKE OPTOUT".split())
OPT_IN = frozenset("START UNSTOP YES ALTA INICIO".split())
# Written as workers are shown them, in GSM-7 spelling: "ED", not "ÈD" (matching folds accents).
HELP = frozenset("HELP INFO AYUDA ED AIDE EDE".split())
# Words of someone in trouble: they are help keywords too.
DISTRESS = frozenset({"AUXILIO", "SOCORRO", "AYUDENME", "AYUDAME", "ANMWE", "HELP ME"})
LANGUAGE = frozenset("IDIOMA LANGUAGE LANG LANGUE".split())
SKIP = frozenset("SALTAR SKIP SOTE".split())
ERASE = frozenset("BORRAR DELETE ERASE EFASE".split())

# Fixed numbering: a language keeps its number in every menu.
# (code, native name, other names a worker may type)
LANGUAGE_MENU: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("es", "Español", ("espanol", "spanish", "castellano", "espagnol", "panyol")),
    ("en", "English", ("ingles", "anglais", "angle")),
    ("ht", "Kreyòl ayisyen", ("kreyol", "creole", "criollo", "haitian", "kreyol ayisyen")),
    ("mix", "Tu'un savi (Mixteco)", ("mixteco", "tuun savi", "mixtec")),
    ("zap", "Diidxazá (Zapoteco)", ("zapoteco", "diidxaza", "zapotec")),
    ("trs", "Triqui", ("triqui", "trique")),
    ("kjb", "Q'anjob'al", ("qanjobal", "kanjobal")),
    ("quc", "K'iche'", ("kiche", "quiche")),
)
MENU_CODES = tuple(code for code, _, _ in LANGUAGE_MENU)
# How a language is written everywhere (surveys, contacts, the menu): 2 or 3 lowercase letters.
LANGUAGE_CODE = re.compile(r"[a-z]{2,3}")
# Languages whose system texts have catalogs of their own; the rest fall back to Spanish.
CATALOG_LANGUAGES = ("es", "en", "ht")

_EDGE_PUNCTUATION = re.compile(r"^[\W_]+|[\W_]+$", re.UNICODE)
_SPACES = re.compile(r"\s+")


def fold(text: str) -> str:
    """Lower case, no accents, no edge punctuation, single spaces: the form every match uses."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return _SPACES.sub(" ", _EDGE_PUNCTUATION.sub("", plain.strip()))


def _folded(words: frozenset[str]) -> frozenset[str]:
    return frozenset(fold(w) for w in words)


SYSTEM_KEYWORDS: dict[str, frozenset[str]] = {
    "opt_out": _folded(OPT_OUT),
    "opt_in": _folded(OPT_IN),
    "help": _folded(HELP | DISTRESS),
    "language": _folded(LANGUAGE),
    "skip": _folded(SKIP),
    "erase": _folded(ERASE),
}


def system_keyword(text: str) -> str | None:
    """The kind of system keyword a message is (opt_out, opt_in, help, language, skip, erase),
    or None."""
    folded = fold(text)
    for kind, words in SYSTEM_KEYWORDS.items():
        if folded in words:
            return kind
    return None


def menu_number(code: str) -> int:
    """The fixed number of a language in every menu."""
    return MENU_CODES.index(code) + 1 if code in MENU_CODES else len(MENU_CODES) + 1


def language_name(code: str) -> str:
    """A language's native name (its code when it is not on the menu)."""
    return next((name for c, name, _ in LANGUAGE_MENU if c == code), code)
