"""Reading a worker's reply to a question: numbers, number words, labels, yes/no words.

Every match ignores case, accents and surrounding punctuation (`keywords.fold`). Words built in
here (number words, yes/no words, courtesy words and articles) are accepted in Spanish and English
always, plus the survey's own languages where we have them; labels, `match` words, `exclusive`
choices and a number question's `wrong_units` come from the survey file.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import NamedTuple

from engage.survey.definition import Choice, Question
from engage.survey.keywords import fold

ALWAYS_ACCEPTED = ("es", "en")

AnswerValue = str | float | int | tuple[str, ...]


@dataclass(frozen=True)
class Answer:
    """A parsed reply: the value stored for the question."""

    value: AnswerValue


# --- number words -------------------------------------------------------------------------------
#
# Kinds, which say how a word combines with its neighbours:
#   unit      1–9: may follow a ten, a hundred or a thousand ("treinta y dos", "one hundred five")
#   teen      a whole number below 100 that takes nothing smaller after it (10–19; es 21–29)
#   ten       20, 30 … 90: may take a unit ("forty-five", "cuarenta y cinco", "treinta cinco")
#   score     ht 60 and 80: a ten that may also take 10–19 ("swasant dis" 70, "katreven douz" 92)
#   hundreds  es ciento, doscientos…: may take a ten, teen or unit ("ciento veinte")
#   cien      es 100 when nothing smaller follows ("cien", "cien mil")
#   hundred   en multiplier ("one hundred", "a hundred", "fifteen hundred")
#   thousand  multiplier ("mil", "dos mil", "a thousand", "5 mil")
#   single    a number on its own, never combined (zero, cero, zewo)
# A weak word is also an ordinary word of another language ("un"/"una" articles, ht "en"/"de"):
# it counts when it is the whole message, or inside a number ("treinta y un"), never to start one.


class _Word(NamedTuple):
    value: int
    kind: str
    is_weak: bool = False


def _words(kind: str, names: str, first: int, step: int = 1) -> dict[str, _Word]:
    return {name: _Word(first + i * step, kind) for i, name in enumerate(names.split())}


_ES_WORDS: dict[str, _Word] = {
    "cero": _Word(0, "single"),
    "sero": _Word(0, "single"),
    "un": _Word(1, "unit", is_weak=True),
    "una": _Word(1, "unit", is_weak=True),
    **_words("unit", "uno dos tres cuatro cinco seis siete ocho nueve", 1),
    # Common spellings of workers who write as they speak (seseo, b/v).
    "sinco": _Word(5, "unit"),
    "nuebe": _Word(9, "unit"),
    **_words(
        "teen",
        "diez once doce trece catorce quince dieciseis diecisiete dieciocho diecinueve",
        10,
    ),
    "dies": _Word(10, "teen"),
    "veintiun": _Word(21, "teen"),
    "veintiuna": _Word(21, "teen"),
    **_words(
        "teen",
        "veintiuno veintidos veintitres veinticuatro veinticinco veintiseis veintisiete "
        "veintiocho veintinueve",
        21,
    ),
    **_words("ten", "veinte treinta cuarenta cincuenta sesenta setenta ochenta noventa", 20, 10),
    "beinte": _Word(20, "ten"),
    "sincuenta": _Word(50, "ten"),
    "cien": _Word(100, "cien"),
    "sien": _Word(100, "cien"),
    "ciento": _Word(100, "hundreds"),
    **_words(
        "hundreds",
        "doscientos trescientos cuatrocientos quinientos seiscientos setecientos ochocientos "
        "novecientos",
        200,
        100,
    ),
    **_words(
        "hundreds",
        "doscientas trescientas cuatrocientas quinientas seiscientas setecientas ochocientas "
        "novecientas",
        200,
        100,
    ),
    "mil": _Word(1000, "thousand"),
}

_EN_WORDS: dict[str, _Word] = {
    "zero": _Word(0, "single"),
    **_words("unit", "one two three four five six seven eight nine", 1),
    **_words(
        "teen",
        "ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen",
        10,
    ),
    **_words("ten", "twenty thirty forty fifty sixty seventy eighty ninety", 20, 10),
    "hundred": _Word(100, "hundred"),
    "thousand": _Word(1000, "thousand"),
}

# Haitian Creole, folded ("sèt" is "set"). Compounds are one word in the standard spelling
# ("trannsenk" 35, "swasanndis" 70, "katrevendiznèf" 99) but workers drop or double the n and t,
# so every stem form is taken with every unit; written apart ("trant senk", "swasant dis") they
# combine like Spanish words. "en" and "de" are also French and Creole words: weak.
_HT_UNITS: dict[int, tuple[str, ...]] = {
    1: ("youn", "en"),
    2: ("de",),
    3: ("twa",),
    4: ("kat",),
    5: ("senk",),
    6: ("sis",),
    7: ("set",),
    8: ("uit", "wit"),
    9: ("nef",),
}
_HT_TEENS: dict[int, tuple[str, ...]] = {
    10: ("dis",),
    11: ("onz",),
    12: ("douz",),
    13: ("trez",),
    14: ("katoz",),
    15: ("kenz",),
    16: ("sez",),
    17: ("diset",),
    18: ("dizuit", "dizwit"),
    19: ("diznef", "disnef"),
}
# Tens by their stem; 60 and 80 count on by scores, so they also take 10–19 (70–79, 90–99).
_HT_TENS: dict[int, str] = {
    20: "ven",
    30: "tran",
    40: "karan",
    50: "senkan",
    60: "swasan",
    80: "katreven",
}
_HT_SCORES = (60, 80)
_HT_ONE_AFTER_A_TEN = ("eyen", "yen", "en", "youn")  # "venteyen", "trant en"


def _haitian_words() -> dict[str, _Word]:
    table: dict[str, _Word] = {"zewo": _Word(0, "single"), "san": _Word(100, "cien")}
    for value, names in (_HT_UNITS | _HT_TEENS).items():
        for name in names:
            table[name] = _Word(value, "unit" if value < 10 else "teen", name in ("en", "de"))
    for ten, stem in _HT_TENS.items():
        kind = "score" if ten in _HT_SCORES else "ten"
        for form in (stem, stem + "t", stem + "n"):
            table.setdefault(form, _Word(ten, kind))
        below = {1: _HT_ONE_AFTER_A_TEN} | {u: n for u, n in _HT_UNITS.items() if u > 1}
        if ten in _HT_SCORES:
            below |= _HT_TEENS
        for form in (stem, stem + "t", stem + "n"):
            for value, names in below.items():
                for name in names:
                    table.setdefault(form + name, _Word(ten + value, "teen"))
    return table


_HT_WORDS: dict[str, _Word] = _haitian_words()

_NUMBER_WORDS: dict[str, dict[str, _Word]] = {"es": _ES_WORDS, "en": _EN_WORDS, "ht": _HT_WORDS}

# Between parts of one spelled number: "treinta y dos", "one hundred and five".
_NUMBER_CONNECTORS = frozenset({"y", "and"})
# After a number: "cuarenta y media", "forty and a half".
_HALVES = (("y", "medio"), ("y", "media"), ("and", "half"), ("and", "a", "half"))


def number_words(language: str) -> dict[str, int]:
    """The number words of a language (folded) and their values; empty where we have none."""
    return {word: entry.value for word, entry in _NUMBER_WORDS.get(language, {}).items()}


def _accepted(languages: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys((*ALWAYS_ACCEPTED, *languages)))


@lru_cache(maxsize=64)
def _number_table(languages: tuple[str, ...]) -> dict[str, _Word]:
    table: dict[str, _Word] = {}
    for language in languages:
        for word, entry in _NUMBER_WORDS.get(language, {}).items():
            table.setdefault(word, entry)
    return table


class _Spelled:
    """A number being read word by word, e.g. "ciento" "veinte" "y" "cinco"."""

    def __init__(self) -> None:
        self.thousands: int | None = None
        self.hundreds: int | None = None
        self.tens: int | None = None
        self.units: int | None = None
        self.is_closed = False  # nothing below a hundred may follow (a teen, "cien")
        self.is_final = False  # nothing at all may follow (a single word)
        self.last_kind = ""

    @property
    def value(self) -> int:
        group = (self.hundreds or 0) + (self.tens or 0) + (self.units or 0)
        return (self.thousands or 0) * 1000 + group

    @property
    def has_group(self) -> bool:
        return (self.hundreds, self.tens, self.units) != (None, None, None)

    def accepts(self, kind: str) -> bool:
        if self.is_final:
            return False
        below_hundred_free = not self.is_closed and self.tens is None and self.units is None
        if kind == "unit":
            return not self.is_closed and self.units is None
        if kind == "teen" and self.last_kind == "score":
            return True
        if kind in ("teen", "ten", "score"):
            return below_hundred_free
        if kind in ("hundreds", "cien"):
            return below_hundred_free and self.hundreds is None
        if kind == "hundred":
            return self.hundreds is None and (self.tens, self.units) != (None, None)
        if kind == "thousand":
            return self.thousands is None
        return False  # "single" only starts a number

    def accepts_after_connector(self, kind: str) -> bool:
        if self.last_kind in ("ten", "score"):
            return kind == "unit" and self.accepts(kind)
        return self.last_kind in ("hundreds", "hundred", "thousand") and self.accepts(kind)

    def take(self, word: _Word) -> None:
        kind = word.kind
        if kind == "unit":
            self.units = word.value
        elif kind == "teen":
            self.tens, self.is_closed = (self.tens or 0) + word.value, True
        elif kind in ("ten", "score"):
            self.tens = word.value
        elif kind in ("hundreds", "cien"):
            self.hundreds, self.is_closed = word.value, kind == "cien"
        elif kind == "hundred":
            self.hundreds = ((self.tens or 0) + (self.units or 0) or 1) * 100
            self.tens = self.units = None
            self.is_closed = False
        elif kind == "thousand":
            self.thousands = self.value if self.has_group else 1
            self.hundreds = self.tens = self.units = None
            self.is_closed = False
        else:
            self.tens, self.is_final = word.value, True
        self.last_kind = kind


# A token is a number already read from digits, or a folded word.
_Token = float | str


class _Found(NamedTuple):
    value: float
    start: int
    end: int


def _read_spelled(
    tokens: Sequence[_Token], i: int, table: dict[str, _Word], allow_weak: bool
) -> tuple[int, int]:
    """The value of the spelled number starting at tokens[i] and the index after it (or 0, i)."""
    first = tokens[i]
    following = tokens[i + 1] if i + 1 < len(tokens) else None
    following_word = table.get(following) if isinstance(following, str) else None
    entry = table.get(first) if isinstance(first, str) else None
    if (
        first == "a"
        and following_word is not None
        and following_word.kind in ("hundred", "thousand")
    ):
        entry = _Word(1, "unit")  # "a hundred", "a thousand"
    if entry is None or (entry.is_weak and not allow_weak):
        return 0, i
    spelled = _Spelled()
    spelled.take(entry)
    j = i + 1
    while j < len(tokens):
        token = tokens[j]
        if not isinstance(token, str):
            break
        if token in _NUMBER_CONNECTORS and j + 1 < len(tokens):
            after = tokens[j + 1]
            after_word = table.get(after) if isinstance(after, str) else None
            if after_word is not None and spelled.accepts_after_connector(after_word.kind):
                spelled.take(after_word)
                j += 2
                continue
        word = table.get(token)
        if word is None or not spelled.accepts(word.kind):
            break
        spelled.take(word)
        j += 1
    return spelled.value, j


def _read_numbers(
    tokens: Sequence[_Token], table: dict[str, _Word], allow_weak: bool = False
) -> list[_Found]:
    """Every number in tokens, digits or words, in order; weak words only if allow_weak."""
    found: list[_Found] = []
    value: float  # whole until a half is added
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if isinstance(token, str):
            value, end = _read_spelled(tokens, i, table, allow_weak)
            if end == i:
                i += 1
                continue
        else:
            value, end = token, i + 1
            after = tokens[end] if end < len(tokens) else None
            if isinstance(after, str) and after in table and table[after].kind == "thousand":
                value, end = value * 1000, end + 1  # "5 mil", "2 thousand"
        for half in _HALVES:
            if tuple(tokens[end : end + len(half)]) == half:
                value, end = value + 0.5, end + len(half)
                break
        found.append(_Found(value, i, end))
        i = end
    return found


# Digits with "." or "," between groups: "40", "40.5", "40,5", "1,000", "1.000.000", "1,000.50".
_NUMBER_TOKENS = re.compile(r"(?:(?<![\w.,])-)?\d+(?:[.,]\d+)*|[^\W\d_]+")


def _digits_value(token: str) -> float | None:
    """A number written in digits, or None when its separators make no sense ("1,2,3")."""
    sign = -1 if token.startswith("-") else 1
    groups = re.split(r"[.,]", token.lstrip("-"))
    separators = re.findall(r"[.,]", token)
    if not separators:
        return sign * int(groups[0])
    head, middle, last = groups[0], groups[1:-1], groups[-1]
    # A separator before exactly three digits groups thousands; before one, two or four and
    # more digits it is a decimal point. Earlier separators must all group thousands.
    thousands = separators[:-1]
    if thousands and (
        len(set(thousands)) != 1
        or not 1 <= len(head) <= 3
        or any(len(group) != 3 for group in middle)
    ):
        return None
    groups_thousands = len(last) == 3 and 1 <= len(head) <= 3 and head[0] != "0"
    if thousands and separators[-1] == thousands[0]:
        if not groups_thousands:
            return None
        return sign * int("".join(groups))
    if not thousands and groups_thousands:
        return sign * int(head + last)
    return sign * float("".join([head, *middle]) + "." + last)


def parse_number(text: str, languages: Sequence[str] = ()) -> float | None:
    """The one number a message holds, in digits or words; None for none or several."""
    tokens: list[_Token] = []
    for match in _NUMBER_TOKENS.finditer(unicodedata.normalize("NFKC", text)):
        token = match.group()
        if token[-1].isdecimal():
            value = _digits_value(token)
            if value is None:
                return None
            tokens.append(value)
        else:
            tokens.append(fold(token))
    # A weak word ("un", ht "de") is a number only when it is the whole message.
    found = _read_numbers(tokens, _number_table(_accepted(languages)), len(tokens) == 1)
    if len(found) != 1:
        return None
    return float(found[0].value)


# --- choices ------------------------------------------------------------------------------------

_WORD_BREAKS = re.compile(r"[\W_]+")
# Words that may come before a choice's number: "opción 2", "option 2", "número 2", "#2".
_NUMBER_PREFIXES = frozenset(
    "opcion opciones option options opsyon numero numeros number numbers nimewo num".split()
)
# Between the picks of a multi answer: "1 y 3", "2 and 4", "1 e 3", "1 et 3", "1 ak 3".
_MULTI_CONNECTORS = frozenset("y and e et ak".split())


def _word_tokens(text: str) -> list[str]:
    """A message as folded words, punctuation dropped: "¡Cáli, 2!" -> ["cali", "2"]."""
    return [word for word in _WORD_BREAKS.split(fold(text)) if word]


# Between digits and letters: "1y3" -> "1 y 3", "10dias" -> "10 dias".
_DIGIT_LETTER = re.compile(r"(?<=\d)(?=[^\W\d_])|(?<=[^\W\d_])(?=\d)")


def _split_digits(word: str) -> list[str]:
    return [part for part in _DIGIT_LETTER.split(word) if part]


# --- words around an answer ---------------------------------------------------------------------
#
# Said around an answer, never an answer themselves: "sí señor", "no gracias", "pues sí",
# "wi mèsi". Taken off either end only when something is left, and only after the whole reply
# failed to read (a label may hold one of them).
COURTESY_WORDS: dict[str, tuple[str, ...]] = {
    "es": (
        "gracias",
        "muchas gracias",
        "señor",
        "señora",
        "seño",
        "jefe",
        "pues",
        "bueno",
        "por favor",
        "porfa",
        "señorita",
        "muy amable",
    ),
    "en": ("thanks", "thank you", "thank you very much", "thx", "please", "sir", "ma'am", "well"),
    "ht": (
        "mèsi",
        "mèsi anpil",
        "souple",
        "silvouple",
        "tanpri",
        "mesye",
        "msye",
        "madanm",
        "merci",
        "merci beaucoup",
        "monsieur",
        "madame",
    ),
}
# Before a choice: "el 2", "la tres", "the 3".
ARTICLES: dict[str, tuple[str, ...]] = {
    "es": ("el", "la", "lo", "los", "las"),
    "en": ("the",),
}


@lru_cache(maxsize=64)
def _around_words(languages: tuple[str, ...]) -> tuple[tuple[tuple[str, ...], ...], frozenset[str]]:
    """Courtesy phrases as folded words (longest first) and articles, for these languages."""
    phrases = {
        tuple(_word_tokens(phrase))
        for language in languages
        for phrase in COURTESY_WORDS.get(language, ())
    }
    articles = frozenset(
        fold(word) for language in languages for word in ARTICLES.get(language, ())
    )
    return tuple(sorted(phrases, key=len, reverse=True)), articles


def _answer_core(words: Sequence[str], languages: tuple[str, ...]) -> list[str]:
    """Words without the courtesy words around them and an article before them."""
    phrases, articles = _around_words(languages)
    core = list(words)
    is_trimmed = True
    while is_trimmed:
        is_trimmed = False
        for phrase in phrases:
            size = len(phrase)
            if len(core) > size and tuple(core[:size]) == phrase:
                core, is_trimmed = core[size:], True
            if len(core) > size and tuple(core[-size:]) == phrase:
                core, is_trimmed = core[:-size], True
    if len(core) > 1 and core[0] in articles:
        core = core[1:]
    return core


def _as_token(word: str) -> _Token:
    return int(word) if word.isdecimal() else word


def _whole_number(
    words: Sequence[str], table: dict[str, _Word], is_whole_message: bool = True
) -> int | None:
    """The whole number words are ("2", "#2", "dos", "opción 2"), or None."""
    allow_weak = is_whole_message and len(words) == 1
    if len(words) > 1 and words[0] in _NUMBER_PREFIXES:
        words = words[1:]
    tokens = [_as_token(word) for word in words]
    found = _read_numbers(tokens, table, allow_weak)
    if len(found) != 1:
        return None
    value, start, end = found[0]
    if (start, end) != (0, len(tokens)) or value != int(value):
        return None
    return int(value)


# A question's choices never change: their keys are worked out once per process.
_choice_keys_of: dict[int, tuple[Sequence[Choice], dict[str, int]]] = {}


def _choice_keys(choices: Sequence[Choice]) -> dict[str, int]:
    """Folded values, labels and `match` words -> choice index (values win, then labels)."""
    cached = _choice_keys_of.get(id(choices))
    if cached is None or cached[0] is not choices:
        cached = _choice_keys_of[id(choices)] = (choices, _build_choice_keys(choices))
    return cached[1]


def _build_choice_keys(choices: Sequence[Choice]) -> dict[str, int]:
    keys: dict[str, int] = {}
    texts_by_rank: list[list[tuple[str, int]]] = [[], [], []]
    for index, choice in enumerate(choices):
        texts_by_rank[0].append((choice.value, index))
        texts_by_rank[1].extend((label, index) for label in choice.label.values())
        texts_by_rank[2].extend((word, index) for words in choice.match.values() for word in words)
    for texts in texts_by_rank:
        for text, index in texts:
            key = " ".join(_word_tokens(text))
            if key:
                keys.setdefault(key, index)
    return keys


def _single_choice(
    words: Sequence[str],
    count: int,
    keys: dict[str, int],
    table: dict[str, _Word],
    is_whole_message: bool = True,
) -> int | None:
    """The index of the one choice words name, by shown number first, or None."""
    if not words:
        return None
    number = _whole_number(words, table, is_whole_message)
    if number is not None and 1 <= number <= count:
        return number - 1
    index = keys.get(" ".join(words))
    if index is None and len(words) > 1:
        # The list's line copied: "1 Florida", when the number and the label agree.
        number = _whole_number(words[:1], table, is_whole_message=False)
        if number is not None and keys.get(" ".join(words[1:])) == number - 1:
            return number - 1
    return index


def _multi_choices(
    words: Sequence[str],
    count: int,
    keys: dict[str, int],
    table: dict[str, _Word],
    articles: frozenset[str] = frozenset(),
) -> set[int] | None:
    """The indexes a multi answer names, reading the longest label first; None on any unknown."""
    picked = _picked_choices(words, count, keys, table, articles)
    if picked is None and words and words[0] in _NUMBER_PREFIXES:
        picked = _picked_choices(words[1:], count, keys, table, articles)  # "opciones 1 y 3"
    return picked


def _picked_choices(
    words: Sequence[str],
    count: int,
    keys: dict[str, int],
    table: dict[str, _Word],
    articles: frozenset[str],
) -> set[int] | None:
    picked: set[int] = set()
    i = 0
    while i < len(words):
        for end in range(len(words), i + 1, -1):
            index = keys.get(" ".join(words[i:end]))
            if index is not None:
                picked.add(index)
                i = end
                break
        else:
            word = words[i]
            index = _single_choice([word], count, keys, table, is_whole_message=False)
            parts = _split_digits(word)
            if index is not None:
                picked.add(index)
            elif len(parts) > 1:  # "1y3"
                more = _picked_choices(parts, count, keys, table, articles)
                if more is None:
                    return None
                picked |= more
            elif word not in _MULTI_CONNECTORS and word not in articles:
                return None
            i += 1
    return picked or None


# --- yes / no -----------------------------------------------------------------------------------

# Folded yes and no words per language. "ok" and "vale" are left out on purpose: they acknowledge
# a message rather than answer the question, so the question is asked again.
YES_NO_WORDS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "es": (
        frozenset(
            {"si", "s", "sip", "ci", "aja", "claro", "correcto", "cierto", "simon"}
            | {"claro que si", "por supuesto", "asi es"}
        ),
        frozenset({"no", "n", "nop", "nel"}),
    ),
    "en": (
        frozenset({"yes", "y", "yeah", "yep", "yup", "sure", "of course"}),
        frozenset({"no", "n", "nope", "nah"}),
    ),
    # Many Haitian Creole speakers write French spelling.
    "ht": (frozenset({"wi", "oui", "dako", "we"}), frozenset({"non"})),
    "fr": (frozenset({"oui", "ouais"}), frozenset({"non"})),
}


def parse_yes_no(text: str, languages: Sequence[str] = ()) -> str | None:
    """Read a reply to a question shown as "1 Sí 2 No": "yes", "no" or None."""
    accepted = _accepted(languages)
    words = _word_tokens(text)
    meaning = _yes_no_meaning(words, accepted)
    if meaning is None:
        core = _answer_core(words, accepted)
        if core != words:
            meaning = _yes_no_meaning(core, accepted)
    return meaning


# A letter held for emphasis: "sii", "nooo", "wiii".
_HELD_LETTER = re.compile(r"(\w)\1+")


def _yes_no_meaning(words: Sequence[str], accepted: tuple[str, ...]) -> str | None:
    table = _number_table(accepted)
    number = _whole_number(words, table)
    if number is not None:
        return {1: "yes", 2: "no"}.get(number)
    yes: set[str] = set()
    no: set[str] = set()
    for language in accepted:
        yes_words, no_words = YES_NO_WORDS.get(language, (frozenset(), frozenset()))
        yes |= yes_words
        no |= no_words
    words = [word if word in yes or word in no else _HELD_LETTER.sub(r"\1", word) for word in words]
    phrase = " ".join(words)
    if phrase in yes or phrase in no:
        return "yes" if phrase in yes else "no"
    # Several words that all say the same: "sí, sí", "1 Sí", "no no".
    meanings: set[str] = set()
    for word in words:
        number = _whole_number([word], table, is_whole_message=False)
        if word in yes or number == 1:
            meanings.add("yes")
        elif word in no or number == 2:
            meanings.add("no")
        else:
            return None
    return meanings.pop() if len(meanings) == 1 else None


# --- any question -------------------------------------------------------------------------------


def parse_answer(question: Question, text: str, languages: Sequence[str]) -> Answer | None:
    """The answer a message gives to a question, or None for a miss."""
    if not text.strip():
        return None
    kind = question.type
    if kind == "text":
        return Answer(text.strip())
    if kind == "yes_no":
        yes_no = parse_yes_no(text, languages)
        return Answer(yes_no) if yes_no else None
    if kind == "number":
        number = parse_number(text, languages)
        if number is None or has_wrong_unit(text, question):
            return None
        if (question.min is not None and number < question.min) or (
            question.max is not None and number > question.max
        ):
            return None
        return Answer(int(number) if number.is_integer() else number)
    if kind in ("choice", "multi"):
        return _parse_choices(question, text, _accepted(languages))
    raise ValueError(f"unknown question type {kind!r}")


def _parse_choices(question: Question, text: str, accepted: tuple[str, ...]) -> Answer | None:
    words = _word_tokens(text)
    core = _answer_core(words, accepted)
    count = len(question.choices)
    keys = _choice_keys(question.choices)
    table = _number_table(accepted)
    index = _single_choice(words, count, keys, table)
    if index is None and core != words:
        index = _single_choice(core, count, keys, table)
    if index is not None:
        value = question.choices[index].value
        return Answer((value,) if question.type == "multi" else value)
    if question.type == "choice":
        return None
    articles = _around_words(accepted)[1]
    picked = _multi_choices(words, count, keys, table, articles)
    if picked is None and core != words:
        picked = _multi_choices(core, count, keys, table, articles)
    if picked is None:
        return None
    if len(picked) > 1 and any(question.choices[i].exclusive for i in picked):
        return None  # "none" with something else: which one is meant?
    return Answer(tuple(c.value for i, c in enumerate(question.choices) if i in picked))


# --- wrong units --------------------------------------------------------------------------------


def has_wrong_unit(text: str, question: Question) -> bool:
    """Whether a reply names one of the question's wrong units, in any language ("10 al día")."""
    words = [part for word in _word_tokens(text) for part in _split_digits(word)]
    for units in question.wrong_units.values():
        for unit in units:
            unit_words = _word_tokens(unit)
            size = len(unit_words)
            if not size:
                continue
            *head, last = unit_words
            for i in range(len(words) - size + 1):
                *found_head, found_last = words[i : i + size]
                # Plurals too: "días", "weeks", "semanas".
                if found_head == head and found_last in (last, last + "s", last + "es"):
                    return True
    return False
