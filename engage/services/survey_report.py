"""`engage surveys check`: problems with file and line, else what each message costs in SMS."""

from __future__ import annotations

from pathlib import Path

from engage.config import LOCALES_DIR
from engage.survey.definition import Survey
from engage.survey.engine import render_question
from engage.survey.loader import load_surveys
from engage.survey.segments import count_segments, to_gsm7
from engage.survey.texts import SystemTexts

QUESTION_BUDGET = 2
CONSENT_BUDGET = 2  # as sent on SMS: system texts go in plain GSM-7 spelling


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
        for lang in survey.languages:
            t = SystemTexts(LOCALES_DIR, lang, org_name)
            lines.append(_cost_line("consent", lang, t.sms.consent(), CONSENT_BUDGET))
            if survey.intro.get(lang):
                lines.append(_survey_cost_line(survey, "intro", lang, survey.intro[lang]))
            for question in survey.questions:
                text = render_question(question, survey, lang, t.sms)
                lines.append(_survey_cost_line(survey, question.id, lang, text))
            if survey.closing.get(lang):
                lines.append(_survey_cost_line(survey, "closing", lang, survey.closing[lang]))
    return True, lines


def _cost_line(name: str, lang: str, text: str, budget: int) -> str:
    cost = count_segments(text)
    line = f"  {name:<20} {lang:<4} {cost.encoding:<6} {cost.segments} segment(s)"
    if cost.segments > budget:
        line += f"  warning: more than {budget} segments"
    return line


def _survey_cost_line(survey: Survey, name: str, lang: str, text: str) -> str:
    """A survey text's cost as sent on SMS first, then as it would be in the other spelling."""
    as_written = count_segments(text)
    plain = count_segments(to_gsm7(text))
    sent, other = (plain, as_written) if survey.is_plain_on_sms else (as_written, plain)
    other_name = "as written" if survey.is_plain_on_sms else "plain"
    line = (
        f"  {name:<20} {lang:<4} {sent.encoding:<6} {sent.segments} segment(s) sent on SMS "
        f"({'plain' if survey.is_plain_on_sms else 'as written'}; "
        f"{other_name}: {other.encoding} {other.segments})"
    )
    if sent.segments > QUESTION_BUDGET:
        line += f"  warning: more than {QUESTION_BUDGET} segments on SMS"
    return line
