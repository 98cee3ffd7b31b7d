"""Reading survey files and checking them, with the line of every problem."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedBase, TaggedScalar
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.events import (
    AliasEvent,
    CollectionEndEvent,
    CollectionStartEvent,
    NodeEvent,
    ScalarEvent,
)

from engage.config import LOCALES_DIR
from engage.survey import keywords, recordings
from engage.survey.definition import (
    QUESTION_TYPES,
    SMS_SPELLINGS,
    Choice,
    Question,
    Survey,
    Texts,
    survey_from_source,
)
from engage.survey.expression import ExpressionError, parse
from engage.survey.phrases import Count, Phrase, Value, Worded
from engage.survey.prompt_files import missing_system_prompts
from engage.survey.voice import MAX_ONE_KEY_CHOICES, is_spoken_by_twilio

SURVEY_FIELDS = (
    "id",
    "title",
    "languages",
    "keywords",
    "repeat",
    "sms_spelling",
    "whatsapp_template",
    "voice",
    "audio",
    "intro",
    "questions",
    "closing",
)
REQUIRED_SURVEY_FIELDS = ("id", "title", "languages", "keywords", "questions")
QUESTION_FIELDS = (
    "id",
    "type",
    "text",
    "profile",
    "max_age_days",
    "optional",
    "when",
    "choices",
    "min",
    "max",
    "bins",
    "wrong_units",
    "audio",
)
REQUIRED_QUESTION_FIELDS = ("id", "type", "text")
CHOICE_FIELDS = ("value", "label", "match", "exclusive")
REQUIRED_CHOICE_FIELDS = ("value", "label")

# Limits that keep a hostile or broken file from exhausting memory, time or the stack.
MAX_FILE_BYTES = 1_000_000
MAX_DEPTH = 50
MAX_TEXT_CHARS = 1_600  # the most one message can carry (Twilio's limit for a body)
MAX_VALUES = 1_000_000  # counted with aliases expanded: every check walks the expanded tree

_SURVEY_ID = re.compile(r"[a-z0-9]+(-[a-z0-9]+)*")
_QUESTION_ID = re.compile(r"[a-z0-9_]+")
# A text or number answer saved on the contact could become a group name in results.
NO_PROFILE_TYPES = ("text", "number")
_PROFILE_KEY = re.compile(r"[a-z_][a-z0-9_]*")
_CONTENT_SID = re.compile(r"HX[0-9a-fA-F]{32}")
_DIGITS = re.compile(r"[0-9]+")
_YES_NO_VALUES = ("yes", "no")

# The survey's own prompts other than questions that may be recorded (`audio:`).
SURVEY_PROMPTS = ("title", "intro", "closing")
_AUDIO_EXTENSIONS = (".wav", ".mp3")

# Opt-in words are only keywords while a contact is opted out, so "Yes" stays a fine label.
_BLOCKED_WORDS = frozenset().union(
    *(words for kind, words in keywords.SYSTEM_KEYWORDS.items() if kind != "opt_in")
)
_SYSTEM_SPELLING = {
    keywords.fold(word): word
    for word in keywords.OPT_OUT | keywords.HELP | keywords.LANGUAGE | keywords.SKIP
}


@dataclass(frozen=True)
class Problem(Worded):
    """A problem at a line of a file, in English and as what it is made of (`Worded`)."""

    file: str
    line: int
    message: str
    is_warning: bool = False
    template: str = field(default="", compare=False)
    params: Mapping[str, Value] = field(default_factory=dict, compare=False)

    @classmethod
    def of(cls, file: str, line: int, text: Phrase, is_warning: bool = False) -> Problem:
        return cls(file, line, str(text), is_warning, text.template, text.params)

    def __str__(self) -> str:
        prefix = "warning: " if self.is_warning else ""
        return f"{self.file}:{self.line}: {prefix}{self.message}"


@dataclass
class Checked:
    """One survey file or text, checked on its own (`load_surveys` adds the checks across files).

    `is_yaml` is False when the text could not be read as YAML within the limits: nothing in
    it can be trusted, not even its id.
    """

    survey: Survey | None
    problems: list[Problem]
    survey_id: str | None = None
    id_line: int = 1
    # (folded keyword, keyword as written, line) for the checks across files.
    keywords: list[tuple[str, str, int]] = field(default_factory=list)
    is_yaml: bool = True
    name: str = ""  # the file, or the name a text was checked under
    # Every audio file the survey names, as written, with its line; and its `voice` line.
    audio: list[recordings.Reference] = field(default_factory=list)
    voice_line: int = 1


def find_survey_files(directory: str | Path) -> list[Path]:
    """The survey files in a directory (*.yaml and *.yml, hidden files left out), sorted."""
    return sorted(
        path
        for path in Path(directory).iterdir()
        if path.suffix in (".yaml", ".yml") and not path.name.startswith(".") and path.is_file()
    )


def load_survey_file(path: str | Path) -> tuple[Survey | None, list[Problem]]:
    """Read and check one survey file: the survey (None if any error) and every problem found."""
    result = check_file(path)
    return result.survey, result.problems


def load_surveys(paths: Iterable[str | Path]) -> tuple[list[Survey], list[Problem]]:
    """Read and check survey files, and check them against each other (ids, keywords)."""
    surveys, problems, _checked = load_survey_files(paths)
    return surveys, problems


def load_survey_files(
    paths: Iterable[str | Path],
) -> tuple[list[Survey], list[Problem], list[Checked]]:
    """`load_surveys`, with each file's own result (its id and keywords, with their lines)."""
    surveys: list[Survey] = []
    problems: list[Problem] = []
    checked: list[Checked] = []
    id_owners: dict[str, tuple[str, int]] = {}
    keyword_owners: dict[str, tuple[int, str, str, int]] = {}
    for index, path in enumerate(paths):
        result = check_file(path)
        checked.append(result)
        name = str(path)
        clashes: list[Problem] = []
        if result.survey_id is not None:
            if result.survey_id in id_owners:
                first_file, first_line = id_owners[result.survey_id]
                clashes.append(
                    Problem.of(
                        name,
                        result.id_line,
                        Phrase(
                            "duplicate survey id '%(id)s' (first in %(file)s:%(line)s)",
                            id=result.survey_id,
                            file=first_file,
                            line=first_line,
                        ),
                    )
                )
            else:
                id_owners[result.survey_id] = (name, result.id_line)
        survey_label = result.survey_id or name
        for folded, word, line in result.keywords:
            owner = keyword_owners.setdefault(folded, (index, survey_label, name, line))
            owner_index, owner_label, owner_file, owner_line = owner
            if owner_index != index:
                clashes.append(
                    Problem.of(
                        name,
                        line,
                        Phrase(
                            "keyword '%(keyword)s' is used by survey '%(survey)s' "
                            "(%(file)s:%(line)s)",
                            keyword=word,
                            survey=owner_label,
                            file=owner_file,
                            line=owner_line,
                        ),
                    )
                )
        problems.extend(sorted(result.problems + clashes, key=lambda p: p.line))
        if result.survey is not None and not clashes:
            surveys.append(result.survey)
    return surveys, problems, checked


