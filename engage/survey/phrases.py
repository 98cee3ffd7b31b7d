"""What the survey checks say to people, kept as a template and its values, so that a page can
say it in its own language while `engage surveys check` writes the English.

A template is English text with named `%`-style placeholders (`missing translation
'%(language)s' for %(where)s`), written as the first argument of `Phrase(...)`: that is how
`pybabel extract -k Phrase` finds it for the pages' catalog (`web`). Each value is one of:

- what the survey's author wrote (a question id, a keyword, a language code, a file name):
  shown as it is, never translated;
- a `Count`, a number written with thousands separators ("1,000,000" in English);
- another `Phrase` ("text of question 'q1'", "a list"), said in the page's language in turn.

`str()` gives the English; `render` takes the look-up of a template and the way to write a
Count, so this module needs no catalog and no request.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Count:
    """A number written with thousands separators: `1,000,000` in English."""

    value: int

    def __str__(self) -> str:
        return f"{self.value:,}"


@dataclass(frozen=True, init=False)
class Phrase:
    """A template (English, `%(name)s` placeholders) and the values that fill it in."""

    template: str
    params: Mapping[str, Value] = field(hash=False)

    def __init__(self, template: str, /, **params: Value) -> None:
        object.__setattr__(self, "template", template)
        object.__setattr__(self, "params", params)

    def __str__(self) -> str:
        return self.render(_as_is, str)

    def render(self, translate: Callable[[str], str], count: Callable[[Count], str]) -> str:
        """The phrase with `translate` looking up each template (this one and those of the
        phrases among its values) and `count` writing each Count."""
        text = translate(self.template)
        if not self.params:
            return text
        return text % {name: _rendered(v, translate, count) for name, v in self.params.items()}


# What fills a placeholder.
Value = str | int | float | Count | Phrase


def _as_is(template: str) -> str:
    return template


def _rendered(value: Value, translate: Callable[[str], str], count: Callable[[Count], str]) -> str:
    if isinstance(value, Phrase):
        return value.render(translate, count)
    if isinstance(value, Count):
        return count(value)
    return str(value)


class Worded:
    """What a problem shares with the others: its English `message`, and the `template` and
    `params` it is made of (`message == str(self.text)`), for a page to say it in its own
    language. One made from a message alone has that message as its template. For frozen
    dataclasses that declare these three fields."""

    message: str
    template: str
    params: Mapping[str, Value]

    def __post_init__(self) -> None:
        if not self.template:
            object.__setattr__(self, "template", self.message)

    @property
    def text(self) -> Phrase:
        return Phrase(self.template, **self.params)
