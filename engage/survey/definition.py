"""A parsed survey file: immutable, language-keyed texts, nothing about storage."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from engage.survey.expression import Expression
    from engage.survey.recordings import Recording

QUESTION_TYPES = ("choice", "multi", "yes_no", "number", "text")
# How a survey's own texts are spelled on SMS: as written, or in plain GSM-7 letters (á→a).
SMS_SPELLINGS = ("as_written", "plain")

# A text per language code, e.g. {"es": "¿Le pagan a tiempo?", "en": "Are you paid on time?"}.
Texts = dict[str, str]


@dataclass(frozen=True)
class Choice:
    value: str
    label: Texts
    match: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # On a multi question: this choice ("none") cannot be given with others.
    exclusive: bool = False


@dataclass(frozen=True)
class Question:
    id: str
    type: str
    text: Texts
    choices: tuple[Choice, ...] = ()
    profile: str | None = None
    optional: bool = False
    when: Expression | None = None
    when_source: str | None = None
    min: float | None = None
    max: float | None = None
    bins: tuple[float, ...] = ()
    # Number questions: unit words per language that make a number reply a miss
    # ("10 horas al día" to a question about a week).
    wrong_units: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # Profile questions: a known value older than this many days is asked again.
    max_age_days: int | None = None
    # The question read out with its choices, recorded per language: a media name
    # ("<sha256>.wav") once the survey file's audio has been read (engage/survey/audio_files.py).
    audio: Texts = field(default_factory=dict)

    def choice_by_value(self, value: str) -> Choice | None:
        """The choice with this stored value, if any."""
        return next((c for c in self.choices if c.value == value), None)


@dataclass(frozen=True)
class Survey:
    id: str
    title: Texts
    languages: tuple[str, ...]
    keywords: dict[str, tuple[str, ...]]
    questions: tuple[Question, ...]
    repeat: bool = False
    whatsapp_template: Texts = field(default_factory=dict)
    intro: Texts = field(default_factory=dict)
    closing: Texts = field(default_factory=dict)
    sms_spelling: str = "as_written"
    # The languages this survey is offered in by phone (`voice: true` is all of them).
    voice: tuple[str, ...] = ()
    # The survey's own recorded prompts other than questions: {"title"|"intro"|"closing":
    # {language: media name}}.
    audio: dict[str, Texts] = field(default_factory=dict)
    # A hash of the parsed definition: the survey version.
    version: str = ""
    # The parsed definition as plain data (what the version hashes); stored with each version.
    source: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)
    # Read from beside a survey file, for publishing: {media name: Recording}.
    recordings: Mapping[str, Recording] = field(default_factory=dict, compare=False, repr=False)

    @property
    def default_language(self) -> str:
        return self.languages[0]

    def audio_of(self, prompt: str, language: str) -> str | None:
        """The media name of a recorded prompt ("title", "intro", "closing"), if any."""
        return self.audio.get(prompt, {}).get(language)

    @property
    def is_plain_on_sms(self) -> bool:
        """Whether this survey's texts go in plain GSM-7 spelling on SMS."""
        return self.sms_spelling == "plain"

    def question(self, question_id: str) -> Question:
        """The question with this id (KeyError when there is none)."""
        for q in self.questions:
            if q.id == question_id:
                return q
        raise KeyError(question_id)

    def index_of(self, question_id: str) -> int:
        return next(i for i, q in enumerate(self.questions) if q.id == question_id)


def _texts(raw: Any) -> Texts:
    return {str(k): str(v) for k, v in (raw or {}).items()}


def _words(raw: Any) -> dict[str, tuple[str, ...]]:
    return {str(k): tuple(str(w) for w in v) for k, v in (raw or {}).items()}


def voice_languages(source: dict[str, Any]) -> tuple[str, ...]:
    """The languages a checked definition offers by phone: `voice: true` is every language."""
    voice = source.get("voice")
    if voice is True:
        return tuple(str(x) for x in source["languages"])
    return tuple(str(x) for x in voice or ())


def survey_from_source(source: dict[str, Any], version: str) -> Survey:
    """Rebuild a checked survey from its stored plain definition (what a version hashes)."""
    from engage.survey.expression import parse

    questions = []
    for q in source["questions"]:
        when = q.get("when")
        questions.append(
            Question(
                id=str(q["id"]),
                type=str(q["type"]),
                text=_texts(q.get("text")),
                choices=tuple(
                    Choice(
                        value=str(c["value"]),
                        label=_texts(c.get("label")),
                        match=_words(c.get("match")),
                        exclusive=bool(c.get("exclusive", False)),
                    )
                    for c in q.get("choices") or ()
                ),
                profile=q.get("profile"),
                optional=bool(q.get("optional", False)),
                when=parse(when) if when else None,
                when_source=when,
                min=q.get("min"),
                max=q.get("max"),
                bins=tuple(q.get("bins") or ()),
                wrong_units=_words(q.get("wrong_units")),
                max_age_days=q.get("max_age_days"),
                audio=_texts(q.get("audio")),
            )
        )
    return Survey(
        id=str(source["id"]),
        title=_texts(source.get("title")),
        languages=tuple(str(x) for x in source["languages"]),
        keywords=_words(source.get("keywords")),
        questions=tuple(questions),
        repeat=bool(source.get("repeat", False)),
        whatsapp_template=_texts(source.get("whatsapp_template")),
        intro=_texts(source.get("intro")),
        closing=_texts(source.get("closing")),
        sms_spelling=str(source.get("sms_spelling", "as_written")),
        voice=voice_languages(source),
        audio={str(k): _texts(v) for k, v in (source.get("audio") or {}).items()},
        version=version,
        source=source,
    )