def check_file(path: str | Path, locales_dir: Path | None = None) -> Checked:
    """Read one survey file (at most MAX_FILE_BYTES of UTF-8) and check it, with the audio
    files it names (beside it) and the system prompts its voice languages need (under
    `locales_dir`)."""
    name = str(path)
    try:
        # Never more than the limit is read: the size is checked before anything is parsed.
        with open(path, "rb") as file:
            data = file.read(MAX_FILE_BYTES + 1)
    except OSError as error:
        reason = str(error.strerror)  # the system's words: a value, not a template
        return _unreadable(name, 1, Phrase("cannot read the file: %(reason)s", reason=reason))
    checked = check_bytes(name, data, is_file=True)
    return _with_recordings(checked, Path(path).parent, locales_dir or LOCALES_DIR)


def _with_recordings(checked: Checked, folder: Path, locales_dir: Path) -> Checked:
    """A checked file with its recordings read: their problems added, and its survey naming
    each by content (the version changes with a recording)."""
    found = recordings.read(checked.audio, folder)
    problems = [Problem.of(checked.name, line, text) for line, text in found.problems]
    survey = checked.survey
    for lang in survey.voice if survey is not None else ():
        missing = missing_system_prompts(locales_dir, lang)
        if missing:
            problems.append(
                Problem.of(
                    checked.name,
                    checked.voice_line,
                    Phrase(
                        "the survey is offered by phone in '%(language)s', which has no "
                        "recording of the system prompts %(prompts)s (locales/%(language)s/"
                        "audio/; `engage voice prompts %(language)s` lists their words)",
                        language=lang,
                        prompts=", ".join(missing),
                    ),
                )
            )
    if not problems and not found.files:
        return checked
    checked.problems = sorted(checked.problems + problems, key=lambda p: p.line)
    if survey is None or problems:
        checked.survey = None
        return checked
    source = recordings.with_media_names(survey.source, found.files)
    named = survey_from_source(source, _version(source))
    checked.survey = dataclasses.replace(
        named, recordings={r.name: r for r in found.files.values()}
    )
    return checked


def _unreadable(name: str, line: int, problem: Phrase) -> Checked:
    """A file or text that could not be read as YAML within the limits, and why."""
    return Checked(None, [Problem.of(name, line, problem)], is_yaml=False, name=name)


