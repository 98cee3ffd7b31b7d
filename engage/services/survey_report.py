"""What `engage surveys check` and the staff editor report: problems, else what each message costs.

One code path for both: the command prints `check_files`' lines, the editor shows
`message_costs` beside each field.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from engage.config import LOCALES_DIR
from engage.survey.definition import Survey
from engage.survey.engine import render_question
from engage.survey.loader import load_surveys
from engage.survey.segments import UCS2, count_segments, is_gsm7, to_gsm7
from engage.survey.texts import SystemTexts

QUESTION_BUDGET = 2
CONSENT_BUDGET = 2  # as sent on SMS: system texts go in plain GSM-7 spelling


@dataclass(frozen=True)
class MessageCost:
    """One message of a survey in one language, as sent on SMS."""

    message: str  # "consent", "intro", "closing" or a question id
    language: str
    encoding: str
    segments: int
    budget: int
    # The characters that make it UCS-2, each once, in the order they appear.
    ucs2_characters: str
    # For survey texts, the other spelling (plain or as written) and what it would cost.
    other_spelling: str | None = None
    other_encoding: str | None = None
    other_segments: int | None = None

    @property
    def is_over_budget(self) -> bool:
        return self.segments > self.budget


def _ucs2_characters(text: str) -> str:
    return "".join(dict.fromkeys(ch for ch in text if not is_gsm7(ch)))


def _system_cost(name: str, lang: str, text: str, budget: int) -> MessageCost:
    cost = count_segments(text)
    chars = _ucs2_characters(text) if cost.encoding == UCS2 else ""
    return MessageCost(name, lang, cost.encoding, cost.segments, budget, chars)


def _survey_cost(survey: Survey, name: str, lang: str, text: str) -> MessageCost:
    """A survey text's cost as sent on SMS, and as it would be in the other spelling."""
    plain_text = to_gsm7(text)
    sent_text, other_text = (plain_text, text) if survey.is_plain_on_sms else (text, plain_text)
    sent, other = count_segments(sent_text), count_segments(other_text)
    chars = _ucs2_characters(sent_text) if sent.encoding == UCS2 else ""
    return MessageCost(
        name,
        lang,
        sent.encoding,
        sent.segments,
        QUESTION_BUDGET,
        chars,
        other_spelling="as_written" if survey.is_plain_on_sms else "plain",
        other_encoding=other.encoding,
        other_segments=other.segments,
    )


def message_costs(survey: Survey, *, org_name: str) -> list[MessageCost]:
    """Every message the survey sends on SMS, per language: consent, intro, questions, closing."""
    costs = []
    for lang in survey.languages:
        t = SystemTexts(LOCALES_DIR, lang, org_name)
        costs.append(_system_cost("consent", lang, t.sms.consent(), CONSENT_BUDGET))
        if survey.intro.get(lang):
            costs.append(_survey_cost(survey, "intro", lang, survey.intro[lang]))
        for question in survey.questions:
            text = render_question(question, survey, lang, t.sms)
            costs.append(_survey_cost(survey, question.id, lang, text))
        if survey.closing.get(lang):
            costs.append(_survey_cost(survey, "closing", lang, survey.closing[lang]))
    return costs


def check_files(files: list[Path], *, org_name: str) -> tuple[bool, list[str]]:
    """Check survey files; returns (ok, lines to print)."""
    if not files:
        return False, ["no survey files found"]
    surveys, problems = load_surveys(files)
    errors = [p for p in problems if not p.is_warning]
    if errors:
        return False, [str(p) for p in problems]
    lines = [str(p) for p in problems]
    for survey in surveys:
        lines.append(f"{survey.id} (version {survey.version}): ok")
        lines.extend(_cost_line(cost) for cost in message_costs(survey, org_name=org_name))
    return True, lines


def _cost_line(cost: MessageCost) -> str:
    line = f"  {cost.message:<20} {cost.language:<4} {cost.encoding:<6} {cost.segments} segment(s)"
    if cost.other_spelling is not None:
        sent = "plain" if cost.other_spelling == "as_written" else "as written"
        other = cost.other_spelling.replace("_", " ")
        line += f" sent on SMS ({sent}; {other}: {cost.other_encoding} {cost.other_segments})"
    if cost.ucs2_characters:
        line += f"  UCS-2 because of: {' '.join(cost.ucs2_characters)}"
    if cost.is_over_budget:
        where = " on SMS" if cost.other_spelling is not None else ""
        line += f"  warning: more than {cost.budget} segments{where}"
    return line
