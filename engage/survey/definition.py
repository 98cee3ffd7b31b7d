"""A parsed survey file: immutable, language-keyed texts, nothing about storage."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from engage.survey.expression import Expression

QUESTION_TYPES = ("choice", "multi", "yes_no", "number", "text")

# A text per language code, e.g. {"es": "¿Le pagan a tiempo?", "en": "Are you paid on time?"}.
Texts = dict[str, str]


@dataclass(frozen=True)
class Choice:
    value: str
    label: Texts
    match: dict[str, tuple[str, ...]] = field(default_factory=dict)


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
    # A hash of the parsed definition: the survey version.
    version: str = ""
    # The parsed definition as plain data (what the version hashes); stored with each version.
    source: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def default_language(self) -> str:
        return self.languages[0]

    def question(self, question_id: str) -> Question:
        """The question with this id (KeyError when there is none)."""
        for q in self.questions:
            if q.id == question_id:
                return q
        raise KeyError(question_id)

    def index_of(self, question_id: str) -> int:
        return next(i for i, q in enumerate(self.questions) if q.id == question_id)
