"""Safety word lists: what a worker in danger may write, per language and topic. Pure.

The lists are data beside the catalogs (`locales/<lang>/safety.txt`), kept and extended by
partner organizations: `[topic]` headers, then one phrase per line, `#` starts a comment. A
phrase matches when its words appear together in a message, folded as keywords are (case,
accents and punctuation do not matter), on word boundaries.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from engage.survey import keywords as kw

SAFETY_FILE = "safety.txt"
DISTRESS = "distress"
_WORDS = re.compile(r"[^\W_]+")
_HEADER = re.compile(r"^\[\s*([a-z0-9_]+)\s*\]$")


class SafetyListError(ValueError):
    """A safety list that cannot be read: the file and line say where."""


@dataclass(frozen=True)
class SafetyMatch:
    topic: str
    language: str


def words_of(text: str) -> str:
    """A text's words, folded and joined by single spaces: the form phrases are matched in."""
    return " ".join(_WORDS.findall(kw.fold(text)))


def parse_safety_list(text: str, source: str = SAFETY_FILE) -> tuple[tuple[str, str], ...]:
    """(folded phrase, topic) pairs, in file order."""
    topic: str | None = None
    phrases: list[tuple[str, str]] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        header = _HEADER.match(line.lower())
        if header:
            topic = header.group(1)
            continue
        if line.startswith("["):
            raise SafetyListError(f"{source}:{number}: a topic is [letters_and_digits]")
        if topic is None:
            raise SafetyListError(f"{source}:{number}: a phrase before any [topic]")
        phrase = words_of(line)
        if phrase:
            phrases.append((phrase, topic))
    return tuple(phrases)


class SafetyWords:
    """The safety lists under a locales directory, each read once, on first use."""

    def __init__(self, locales_dir: Path) -> None:
        self.locales_dir = Path(locales_dir)
        self._lists: dict[str, tuple[tuple[str, str], ...]] = {}

    def phrases(self, language: str) -> tuple[tuple[str, str], ...]:
        found = self._lists.get(language)
        if found is None:
            path = self.locales_dir / language / SAFETY_FILE
            text = path.read_text(encoding="utf-8") if path.is_file() else ""
            found = self._lists[language] = parse_safety_list(text, f"{language}/{SAFETY_FILE}")
        return found

    def find(self, text: str, languages: Iterable[str]) -> SafetyMatch | None:
        """The first topic whose phrase is in the text, trying the languages in order."""
        padded = f" {words_of(text)} "
        if padded == "  ":
            return None
        for language in dict.fromkeys(languages):
            for phrase, topic in self.phrases(language):
                if f" {phrase} " in padded:
                    return SafetyMatch(topic, language)
        return None


@lru_cache(maxsize=8)
def safety_words(locales_dir: Path) -> SafetyWords:
    """One SafetyWords per locales directory for the process (the lists never change while
    it runs)."""
    return SafetyWords(locales_dir)


def is_distress_keyword(text: str) -> bool:
    """Whether a message is exactly one of the distress keywords (AUXILIO, ANMWE, HELP ME…)."""
    return kw.fold(text) in _DISTRESS_KEYWORDS


_DISTRESS_KEYWORDS = frozenset(kw.fold(word) for word in kw.DISTRESS)
