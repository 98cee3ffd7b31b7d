"""The survey editor's form fields and the survey document they stand for.

Every field is named by its path in the document (`questions.2.choices.0.label.es`), the path
the check gives each problem, so the page can show a problem beside its field. editor.js builds
the same document from the same fields (`documentFromForm`); the two must stay alike.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from engage.survey.definition import QUESTION_TYPES, SMS_SPELLINGS

# Languages offered with a tick box when a survey is made; any other 2–3 letter code is typed.
COMMON_LANGUAGES = ("es", "en", "ht")
LANGUAGE_CODE = re.compile(r"[a-z]{2,3}")
SURVEY_ID_PATTERN = "[a-z0-9]+(-[a-z0-9]+)*"

CHOICE_TYPES = ("choice", "multi")
PROFILE_TYPES = ("choice", "multi", "yes_no")
_INDEX = re.compile(r"questions\.(\d+)\.type")
_CHOICE_INDEX = re.compile(r"choices\.(\d+)\.value")
_NUMBER = re.compile(r"-?[0-9]+(\.[0-9]+)?")


def split_words(value: str) -> list[str]:
    """Words typed as a list separated by commas (a keyword may hold a space)."""
    return [word.strip() for word in value.split(",") if word.strip()]


def split_languages(value: str) -> list[str]:
    """Language codes typed in order, separated by commas or spaces."""
    return [code.strip().lower() for code in re.split(r"[\s,]+", value) if code.strip()]


def number_or_text(value: str) -> int | float | str:
    """A number as typed; anything else stays text, for the check to name."""
    value = value.strip()
    if _NUMBER.fullmatch(value):
        return float(value) if "." in value else int(value)
    return value


def document_from_form(survey_id: str, form: Mapping[str, str]) -> dict[str, Any]:
    """The survey document the editor's fields describe.

    Empty optional fields are left out; a text missing in a language is left out of its
    mapping, so the check says which translation is missing.
    """
    languages = split_languages(form.get("languages", ""))
    # Languages left empty by mistake: what was written in each language stays (the check
    # says languages are missing) instead of being lost with the next save.
    written_in = languages or _title_languages(form)

    def texts(path: str) -> dict[str, str]:
        return {
            lang: form[f"{path}.{lang}"].strip()
            for lang in written_in
            if form.get(f"{path}.{lang}", "").strip()
        }

    def words(path: str) -> dict[str, list[str]]:
        found = {lang: split_words(form.get(f"{path}.{lang}", "")) for lang in written_in}
        return {lang: listed for lang, listed in found.items() if listed}

    document: dict[str, Any] = {
        "id": survey_id,
        "title": texts("title"),
        "languages": languages,
        "keywords": {lang: split_words(form.get(f"keywords.{lang}", "")) for lang in written_in},
    }
    if form.get("repeat"):
        document["repeat"] = True
    if form.get("sms_spelling") in SMS_SPELLINGS and form["sms_spelling"] != "as_written":
        document["sms_spelling"] = form["sms_spelling"]
    for field in ("whatsapp_template", "intro"):
        if found := texts(field):
            document[field] = found
    indexes = sorted({int(m.group(1)) for key in form if (m := _INDEX.fullmatch(key))})
    document["questions"] = [
        question_from_form(form, f"questions.{i}", texts, words) for i in indexes
    ]
    if found := texts("closing"):
        document["closing"] = found
    return document


def _title_languages(form: Mapping[str, str]) -> list[str]:
    """The languages the page has fields for (every language has a title field)."""
    return [key.partition(".")[2] for key in form if key.startswith("title.")]


def question_from_form(
    form: Mapping[str, str], path: str, texts: Any, words: Any
) -> dict[str, Any]:
    kind = form.get(f"{path}.type", "")
    question: dict[str, Any] = {
        "id": form.get(f"{path}.id", "").strip(),
        "type": kind,
        "text": texts(f"{path}.text"),
    }
    if kind in PROFILE_TYPES and (profile := form.get(f"{path}.profile", "").strip()):
        question["profile"] = profile
        if max_age := form.get(f"{path}.max_age_days", "").strip():
            question["max_age_days"] = number_or_text(max_age)
    if form.get(f"{path}.optional"):
        question["optional"] = True
    if when := form.get(f"{path}.when", "").strip():
        question["when"] = when
    if kind in CHOICE_TYPES:
        prefix = f"{path}.choices."
        positions = sorted(
            {
                int(m.group(1))
                for key in form
                if key.startswith(prefix) and (m := _CHOICE_INDEX.fullmatch(key[len(path) + 1 :]))
            }
        )
        question["choices"] = [
            choice_from_form(form, f"{prefix}{i}", kind, texts, words) for i in positions
        ]
    if kind == "number":
        for bound in ("min", "max"):
            if value := form.get(f"{path}.{bound}", "").strip():
                question[bound] = number_or_text(value)
        if bins := split_words(form.get(f"{path}.bins", "")):
            question["bins"] = [number_or_text(edge) for edge in bins]
        if units := words(f"{path}.wrong_units"):
            question["wrong_units"] = units
    return question


def choice_from_form(
    form: Mapping[str, str], path: str, kind: str, texts: Any, words: Any
) -> dict[str, Any]:
    choice: dict[str, Any] = {
        "value": form.get(f"{path}.value", "").strip(),
        "label": texts(f"{path}.label"),
    }
    if match := words(f"{path}.match"):
        choice["match"] = match
    if kind == "multi" and form.get(f"{path}.exclusive"):
        choice["exclusive"] = True
    return choice


# --- structural edits without JavaScript ---------------------------------------------------------


def new_question(kind: str, questions: list[Any]) -> dict[str, Any]:
    """A question of this type with an id no other question has, ready to be written."""
    taken = {q.get("id") for q in questions if isinstance(q, dict)}
    number = len(questions) + 1
    while f"q{number}" in taken:
        number += 1
    question: dict[str, Any] = {"id": f"q{number}", "type": kind, "text": {}}
    if kind in CHOICE_TYPES:
        question["choices"] = [{"value": "", "label": {}}, {"value": "", "label": {}}]
    return question


def apply_action(document: dict[str, Any], action: str, new_type: str = "choice") -> str | None:
    """Apply a button of the editor (add, delete or move a question or a choice) to the
    document; returns the anchor of the field to show next, or None for an unknown action."""
    questions = document.get("questions")
    if not isinstance(questions, list):
        questions = document["questions"] = []
    name, _, rest = action.partition(":")
    numbers = [int(n) for n in rest.split(":") if n.isdigit()]
    if name == "add_question":
        kind = new_type if new_type in QUESTION_TYPES else "choice"
        questions.append(new_question(kind, questions))
        return f"question-{len(questions) - 1}"
    if not numbers or not 0 <= numbers[0] < len(questions):
        return None
    index = numbers[0]
    if name == "delete_question":
        del questions[index]
        return f"question-{max(index - 1, 0)}" if questions else "questions"
    if name in ("up", "down"):
        other = index - 1 if name == "up" else index + 1
        if 0 <= other < len(questions):
            questions[index], questions[other] = questions[other], questions[index]
            return f"question-{other}"
        return f"question-{index}"
    question = questions[index]
    choices = question.get("choices") if isinstance(question, dict) else None
    if name == "add_choice" and isinstance(question, dict):
        if not isinstance(choices, list):
            choices = question["choices"] = []
        choices.append({"value": "", "label": {}})
        return f"question-{index}"
    if name == "delete_choice" and len(numbers) == 2 and isinstance(choices, list):
        if 0 <= numbers[1] < len(choices):
            del choices[numbers[1]]
        return f"question-{index}"
    return None


# --- where the editor shows each problem ---------------------------------------------------------


def _languages_of(document: Mapping[str, Any]) -> list[str]:
    languages = document.get("languages")
    if not isinstance(languages, list):
        return []
    return [lang for lang in languages if isinstance(lang, str)]


def field_paths(document: Mapping[str, Any]) -> set[str]:
    """The paths of every field the editor shows for this document (its `data-path`s)."""
    languages = _languages_of(document)
    paths = {"id", "languages", "repeat", "sms_spelling", "questions"}
    for field in ("title", "keywords", "whatsapp_template", "intro", "closing"):
        paths.add(field)
        paths.update(f"{field}.{lang}" for lang in languages)
    questions = document.get("questions")
    for i, question in enumerate(questions if isinstance(questions, list) else []):
        path = f"questions.{i}"
        paths.add(path)
        for field in ("id", "type", "optional", "when", "profile", "max_age_days"):
            paths.add(f"{path}.{field}")
        for field in ("min", "max", "bins", "choices"):
            paths.add(f"{path}.{field}")
        for field in ("text", "wrong_units"):
            paths.add(f"{path}.{field}")
            paths.update(f"{path}.{field}.{lang}" for lang in languages)
        choices = question.get("choices") if isinstance(question, dict) else None
        for j, _choice in enumerate(choices if isinstance(choices, list) else []):
            choice = f"{path}.choices.{j}"
            paths.update({choice, f"{choice}.value", f"{choice}.exclusive"})
            for field in ("label", "match"):
                paths.add(f"{choice}.{field}")
                paths.update(f"{choice}.{field}.{lang}" for lang in languages)
    return paths


def shown_at(path: str, shown: set[str]) -> str:
    """The field a problem at `path` is shown beside: itself, else its nearest shown ancestor
    ("" when none: the page lists it at the top only)."""
    while path and path not in shown:
        path = path.rpartition(".")[0]
    return path


def when_suggestions(questions: list[Any]) -> tuple[list[list[str]], list[list[str]]]:
    """For each question, the names its `when` may use (earlier question ids and profile
    keys) and ready-made conditions on them (`paid == 'no'`), as the editor offers them."""
    names: list[list[str]] = []
    options: list[list[str]] = []
    known: list[str] = []
    conditions: list[str] = []
    for question in questions:
        names.append(list(known))
        options.append(list(conditions))
        if not isinstance(question, dict):
            continue
        kind = question.get("type")
        values: list[str] = []
        if kind == "yes_no":
            values = ["yes", "no"]
        elif kind in CHOICE_TYPES and isinstance(question.get("choices"), list):
            values = [
                str(c["value"])
                for c in question["choices"]
                if isinstance(c, dict)
                and isinstance(c.get("value"), str | int)
                and c["value"] != ""
            ]
        for key in (question.get("id"), question.get("profile")):
            if not isinstance(key, str) or not key or key in known:
                continue
            known.append(key)
            if kind == "multi":
                conditions.extend(f"'{value}' in {key}" for value in values)
            elif kind == "number":
                conditions.append(f"{key} >= 1")
            else:
                conditions.extend(f"{key} == '{value}'" for value in values)
    return names, options


def anchor_of(path: str) -> str:
    """The id of the element of the editor that shows the field at `path` ("" for none)."""
    if not path:
        return ""
    if re.fullmatch(r"questions\.[0-9]+", path):
        return "question-" + path.rpartition(".")[2]
    return "f-" + path.replace(".", "-")