def check_bytes(name: str, data: bytes, *, is_file: bool = False) -> Checked:
    """Check a survey sent as bytes (a file, an upload): size and encoding first."""
    if len(data) > MAX_FILE_BYTES:
        return _unreadable(
            name,
            1,
            Phrase(
                "the file is larger than 1 MB: at most %(max)s bytes", max=Count(MAX_FILE_BYTES)
            ),
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = error.object[: error.start].count(b"\n") + 1
        return _unreadable(name, line, Phrase("the file is not UTF-8 text"))
    return check_text(name, text, is_file=is_file)


def check_text(name: str, text: str, *, is_file: bool = False) -> Checked:
    """Check a survey's YAML text; problems are reported as NAME:LINE.

    Recordings are read from beside a survey file (`check_file`): a text from anywhere else
    (the editor, an upload) may not name any."""
    if len(text.encode("utf-8")) > MAX_FILE_BYTES:
        return _unreadable(
            name,
            1,
            Phrase(
                "the text is larger than 1 MB: at most %(max)s bytes", max=Count(MAX_FILE_BYTES)
            ),
        )
    try:
        limits = _check_limits(name, text)
        if not limits.can_compose:
            return Checked(None, limits.problems, is_yaml=False, name=name)
        document = YAML(typ="rt").load(text)
    except MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = mark.line + 1 if mark is not None else 1
        # ruamel's own words, in English: a value, not a template.
        reason = error.problem or error.context or "not valid YAML"
        return _unreadable(name, line, Phrase("invalid YAML: %(reason)s", reason=reason))
    except YAMLError as error:
        return _unreadable(name, 1, Phrase("invalid YAML: %(reason)s", reason=str(error)))
    checker = _Checker(name)
    survey = checker.check(document)
    if not is_file:
        for reference in checker.audio:
            checker.error(
                reference.line,
                Phrase(
                    "recordings can be given only in survey files under surveys/ ('%(path)s'); "
                    "a survey written on these pages is read aloud in Spanish and English",
                    path=reference.path,
                ),
            )
            survey = None
    problems = sorted(limits.problems + checker.problems, key=lambda p: p.line)
    if limits.problems:
        survey = None
    return Checked(
        survey,
        problems,
        checker.survey_id,
        checker.id_line,
        checker.keywords,
        name=name,
        audio=checker.audio,
        voice_line=checker.voice_line,
    )


def paths_by_line(text: str) -> dict[int, str]:
    """Each line of a survey's YAML text and the field written on it, as a dotted path.

    `questions.2.choices.0.label.es` is the Spanish label of the third question's first
    choice. Where several fields share a line (a flow mapping), the last one is given. Call
    it only on a text `check_text` read as YAML: it composes the document.
    """
    found: dict[int, str] = {}

    def walk(node: object, path: str) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                child = f"{path}.{key}" if path else str(key)
                found[_key_line(node, key)] = child
                walk(value, child)
        elif isinstance(node, list):
            for index, value in enumerate(node):
                child = f"{path}.{index}" if path else str(index)
                found.setdefault(_item_line(node, index), child)
                walk(value, child)

    walk(YAML(typ="rt").load(text), "")
    return found


@dataclass
class _Limits:
    """What the scan before composing found; `can_compose` is False when composing is unsafe."""

    problems: list[Problem]
    can_compose: bool


@dataclass
class _Open:
    """A collection being scanned: its anchor, the height and size of what it holds so far."""

    anchor: str | None
    height: int = 0
    size: int = 1


def _check_limits(name: str, text: str) -> _Limits:
    """Nesting depth, aliases and text lengths, read from the parser's events (no recursion).

    Composing a document recurses once per level, so a file nested 100,000 deep would end
    in a RecursionError; the events come from a loop, and the scan stops at the first level
    too deep. Aliases count as the node they stand for: one anchored deep or wide node, or
    one inside itself, would otherwise get past the limits.
    """
    problems: list[Problem] = []
    stack: list[_Open] = []
    anchors: dict[str, tuple[int, int]] = {}  # anchor -> (height, size) of its node
    total = 0

    def stop(line: int, text: Phrase) -> _Limits:
        return _Limits([*problems, Problem.of(name, line, text)], can_compose=False)

    for event in YAML(typ="rt").parse(text):
        if not isinstance(event, NodeEvent | CollectionEndEvent):
            continue
        line = event.start_mark.line + 1 if event.start_mark is not None else 1
        tag = getattr(event, "tag", None)
        if tag is not None:
            # A tag asks the reader to build something: a survey is only text, numbers,
            # lists and mappings, so a tag is either a mistake or an attack.
            written = tag.replace("tag:yaml.org,2002:", "!!", 1)
            return stop(
                line,
                Phrase("tag %(tag)s is not allowed: write the value as plain text", tag=written),
            )
        if isinstance(event, CollectionStartEvent):
            if len(stack) >= MAX_DEPTH:
                return stop(line, Phrase("nested more than %(max)s levels deep", max=MAX_DEPTH))
            stack.append(_Open(event.anchor))
            total += 1
        elif isinstance(event, CollectionEndEvent):
            closed = stack.pop()
            closed.height += 1
            if closed.anchor is not None:
                anchors[closed.anchor] = (closed.height, closed.size)
            _add_child(stack, closed.height, closed.size)
        elif isinstance(event, AliasEvent):
            if any(item.anchor == event.anchor for item in stack):
                return stop(
                    line, Phrase("alias *%(alias)s is inside its own anchor", alias=event.anchor)
                )
            height, size = anchors.get(event.anchor, (0, 1))  # unknown: the composer says so
            if len(stack) + height > MAX_DEPTH:
                return stop(
                    line,
                    Phrase(
                        "alias *%(alias)s nests more than %(max)s levels deep",
                        alias=event.anchor,
                        max=MAX_DEPTH,
                    ),
                )
            _add_child(stack, height, size)
            total += size
        elif isinstance(event, ScalarEvent):
            if event.anchor is not None:
                anchors[event.anchor] = (0, 1)
            if len(event.value) > MAX_TEXT_CHARS:
                problems.append(
                    Problem.of(
                        name,
                        line,
                        Phrase(
                            "text of %(length)s characters: "
                            "at most %(max)s (the most one message can carry)",
                            length=Count(len(event.value)),
                            max=Count(MAX_TEXT_CHARS),
                        ),
                    )
                )
            _add_child(stack, 0, 1)
            total += 1
        if total > MAX_VALUES:
            return stop(
                line,
                Phrase(
                    "more than %(max)s values, counting what aliases repeat",
                    max=Count(MAX_VALUES),
                ),
            )
    return _Limits(problems, can_compose=True)


def _add_child(stack: list[_Open], height: int, size: int) -> None:
    if stack:
        stack[-1].height = max(stack[-1].height, height)
        stack[-1].size += size


# --- helpers -----------------------------------------------------------------------------------


# Only ruamel's own containers (CommentedBase) know their positions: 0-based lines, typed Any.
def _line(node: object) -> int:
    line: int | None = node.lc.line if isinstance(node, CommentedBase) else None
    return 1 if line is None else line + 1


def _key_line(mapping: object, key: object) -> int:
    if isinstance(mapping, CommentedBase):
        try:
            line: int = mapping.lc.key(key)[0]
            return line + 1
        except (KeyError, TypeError):
            pass  # a key merged in with `<<` has no position of its own
    return _line(mapping)


def _item_line(sequence: object, index: int) -> int:
    if isinstance(sequence, CommentedBase):
        try:
            line: int = sequence.lc.item(index)[0]
            return line + 1
        except (KeyError, TypeError):
            pass
    return _line(sequence)


def _kind(value: object) -> Phrase | str:
    """What a YAML value is, in words, for messages (a type YAML never gives: its name)."""
    if value is None:
        return Phrase("nothing")
    if isinstance(value, bool):
        return Phrase("a boolean")
    if isinstance(value, int | float):
        return Phrase("a number")
    if isinstance(value, str):
        return Phrase("the text %(text)s", text=repr(str(value)))
    if isinstance(value, dict):
        return Phrase("a mapping")
    if isinstance(value, list):
        return Phrase("a list")
    if isinstance(value, date):
        return Phrase("a date")
    if isinstance(value, TaggedScalar):
        return Phrase("a tagged value")
    return type(value).__name__


def _needs_quotes(value: object) -> bool:
    """Whether a value YAML read as something else would be text in quotes."""
    return isinstance(value, bool | int | float | date)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _format_number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _system_word(text: str) -> str | None:
    """The system keyword this text would be taken for, as usually written, or None."""
    folded = keywords.fold(text)
    if folded in _BLOCKED_WORDS:
        return _SYSTEM_SPELLING.get(folded, folded.upper())
    return None


def _unknown_field(key: object) -> Phrase:
    return Phrase("unknown field '%(field)s'", field=str(key))


def _missing_field(key: str) -> Phrase:
    return Phrase("missing field '%(field)s'", field=key)


def _no_keyword(language: str) -> Phrase:
    return Phrase("no keyword for '%(language)s'", language=language)


def _in_language(where: Phrase, language: str) -> Phrase:
    """`title (es)`: one language's text or words of a field."""
    return Phrase("%(where)s (%(language)s)", where=where, language=language)


def _field_of(key: str, question: Phrase) -> Phrase:
    """`min of question 'hours'`: a field of a question, by its name in the file."""
    return Phrase("%(field)s of %(question)s", field=key, question=question)


def _plain(node: Any) -> Any:
    """The parsed YAML as plain JSON data: what the version hashes."""
    if isinstance(node, dict):
        return {key if isinstance(key, str) else str(key): _plain(v) for key, v in node.items()}
    if isinstance(node, list):
        return [_plain(item) for item in node]
    if node is None or isinstance(node, bool):
        return node
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    if isinstance(node, TaggedScalar):
        return str(node.value)
    return str(node)


def _version(source: dict[str, Any]) -> str:
    canonical = json.dumps(source, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]


# --- the checks --------------------------------------------------------------------------------


@dataclass
class _QuestionInfo:
    """What later questions may rely on: position, id, profile key and stored values."""

    index: int
    id: str | None
    profile: str | None
    line: int
    values: tuple[str, ...] | None = None


class _Checker:
    def __init__(self, file: str) -> None:
        self.file = file
        self.problems: list[Problem] = []
        # None when `languages` is missing or wrong: language checks would only add noise.
        self.languages: tuple[str, ...] | None = None
        self.survey_id: str | None = None
        self.id_line = 1
        self.keywords: list[tuple[str, str, int]] = []
        self.voice: tuple[str, ...] = ()
        self.voice_line = 1
        self.audio: list[recordings.Reference] = []

    def error(self, line: int, text: Phrase) -> None:
        self.problems.append(Problem.of(self.file, line, text))

    def warn(self, line: int, text: Phrase) -> None:
        self.problems.append(Problem.of(self.file, line, text, is_warning=True))

    @property
    def has_errors(self) -> bool:
        return any(not p.is_warning for p in self.problems)

    # -- scalars

    def text(self, value: object, line: int, where: Phrase) -> str | None:
        if not isinstance(value, str):
            if _needs_quotes(value):
                text = Phrase(
                    "expected text for %(where)s, got %(got)s (put it in quotes)",
                    where=where,
                    got=_kind(value),
                )
            else:
                text = Phrase(
                    "expected text for %(where)s, got %(got)s", where=where, got=_kind(value)
                )
            self.error(line, text)
            return None
        if not value.strip():
            self.error(line, Phrase("empty text for %(where)s", where=where))
            return None
        return str(value)

    def boolean(self, mapping: dict[Any, Any], key: str, where: Phrase) -> bool:
        value = mapping[key]
        if not isinstance(value, bool):
            self.error(
                _key_line(mapping, key),
                Phrase(
                    "%(where)s must be true or false, got %(got)s", where=where, got=_kind(value)
                ),
            )
            return False
        return value

    def number(self, mapping: dict[Any, Any], key: str, where: Phrase) -> float | None:
        value = mapping[key]
        if not _is_number(value):
            self.error(
                _key_line(mapping, key),
                Phrase("%(where)s must be a number, got %(got)s", where=where, got=_kind(value)),
            )
            return None
        return int(value) if isinstance(value, int) else float(value)

    def language_key(self, mapping: dict[Any, Any], lang: object, where: Phrase) -> bool:
        """Whether a mapping's language key is one of the survey's languages (reported if not)."""
        if self.languages is None or lang in self.languages:
            return isinstance(lang, str)
        self.error(
            _key_line(mapping, lang),
            Phrase("unknown language '%(language)s' in %(where)s", language=str(lang), where=where),
        )
        return False

    def texts(self, parent: dict[Any, Any], key: str, where: Phrase) -> Texts:
        """A text per language: only declared languages, all of them, each real text."""
        node = parent[key]
        line = _key_line(parent, key)
        if not isinstance(node, dict):
            self.error(
                line,
                Phrase(
                    "%(where)s must give a text per language, e.g. {es: ..., en: ...}, got %(got)s",
                    where=where,
                    got=_kind(node),
                ),
            )
            return {}
        result: Texts = {}
        for lang, value in node.items():
            if not self.language_key(node, lang, where):
                continue
            text = self.text(value, _key_line(node, lang), _in_language(where, lang))
            if text is not None:
                result[lang] = text
        for lang in self.languages or ():
            if lang not in node:
                self.error(
                    line,
                    Phrase(
                        "missing translation '%(language)s' for %(where)s",
                        language=lang,
                        where=where,
                    ),
                )
        return result

    def word_lists(
        self, parent: dict[Any, Any], key: str, where: Phrase
    ) -> dict[str, list[tuple[str, int]]]:
        """A list of words per language, each with its line."""
        node = parent[key]
        if not isinstance(node, dict):
            self.error(
                _key_line(parent, key),
                Phrase(
                    "%(where)s must give a list of words per language, e.g. {es: [...]}, "
                    "got %(got)s",
                    where=where,
                    got=_kind(node),
                ),
            )
            return {}
        result: dict[str, list[tuple[str, int]]] = {}
        for lang, words in node.items():
            if not self.language_key(node, lang, where):
                continue
            lang_line = _key_line(node, lang)
            if not isinstance(words, list):
                self.error(
                    lang_line,
                    Phrase(
                        "%(where)s (%(language)s) must be a list, e.g. [WORD], got %(got)s",
                        where=where,
                        language=lang,
                        got=_kind(words),
                    ),
                )
                continue
            result[lang] = []
            for i, word in enumerate(words):
                word_line = _item_line(words, i)
                text = self.text(word, word_line, _in_language(where, lang))
                if text is not None:
                    result[lang].append((text, word_line))
        return result

    # -- the survey

    def check(self, document: object) -> Survey | None:
        if document is None:
            self.error(
                1, Phrase("the file is empty: expected a survey (id, title, languages, ...)")
            )
            return None
        if not isinstance(document, dict):
            self.error(
                _line(document),
                Phrase(
                    "a survey file must be a mapping of fields (id, title, ...), got %(got)s",
                    got=_kind(document),
                ),
            )
            return None
        for key in document:
            if key not in SURVEY_FIELDS:
                self.error(_key_line(document, key), _unknown_field(key))
        for key in REQUIRED_SURVEY_FIELDS:
            if key not in document:
                self.error(_line(document), _missing_field(key))

        languages = self.check_languages(document) if "languages" in document else None
        survey_id = self.check_id(document) if "id" in document else None
        title = self.texts(document, "title", Phrase("title")) if "title" in document else {}
        survey_keywords = self.check_keywords(document) if "keywords" in document else {}
        repeat = (
            self.boolean(document, "repeat", Phrase("repeat")) if "repeat" in document else False
        )
        sms_spelling = (
            self.check_sms_spelling(document) if "sms_spelling" in document else "as_written"
        )
        templates = self.check_templates(document) if "whatsapp_template" in document else {}
        if "voice" in document:
            self.voice = self.check_voice(document)
        audio = self.check_survey_audio(document)
        intro = self.texts(document, "intro", Phrase("intro")) if "intro" in document else {}
        closing = (
            self.texts(document, "closing", Phrase("closing")) if "closing" in document else {}
        )
        questions = self.check_questions(document) if "questions" in document else ()

        if self.has_errors or survey_id is None or languages is None:
            return None
        source = _plain(document)
        return Survey(
            id=survey_id,
            title=title,
            languages=languages,
            keywords=survey_keywords,
            questions=questions,
            repeat=repeat,
            whatsapp_template=templates,
            intro=intro,
            closing=closing,
            sms_spelling=sms_spelling,
            voice=self.voice,
            audio=audio,
            version=_version(source),
            source=source,
        )

    def check_id(self, document: dict[Any, Any]) -> str | None:
        self.id_line = _key_line(document, "id")
        survey_id = self.text(document["id"], self.id_line, Phrase("id"))
        if survey_id is None:
            return None
        if not _SURVEY_ID.fullmatch(survey_id):
            self.error(
                self.id_line,
                Phrase(
                    "invalid survey id '%(id)s': use lowercase letters, digits and single "
                    "hyphens, e.g. working-conditions",
                    id=survey_id,
                ),
            )
            return None
        self.survey_id = survey_id
        return survey_id

    def check_languages(self, document: dict[Any, Any]) -> tuple[str, ...] | None:
        node = document["languages"]
        line = _key_line(document, "languages")
        if not isinstance(node, list) or not node:
            self.error(
                line,
                Phrase(
                    "languages must be a non-empty list of codes, e.g. [es, en], got %(got)s",
                    got=_kind(node),
                ),
            )
            return None
        codes: list[str] = []
        is_valid = True
        for i, code in enumerate(node):
            item_line = _item_line(node, i)
            if not isinstance(code, str) or not keywords.LANGUAGE_CODE.fullmatch(code):
                shown = code if isinstance(code, str) else _kind(code)
                self.error(
                    item_line,
                    Phrase(
                        "invalid language code '%(code)s': use 2 or 3 lowercase letters",
                        code=shown,
                    ),
                )
                is_valid = False
            elif code in codes:
                self.error(item_line, Phrase("duplicate language '%(language)s'", language=code))
            else:
                codes.append(code)
        if not is_valid:
            return None
        self.languages = tuple(codes)
        return self.languages

    def check_keywords(self, document: dict[Any, Any]) -> dict[str, tuple[str, ...]]:
        lists = self.word_lists(document, "keywords", Phrase("keywords"))
        first_lines: dict[str, int] = {}
        result: dict[str, tuple[str, ...]] = {}
        for lang, words in lists.items():
            for word, line in words:
                folded = keywords.fold(word)
                system = _system_word(word)
                if not folded:
                    self.error(
                        line, Phrase("keyword '%(keyword)s' has no letters or digits", keyword=word)
                    )
                elif _DIGITS.fullmatch(folded.replace(" ", "")):
                    self.error(
                        line,
                        Phrase(
                            "keyword '%(keyword)s' is a number: numbers answer questions",
                            keyword=word,
                        ),
                    )
                elif system is not None:
                    self.error(
                        line,
                        Phrase(
                            "keyword '%(keyword)s' is the system keyword %(system)s",
                            keyword=word,
                            system=system,
                        ),
                    )
                elif folded in first_lines:
                    self.error(
                        line,
                        Phrase(
                            "duplicate keyword '%(keyword)s' (first at line %(line)s)",
                            keyword=word,
                            line=first_lines[folded],
                        ),
                    )
                else:
                    first_lines[folded] = line
                    self.keywords.append((folded, word, line))
            if words:
                result[lang] = tuple(word for word, _ in words)
        node = document["keywords"]
        if not isinstance(node, dict):
            return result
        for lang in self.languages or ():
            if lang not in node:
                self.error(_key_line(document, "keywords"), _no_keyword(lang))
            elif node[lang] == []:
                self.error(_key_line(node, lang), _no_keyword(lang))
        return result

    def check_sms_spelling(self, document: dict[Any, Any]) -> str:
        value = document["sms_spelling"]
        if value not in SMS_SPELLINGS:
            spellings = ", ".join(SMS_SPELLINGS)
            if isinstance(value, str):
                text = Phrase(
                    "sms_spelling must be one of %(spellings)s, got '%(value)s'",
                    spellings=spellings,
                    value=value,
                )
            else:
                text = Phrase(
                    "sms_spelling must be one of %(spellings)s, got %(got)s",
                    spellings=spellings,
                    got=_kind(value),
                )
            self.error(_key_line(document, "sms_spelling"), text)
            return "as_written"
        return str(value)

    def check_templates(self, document: dict[Any, Any]) -> Texts:
        node = document["whatsapp_template"]
        if not isinstance(node, dict):
            self.error(
                _key_line(document, "whatsapp_template"),
                Phrase(
                    "whatsapp_template must give a Content SID per language, got %(got)s",
                    got=_kind(node),
                ),
            )
            return {}
        result: Texts = {}
        where = Phrase("whatsapp_template")
        for lang, sid in node.items():
            if not self.language_key(node, lang, where):
                continue
            line = _key_line(node, lang)
            text = self.text(sid, line, _in_language(where, lang))
            if text is None:
                continue
            if not _CONTENT_SID.fullmatch(text):
                self.error(
                    line,
                    Phrase(
                        "whatsapp_template (%(language)s) '%(sid)s' is not a Content SID "
                        "(HX followed by 32 hexadecimal digits)",
                        language=lang,
                        sid=text,
                    ),
                )
                continue
            result[lang] = text
        return result

    # -- voice and audio

    def check_voice(self, document: dict[Any, Any]) -> tuple[str, ...]:
        """`voice: true` (every language) or a list of the languages offered by phone."""
        node = document["voice"]
        self.voice_line = line = _key_line(document, "voice")
        languages = self.languages or ()
        if node is True:
            return languages
        if node is False:
            return ()
        if not isinstance(node, list) or not node:
            self.error(
                line,
                Phrase(
                    "voice must be true, false or a list of the survey's languages, e.g. "
                    "[es, en], got %(got)s",
                    got=_kind(node),
                ),
            )
            return ()
        result: list[str] = []
        for i, code in enumerate(node):
            if self.languages is not None and code not in self.languages:
                shown = code if isinstance(code, str) else _kind(code)
                self.error(
                    _item_line(node, i),
                    Phrase(
                        "unknown language '%(language)s' in %(where)s",
                        language=shown,
                        where=Phrase("voice"),
                    ),
                )
            elif isinstance(code, str) and code not in result:
                result.append(code)
        return tuple(result)

    def check_survey_audio(self, document: dict[Any, Any]) -> dict[str, Texts]:
        """The survey's own recorded prompts (title, intro, closing), and those a voice
        language lacks."""
        node = document.get("audio")
        line = _key_line(document, "audio") if "audio" in document else self.voice_line
        if node is not None and not isinstance(node, dict):
            self.error(
                line,
                Phrase(
                    "audio must give recordings per prompt, e.g. {intro: {mix: "
                    "audio/intro-mix.wav}}, got %(got)s",
                    got=_kind(node),
                ),
            )
            node = {}
        node = node or {}
        for key in node:
            if key not in SURVEY_PROMPTS:
                self.error(
                    _key_line(node, key),
                    Phrase(
                        "unknown prompt '%(prompt)s' in audio (use %(prompts)s)",
                        prompt=str(key),
                        prompts=", ".join(SURVEY_PROMPTS),
                    ),
                )
        result: dict[str, Texts] = {}
        for prompt in SURVEY_PROMPTS:
            if prompt == "title" or prompt in document:
                where = Phrase("audio of %(prompt)s", prompt=prompt)
                # A missing recording is named at the text it would say.
                owner = _key_line(document, prompt) if prompt in document else line
                recorded = self.check_prompt_audio(node, prompt, where, owner)
                if recorded:
                    result[prompt] = recorded
        return result

    def check_prompt_audio(
        self, parent: dict[Any, Any], key: str, where: Phrase, owner_line: int
    ) -> Texts:
        """One prompt's recordings: {language: file beside the survey}. A voice language that
        Twilio does not speak must have one (reported at `owner_line` when it has none)."""
        result: Texts = {}
        node = parent.get(key)
        if node is not None:
            line = _key_line(parent, key)
            if not isinstance(node, dict):
                self.error(
                    line,
                    Phrase(
                        "%(where)s must give a file per language, e.g. {mix: "
                        "audio/state-mix.wav}, got %(got)s",
                        where=where,
                        got=_kind(node),
                    ),
                )
                node = {}
            for lang, value in node.items():
                if not self.language_key(node, lang, where):
                    continue
                value_line = _key_line(node, lang)
                path = self.text(value, value_line, _in_language(where, lang))
                if path is not None and self.check_audio_path(path, value_line, where):
                    result[lang] = path
                    self.audio.append(recordings.Reference(path, value_line))
        for lang in self.voice:
            if lang not in result and not is_spoken_by_twilio(lang):
                self.error(
                    owner_line,
                    Phrase(
                        "no recording in '%(language)s' for %(where)s: the survey is offered "
                        "by phone in '%(language)s', which Twilio cannot read aloud",
                        language=lang,
                        where=where,
                    ),
                )
        return result

    def check_audio_path(self, path: str, line: int, where: Phrase) -> bool:
        """A recording is a .wav or .mp3 file in the survey's folder or below it."""
        parts = Path(path).parts
        if Path(path).is_absolute() or ".." in parts or "\\" in path or not parts:
            self.error(
                line,
                Phrase(
                    "%(where)s: '%(path)s' must be a path inside the survey's folder, e.g. "
                    "audio/state-mix.wav",
                    where=where,
                    path=path,
                ),
            )
            return False
        if Path(path).suffix.lower() not in _AUDIO_EXTENSIONS:
            self.error(
                line,
                Phrase("%(where)s: '%(path)s' must be a .wav or .mp3 file", where=where, path=path),
            )
            return False
        return True

    # -- questions

    def check_questions(self, document: dict[Any, Any]) -> tuple[Question, ...]:
        node = document["questions"]
        line = _key_line(document, "questions")
        if not isinstance(node, list):
            self.error(
                line, Phrase("questions must be a list of questions, got %(got)s", got=_kind(node))
            )
            return ()
        if not node:
            self.error(line, Phrase("questions must list at least one question"))
            return ()
        infos = [
            _QuestionInfo(
                index=i,
                id=item.get("id")
                if isinstance(item, dict) and isinstance(item.get("id"), str)
                else None,
                profile=item.get("profile")
                if isinstance(item, dict) and isinstance(item.get("profile"), str)
                else None,
                line=_item_line(node, i),
            )
            for i, item in enumerate(node)
        ]
        questions: list[Question] = []
        first_id_lines: dict[str, int] = {}
        profile_owners: dict[str, tuple[Phrase, int]] = {}
        for i, item in enumerate(node):
            if not isinstance(item, dict):
                self.error(
                    _item_line(node, i),
                    Phrase(
                        "question %(number)s must be a mapping (id, type, text, ...), got %(got)s",
                        number=i + 1,
                        got=_kind(item),
                    ),
                )
                continue
            question = self.check_question(item, infos, i, first_id_lines, profile_owners)
            if question is not None:
                questions.append(question)
        return tuple(questions)

    def check_question(
        self,
        item: dict[Any, Any],
        infos: list[_QuestionInfo],
        index: int,
        first_id_lines: dict[str, int],
        profile_owners: dict[str, tuple[Phrase, int]],
    ) -> Question | None:
        info = infos[index]
        item_line = info.line
        for key in item:
            if key not in QUESTION_FIELDS:
                self.error(_key_line(item, key), _unknown_field(key))
        for key in REQUIRED_QUESTION_FIELDS:
            if key not in item:
                self.error(item_line, _missing_field(key))

        question_id = None
        if "id" in item:
            id_line = _key_line(item, "id")
            question_id = self.text(
                item["id"], id_line, Phrase("id of question %(number)s", number=index + 1)
            )
            if question_id is not None and not _QUESTION_ID.fullmatch(question_id):
                self.error(
                    id_line,
                    Phrase(
                        "invalid question id '%(id)s': use lowercase letters, digits and _",
                        id=question_id,
                    ),
                )
                question_id = None
            elif question_id is not None and question_id in first_id_lines:
                self.error(
                    id_line,
                    Phrase(
                        "duplicate question id '%(id)s' (first at line %(line)s)",
                        id=question_id,
                        line=first_id_lines[question_id],
                    ),
                )
            elif question_id is not None:
                first_id_lines[question_id] = id_line
        name = (
            Phrase("question '%(id)s'", id=question_id)
            if question_id
            else Phrase("question %(number)s", number=index + 1)
        )

        question_type = None
        if "type" in item:
            raw_type = item["type"]
            if raw_type in QUESTION_TYPES:
                question_type = raw_type
            else:
                shown = raw_type if isinstance(raw_type, str) else _kind(raw_type)
                self.error(
                    _key_line(item, "type"),
                    Phrase(
                        "unknown question type '%(type)s' (use %(types)s)",
                        type=shown,
                        types=", ".join(QUESTION_TYPES),
                    ),
                )

        text = (
            self.texts(item, "text", Phrase("text of %(question)s", question=name))
            if "text" in item
            else {}
        )
        audio = self.check_prompt_audio(item, "audio", _field_of("audio", name), item_line)

        profile = None
        if "profile" in item:
            profile_line = _key_line(item, "profile")
            profile = self.text(item["profile"], profile_line, _field_of("profile", name))
            if profile is not None and not _PROFILE_KEY.fullmatch(profile):
                self.error(
                    profile_line,
                    Phrase(
                        "invalid profile key '%(key)s': use lowercase letters, digits and _",
                        key=profile,
                    ),
                )
                profile = None
            elif profile is not None and profile in profile_owners:
                owner, owner_line = profile_owners[profile]
                self.warn(
                    profile_line,
                    Phrase(
                        "profile '%(key)s' is also saved by %(owner)s (line %(line)s); "
                        "once it is known neither is asked",
                        key=profile,
                        owner=owner,
                        line=owner_line,
                    ),
                )
            elif profile is not None:
                profile_owners[profile] = (name, profile_line)
            if profile is not None and question_type in NO_PROFILE_TYPES:
                # A profile value becomes a group name in results: a worker's own words or
                # exact number could name or single them out.
                self.error(
                    profile_line,
                    Phrase(
                        "profile on a %(type)s question: only choice, multi and yes_no "
                        "answers may be saved on the contact",
                        type=question_type,
                    ),
                )

        optional = (
            self.boolean(item, "optional", _field_of("optional", name))
            if "optional" in item
            else False
        )
        max_age_days = self.check_max_age(item, name) if "max_age_days" in item else None

        choices: tuple[Choice, ...] = ()
        has_choices = question_type in ("choice", "multi")
        if "choices" in item:
            if question_type is not None and not has_choices:
                self.error(
                    _key_line(item, "choices"),
                    Phrase("choices are only for choice and multi questions"),
                )
            else:
                choices = self.check_choices(item, name, question_type)
        elif has_choices:
            self.error(item_line, _missing_field("choices"))
        if question_type in ("choice", "multi"):
            info.values = tuple(c.value for c in choices)
        elif question_type == "yes_no":
            info.values = _YES_NO_VALUES

        bounds = self.check_range(item, name, question_type)
        wrong_units = (
            self.check_wrong_units(item, name, question_type) if "wrong_units" in item else {}
        )

        when = None
        when_source = None
        if "when" in item:
            when_source, when = self.check_when(item, infos, index, name)

        if self.has_errors or question_id is None or question_type is None:
            return None
        return Question(
            id=question_id,
            type=question_type,
            text=text,
            choices=choices,
            profile=profile,
            optional=optional,
            when=when,
            when_source=when_source,
            min=bounds[0],
            max=bounds[1],
            bins=bounds[2],
            wrong_units=wrong_units,
            max_age_days=max_age_days,
            audio=audio,
        )

    def check_max_age(self, item: dict[Any, Any], name: Phrase) -> int | None:
        value = item["max_age_days"]
        line = _key_line(item, "max_age_days")
        if "profile" not in item:
            self.error(
                line,
                Phrase(
                    "max_age_days of %(question)s without profile: only a profile is re-asked",
                    question=name,
                ),
            )
            return None
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            shown = _format_number(value) if _is_number(value) else _kind(value)
            self.error(
                line,
                Phrase(
                    "max_age_days of %(question)s must be a whole number of days, 1 or more, "
                    "got %(got)s",
                    question=name,
                    got=shown,
                ),
            )
            return None
        return int(value)

    def check_choices(
        self, item: dict[Any, Any], name: Phrase, question_type: str | None
    ) -> tuple[Choice, ...]:
        node = item["choices"]
        line = _key_line(item, "choices")
        if not isinstance(node, list):
            self.error(
                line,
                Phrase(
                    "choices of %(question)s must be a list, got %(got)s",
                    question=name,
                    got=_kind(node),
                ),
            )
            return ()
        if len(node) < 2:
            self.error(line, Phrase("%(question)s needs at least 2 choices", question=name))
        if question_type == "multi" and self.voice and len(node) > MAX_ONE_KEY_CHOICES:
            # By phone each choice of a multi answer is one key ("1 3 #"): 10 would read as 1, 0.
            self.error(
                line,
                Phrase(
                    "%(question)s has %(count)s choices, but the survey is offered by phone, "
                    "where a multi question takes one key per choice: at most %(max)s",
                    question=name,
                    count=len(node),
                    max=MAX_ONE_KEY_CHOICES,
                ),
            )
        choices: list[Choice] = []
        first_value_lines: dict[str, int] = {}
        for i, choice in enumerate(node):
            position = i + 1
            choice_line = _item_line(node, i)
            where = Phrase("choice %(number)s of %(question)s", number=position, question=name)
            if not isinstance(choice, dict):
                self.error(
                    choice_line,
                    Phrase(
                        "%(choice)s must be a mapping (value, label), got %(got)s",
                        choice=where,
                        got=_kind(choice),
                    ),
                )
                continue
            for key in choice:
                if key not in CHOICE_FIELDS:
                    self.error(_key_line(choice, key), _unknown_field(key))
            for key in REQUIRED_CHOICE_FIELDS:
                if key not in choice:
                    self.error(choice_line, _missing_field(key))
            value = None
            if "value" in choice:
                value = self.check_choice_value(choice, position, where, first_value_lines)
            label = (
                self.texts(choice, "label", Phrase("label of %(choice)s", choice=where))
                if "label" in choice
                else {}
            )
            for lang, text in label.items():
                system = _system_word(text)
                if system is not None:
                    self.error(
                        _key_line(choice["label"], lang),
                        Phrase(
                            "choice label '%(label)s' is the system keyword %(system)s",
                            label=text,
                            system=system,
                        ),
                    )
            match: dict[str, tuple[str, ...]] = {}
            if "match" in choice:
                match_of = Phrase("match of %(choice)s", choice=where)
                for lang, words in self.word_lists(choice, "match", match_of).items():
                    for word, word_line in words:
                        self.check_answer_word(word, word_line, position, is_match=True)
                    match[lang] = tuple(word for word, _ in words)
            exclusive = False
            if "exclusive" in choice:
                if question_type != "multi":
                    self.error(
                        _key_line(choice, "exclusive"),
                        Phrase("exclusive is only for choices of multi questions"),
                    )
                else:
                    exclusive = self.boolean(
                        choice, "exclusive", Phrase("exclusive of %(choice)s", choice=where)
                    )
            if value is not None:
                choices.append(Choice(value=value, label=label, match=match, exclusive=exclusive))
        return tuple(choices)

    def check_choice_value(
        self, choice: dict[Any, Any], position: int, where: Phrase, first_lines: dict[str, int]
    ) -> str | None:
        raw = choice["value"]
        line = _key_line(choice, "value")
        # A whole number is fine as a value (`value: 1`): it is stored as text.
        if isinstance(raw, int) and not isinstance(raw, bool):
            raw = str(raw)
        if not isinstance(raw, str):
            self.error(
                line,
                Phrase(
                    "value of %(choice)s must be text or a whole number, got %(got)s",
                    choice=where,
                    got=_kind(raw),
                ),
            )
            return None
        if not raw.strip():
            self.error(line, Phrase("empty value for %(choice)s", choice=where))
            return None
        value = str(raw)
        self.check_answer_word(value, line, position, is_match=False)
        if value in first_lines:
            self.error(
                line,
                Phrase(
                    "duplicate choice value '%(value)s' (first at line %(line)s)",
                    value=value,
                    line=first_lines[value],
                ),
            )
            return value
        first_lines[value] = line
        return value

    def check_answer_word(self, word: str, line: int, position: int, *, is_match: bool) -> None:
        """A choice's value, or one of its match words (`is_match`)."""
        # Workers answer with the number shown next to a choice, so another number is a trap.
        digits = word.strip()
        if _DIGITS.fullmatch(digits) and int(digits) != position:
            self.error(
                line,
                Phrase(
                    "match word '%(word)s' is a number different from its position %(position)s",
                    word=word,
                    position=position,
                )
                if is_match
                else Phrase(
                    "choice value '%(word)s' is a number different from its position %(position)s",
                    word=word,
                    position=position,
                ),
            )
        system = _system_word(word)
        if system is not None:
            self.error(
                line,
                Phrase(
                    "match word '%(word)s' is the system keyword %(system)s",
                    word=word,
                    system=system,
                )
                if is_match
                else Phrase(
                    "choice value '%(word)s' is the system keyword %(system)s",
                    word=word,
                    system=system,
                ),
            )

    def check_range(
        self, item: dict[Any, Any], name: Phrase, question_type: str | None
    ) -> tuple[float | None, float | None, tuple[float, ...]]:
        values: dict[str, float | None] = {"min": None, "max": None}
        for key in ("min", "max", "bins"):
            if key in item and question_type is not None and question_type != "number":
                self.error(
                    _key_line(item, key),
                    Phrase("%(field)s is only for number questions", field=key),
                )
        for key in ("min", "max"):
            if key in item:
                values[key] = self.number(item, key, _field_of(key, name))
        low, high = values["min"], values["max"]
        if low is not None and high is not None and low > high:
            self.error(
                _key_line(item, "max"),
                Phrase(
                    "min %(min)s is greater than max %(max)s",
                    min=_format_number(low),
                    max=_format_number(high),
                ),
            )
        bins: list[float] = []
        if "bins" in item:
            node = item["bins"]
            if not isinstance(node, list):
                self.error(
                    _key_line(item, "bins"),
                    Phrase(
                        "bins of %(question)s must be a list of numbers, got %(got)s",
                        question=name,
                        got=_kind(node),
                    ),
                )
                node = []
            previous = None
            for i, edge in enumerate(node):
                line = _item_line(node, i)
                if not _is_number(edge):
                    self.error(
                        line,
                        Phrase(
                            "bins of %(question)s must be numbers, got %(got)s",
                            question=name,
                            got=_kind(edge),
                        ),
                    )
                    continue
                shown = _format_number(edge)
                if previous is not None and edge <= previous:
                    self.error(
                        line,
                        Phrase(
                            "bins must increase: %(bin)s after %(previous)s",
                            bin=shown,
                            previous=_format_number(previous),
                        ),
                    )
                if low is not None and edge < low:
                    self.error(
                        line,
                        Phrase(
                            "bin %(bin)s is below min %(min)s", bin=shown, min=_format_number(low)
                        ),
                    )
                if high is not None and edge > high:
                    self.error(
                        line,
                        Phrase(
                            "bin %(bin)s is above max %(max)s", bin=shown, max=_format_number(high)
                        ),
                    )
                previous = edge
                bins.append(int(edge) if isinstance(edge, int) else float(edge))
        return low, high, tuple(bins)

    def check_wrong_units(
        self, item: dict[Any, Any], name: Phrase, question_type: str | None
    ) -> dict[str, tuple[str, ...]]:
        if question_type is not None and question_type != "number":
            self.error(
                _key_line(item, "wrong_units"), Phrase("wrong_units is only for number questions")
            )
            return {}
        units: dict[str, tuple[str, ...]] = {}
        where = _field_of("wrong_units", name)
        for lang, words in self.word_lists(item, "wrong_units", where).items():
            for word, line in words:
                # A unit is matched as words in the reply, so it needs letters.
                if not any(ch.isalpha() for ch in keywords.fold(word)):
                    self.error(
                        line,
                        Phrase(
                            "wrong unit '%(unit)s' of %(question)s has no letters",
                            unit=word,
                            question=name,
                        ),
                    )
            units[lang] = tuple(word for word, _ in words)
        return units

    def check_when(
        self, item: dict[Any, Any], infos: list[_QuestionInfo], index: int, name: Phrase
    ) -> tuple[str | None, Any]:
        raw = item["when"]
        line = _key_line(item, "when")
        if not isinstance(raw, str):
            self.error(
                line,
                Phrase(
                    "when of %(question)s must be a quoted condition, e.g. \"paid == 'no'\", "
                    "got %(got)s",
                    question=name,
                    got=_kind(raw),
                ),
            )
            return None, None
        try:
            expression = parse(str(raw))
        except ExpressionError as error:
            self.error(line, Phrase("bad when: %(error)s", error=error.text))
            return None, None
        earlier = infos[:index]
        this_and_later = infos[index:]
        known = {i.id for i in earlier} | {i.profile for i in earlier}
        for used in sorted(expression.names()):
            if used in known:
                continue
            if used in (infos[index].id, infos[index].profile):
                self.error(line, Phrase("when names '%(name)s', this question itself", name=used))
            elif any(used in (i.id, i.profile) for i in this_and_later):
                self.error(line, Phrase("when names '%(name)s', a later question", name=used))
            else:
                self.error(line, Phrase("when names unknown question '%(name)s'", name=used))
        by_id = {i.id: i for i in earlier if i.id is not None}
        reported: set[tuple[str, str]] = set()
        for used, literal in expression.compared_literals():
            target = by_id.get(used)
            shown = str(literal)
            if target is None or target.values is None or shown in target.values:
                continue
            if (used, shown) not in reported:
                reported.add((used, shown))
                self.warn(
                    line,
                    Phrase(
                        "when compares '%(name)s' with '%(value)s', which is not one of its "
                        "values (%(values)s)",
                        name=used,
                        value=shown,
                        values=", ".join(target.values),
                    ),
                )
        return str(raw), expression
