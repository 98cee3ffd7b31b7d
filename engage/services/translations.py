"""Translators' files: a survey's texts as one PO file per language, or one XLSX workbook with a
column per language, and their upload back into a web survey's draft.

Every text is named by its field path (its context): `title`, `intro`, `closing`, `keywords`,
`questions.hours.text`, `questions.state.choices.CA.label`, … Question ids and choice values
name it, never positions, so a file made before the questions were reordered still fits. Word
lists (keywords, `match`, `wrong_units`) are written as words separated by commas.

An upload is only read: `preview_changes` says what it would change and which problems the
draft would then have; `save_translations` applies it, refused when the draft was saved by
anyone since it was read. The draft keeps its own text (comments, order, quoting): only the
translated values change in it.
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from babel.messages import pofile
from babel.messages.catalog import Catalog
from openpyxl import Workbook, load_workbook
from openpyxl.utils import get_column_letter
from openpyxl.utils.exceptions import InvalidFileException
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedSeq
from ruamel.yaml.scalarstring import ScalarString
from ruamel.yaml.util import load_yaml_guess_indent
from sqlalchemy.orm import Session

from engage.models import SurveyDraft
from engage.results.writers import CONTROL_CHARACTERS, FORMULA_PREFIXES
from engage.services.web_surveys import (
    FieldProblem,
    StaleDraftError,
    SurveyEditError,
    check_draft_text,
    document_of,
    dump_yaml,
    get_record,
    latest_survey,
    save_draft,
)
from engage.survey.loader import MAX_FILE_BYTES, check_text

FORMATS = ("po", "xlsx")
CONTEXT_HEADER = "context"
WORD_SEPARATOR = ", "
TEXT_FIELDS = ("title", "intro", "closing")
# A workbook is a zip: what it unpacks to is bounded before openpyxl reads a byte of it, so a
# small upload cannot expand into gigabytes (a zip bomb).
MAX_XLSX_UNPACKED_BYTES = 20_000_000
MAX_XLSX_MEMBERS = 200
MAX_XLSX_ROWS = 20_000
MAX_XLSX_COLUMNS = 60
_ZIP_MAGIC = b"PK\x03\x04"
PO_HEADER = """\
# Survey {survey}: its texts for translators (Engage).
# msgctxt names the field, msgid is the text in the survey's default language ({default});
# write the translation in msgstr. Leave msgstr empty where you have no translation yet."""


class TranslationFileError(ValueError):
    """An uploaded file that cannot be read as translations; `code` names why for the page."""

    def __init__(self, code: str, **params: object) -> None:
        super().__init__(code)
        self.code = code
        self.params = params


@dataclass(frozen=True)
class Entry:
    """One text of a survey in every language it has: word lists joined by commas."""

    context: str
    texts: dict[str, str]
    is_word_list: bool = False


@dataclass(frozen=True)
class Change:
    context: str
    language: str
    old: str
    new: str


@dataclass(frozen=True)
class Notice:
    """Something in an upload that was not taken, or should be looked at: `code` names it."""

    code: str  # unknown_context | fuzzy | source_changed | unknown_language | duplicate
    context: str = ""
    language: str = ""


@dataclass
class Reading:
    """What an upload holds: the changes it makes to the draft and what was left aside."""

    kind: str  # po | xlsx
    languages: tuple[str, ...]
    changes: list[Change]
    notices: list[Notice] = field(default_factory=list)


@dataclass(frozen=True)
class SurveyTexts:
    """A survey as translators' files are made from it: a web survey's draft when it has one,
    else its latest published version."""

    survey_id: str
    text: str
    document: dict[str, Any]
    revision: int  # the draft's revision; 0 when the survey has no draft
    is_web: bool
    has_draft: bool

    @property
    def languages(self) -> tuple[str, ...]:
        languages = self.document.get("languages")
        if not isinstance(languages, list):
            return ()
        return tuple(dict.fromkeys(lang for lang in languages if isinstance(lang, str)))

    @property
    def default_language(self) -> str | None:
        return self.languages[0] if self.languages else None

    @property
    def entries(self) -> list[Entry]:
        return entries_of(self.document)


@dataclass(frozen=True)
class PreviewProblem:
    problem: FieldProblem
    is_new: bool  # the draft does not have it now: the upload would bring it


@dataclass(frozen=True)
class CostChange:
    """A message of a language the upload changes, as it would cost on SMS."""

    message: str
    language: str
    before: int | None
    after: int
    budget: int
    encoding: str

    @property
    def is_over_budget(self) -> bool:
        return self.after > self.budget


@dataclass
class Preview:
    reading: Reading
    revision: int
    problems: list[PreviewProblem]
    costs: list[CostChange]

    @property
    def new_problems(self) -> list[PreviewProblem]:
        return [p for p in self.problems if p.is_new]


# --- what a survey holds -----------------------------------------------------------------------


def survey_texts(session: Session, survey_id: str) -> SurveyTexts:
    """The text translators' files and downloads are made from (SurveyEditError when the survey
    is unknown, or has neither a draft nor a published version)."""
    record = get_record(session, survey_id)
    is_web = record.source == "web"
    draft = session.get(SurveyDraft, survey_id) if is_web else None
    if draft is not None:
        text, revision = draft.text, draft.revision
    else:
        survey = latest_survey(session, survey_id)
        if survey is None:
            raise SurveyEditError("no_version", survey_id=survey_id)
        text, revision = dump_yaml(dict(survey.source)), 0
    return SurveyTexts(survey_id, text, document_of(text), revision, is_web, draft is not None)


def entries_of(document: dict[str, Any]) -> list[Entry]:
    """Every translatable text of a survey document, in the order of a survey file."""
    entries: list[Entry] = []

    def add_texts(context: str, node: object) -> None:
        if isinstance(node, dict):
            entries.append(Entry(context, _texts(node)))

    def add_words(context: str, node: object) -> None:
        if isinstance(node, dict):
            entries.append(Entry(context, _word_lists(node), is_word_list=True))

    add_texts("title", document.get("title"))
    add_words("keywords", document.get("keywords"))
    add_texts("intro", document.get("intro"))
    for question_id, question in _questions(document).items():
        prefix = f"questions.{question_id}"
        add_texts(f"{prefix}.text", question.get("text"))
        for value, choice in _choices(question).items():
            add_texts(f"{prefix}.choices.{value}.label", choice.get("label"))
            add_words(f"{prefix}.choices.{value}.match", choice.get("match"))
        add_words(f"{prefix}.wrong_units", question.get("wrong_units"))
    add_texts("closing", document.get("closing"))
    return entries


def _texts(node: dict[Any, Any]) -> dict[str, str]:
    return {str(k): v for k, v in node.items() if isinstance(v, str) and v}


def _word_lists(node: dict[Any, Any]) -> dict[str, str]:
    lists = {}
    for lang, words in node.items():
        if isinstance(words, list):
            joined = WORD_SEPARATOR.join(str(w) for w in words if isinstance(w, str | int))
            if joined:
                lists[str(lang)] = joined
    return lists


def _unique_key(value: object) -> str | None:
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    return str(value)


def _questions(document: dict[str, Any]) -> dict[str, dict[Any, Any]]:
    """Questions by id; one whose id is missing or repeated has no name a file could use."""
    found: dict[str, dict[Any, Any]] = {}
    repeated: set[str] = set()
    questions = document.get("questions")
    for question in questions if isinstance(questions, list) else ():
        if not isinstance(question, dict):
            continue
        key = _unique_key(question.get("id"))
        if key is None:
            continue
        if key in found:
            repeated.add(key)
        found.setdefault(key, question)
    return {k: v for k, v in found.items() if k not in repeated}


def _choices(question: dict[Any, Any]) -> dict[str, dict[Any, Any]]:
    found: dict[str, dict[Any, Any]] = {}
    repeated: set[str] = set()
    choices = question.get("choices")
    for choice in choices if isinstance(choices, list) else ():
        if not isinstance(choice, dict):
            continue
        key = _unique_key(choice.get("value"))
        if key is None:
            continue
        if key in found:
            repeated.add(key)
        found.setdefault(key, choice)
    return {k: v for k, v in found.items() if k not in repeated}


def missing_counts(texts: SurveyTexts) -> dict[str, int]:
    """For each language, how many texts (and keyword lists) the default language has and it
    lacks; `match` words and units are optional in every language."""
    default = texts.default_language
    entries = [
        e
        for e in texts.entries
        if default and e.texts.get(default) and (not e.is_word_list or e.context == "keywords")
    ]
    return {lang: sum(1 for e in entries if not e.texts.get(lang)) for lang in texts.languages}


# --- writing the files -------------------------------------------------------------------------


def write_po(texts: SurveyTexts, language: str) -> bytes:
    """One language as a PO file: msgid the default language's text, msgstr this language's
    (empty when missing), msgctxt the field path."""
    default = texts.default_language
    if language not in texts.languages or language == default:
        raise TranslationFileError("bad_language", language=language)
    catalog = Catalog(
        locale=language,
        project=texts.survey_id,
        header_comment=PO_HEADER.format(survey=texts.survey_id, default=default),
        fuzzy=False,
    )
    for entry in texts.entries:
        source = entry.texts.get(default or "")
        if not source:
            continue  # nothing to translate from: the editor shows it as missing
        comments = ["Words separated by commas."] if entry.is_word_list else []
        catalog.add(
            source, entry.texts.get(language, ""), context=entry.context, auto_comments=comments
        )
    buffer = io.BytesIO()
    pofile.write_po(buffer, catalog, omit_header=False, sort_output=False)
    return buffer.getvalue()


def write_xlsx(texts: SurveyTexts) -> bytes:
    """Every language in one sheet: the context, then a column per language, all as text."""
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(title=texts.survey_id[:31])
    sheet.freeze_panes = "B2"
    sheet.column_dimensions["A"].width = 36
    for index in range(len(texts.languages)):
        sheet.column_dimensions[get_column_letter(index + 2)].width = 48
    sheet.append([CONTEXT_HEADER, *texts.languages])
    for entry in texts.entries:
        sheet.append(
            [_cell(entry.context), *(_cell(entry.texts.get(lang)) for lang in texts.languages)]
        )
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def _cell(text: str | None) -> str | None:
    """A text as a cell a spreadsheet shows and never runs: control characters dropped, and a
    leading quote before what a spreadsheet would take for a formula (as the results files
    do), or before a quote, so that reading drops exactly one quote back."""
    if not text:
        return None
    text = CONTROL_CHARACTERS.sub("", text)
    return "'" + text if text.startswith((*FORMULA_PREFIXES, "'")) else text


def _uncell(text: str) -> str:
    return text[1:] if text.startswith("'") else text


# --- reading them back -------------------------------------------------------------------------


def read_upload(texts: SurveyTexts, filename: str, data: bytes) -> Reading:
    """A PO or XLSX upload as the changes it makes to the survey's texts."""
    if len(data) > MAX_FILE_BYTES:
        raise TranslationFileError("too_large")
    name = filename.lower()
    if name.endswith(".xlsx") or (not name.endswith(".po") and data.startswith(_ZIP_MAGIC)):
        return read_xlsx(texts, data)
    return read_po(texts, data)


def read_po(texts: SurveyTexts, data: bytes) -> Reading:
    if len(data) > MAX_FILE_BYTES:
        raise TranslationFileError("too_large")
    try:
        catalog = pofile.read_po(io.BytesIO(data), abort_invalid=True)
    except (pofile.PoFileError, UnicodeDecodeError, LookupError, ValueError):
        raise TranslationFileError("not_po") from None
    if not any(message.id for message in catalog):
        raise TranslationFileError("not_po")  # the header alone: any text file reads as that
    language = _file_language(texts, catalog.locale_identifier)
    default = texts.default_language or ""
    entries = {e.context: e for e in texts.entries}
    changes: dict[str, Change] = {}
    notices: list[Notice] = []
    for message in catalog:
        if not message.id:
            continue  # the header
        context = message.context or ""
        entry = entries.get(context)
        if entry is None or isinstance(message.id, tuple) or not isinstance(message.string, str):
            notices.append(Notice("unknown_context", context, language))
            continue
        if not message.string.strip():
            continue  # not translated yet: the draft keeps what it has
        if message.fuzzy:
            notices.append(Notice("fuzzy", context, language))
            continue
        if entry.texts.get(default, "") != message.id:
            notices.append(Notice("source_changed", context, language))
        change = _change(entry, language, message.string)
        if change is not None:
            changes[context] = change
    return Reading("po", (language,), list(changes.values()), notices)


def _file_language(texts: SurveyTexts, identifier: str | None) -> str:
    """The survey language a file is in: as written (ht), or its language part (es_MX → es)."""
    if not identifier:
        raise TranslationFileError("no_language")
    for candidate in (identifier, identifier.replace("-", "_").split("_")[0].lower()):
        if candidate in texts.languages:
            if candidate == texts.default_language:
                raise TranslationFileError("default_language", language=candidate)
            return candidate
    raise TranslationFileError("unknown_language", language=identifier)


def read_xlsx(texts: SurveyTexts, data: bytes) -> Reading:
    if len(data) > MAX_FILE_BYTES:
        raise TranslationFileError("too_large")
    _check_zip(data)
    try:
        workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except (InvalidFileException, zipfile.BadZipFile, KeyError, ValueError, TypeError, OSError):
        raise TranslationFileError("not_xlsx") from None
    try:
        if not workbook.worksheets:
            raise TranslationFileError("bad_header")
        rows = workbook.worksheets[0].iter_rows(
            max_row=MAX_XLSX_ROWS + 1, max_col=MAX_XLSX_COLUMNS, values_only=True
        )
        return _read_rows(texts, rows)
    except TranslationFileError:
        raise
    except (KeyError, ValueError, TypeError, OSError, zipfile.BadZipFile):
        # The sheet is parsed as it is read: a broken or hostile one (defusedxml refuses XML
        # entities) fails here.
        raise TranslationFileError("not_xlsx") from None
    finally:
        workbook.close()


def _check_zip(data: bytes) -> None:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError):
        raise TranslationFileError("not_xlsx") from None
    # zipfile stops reading a member at its declared size, so the declared sizes bound it.
    unpacked = sum(member.file_size for member in members)
    if len(members) > MAX_XLSX_MEMBERS or unpacked > MAX_XLSX_UNPACKED_BYTES:
        raise TranslationFileError("too_large_unpacked")


def _read_rows(texts: SurveyTexts, rows: Any) -> Reading:
    header = next(rows, None)
    if not header or not isinstance(header[0], str) or header[0].strip() != CONTEXT_HEADER:
        raise TranslationFileError("bad_header")
    notices: list[Notice] = []
    columns: dict[int, str] = {}
    for index, name in enumerate(header[1:], start=1):
        if name is None or not str(name).strip():
            continue
        language = str(name).strip()
        if language in texts.languages and language not in columns.values():
            columns[index] = language
        else:
            notices.append(Notice("unknown_language", language=language))
    if not columns:
        raise TranslationFileError("no_language_column")
    entries = {e.context: e for e in texts.entries}
    changes: dict[tuple[str, str], Change] = {}
    seen: set[str] = set()
    for count, row in enumerate(rows, start=1):
        if count > MAX_XLSX_ROWS:
            raise TranslationFileError("too_many_rows")
        if not row or row[0] is None:
            continue
        context = _uncell(str(row[0]).strip())
        if not context:
            continue
        entry = entries.get(context)
        if entry is None:
            notices.append(Notice("unknown_context", context))
            continue
        if context in seen:
            notices.append(Notice("duplicate", context))
            continue
        seen.add(context)
        for index, language in columns.items():
            value = row[index] if index < len(row) else None
            if value is None or isinstance(value, bool):
                continue
            written = _uncell(_number_text(value) if isinstance(value, int | float) else str(value))
            if not written.strip():
                continue
            change = _change(entry, language, written)
            if change is not None:
                changes[context, language] = change
    return Reading("xlsx", tuple(columns.values()), list(changes.values()), notices)


def _number_text(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _change(entry: Entry, language: str, written: str) -> Change | None:
    new = _words_text(written) if entry.is_word_list else written
    old = entry.texts.get(language, "")
    return Change(entry.context, language, old, new) if new and new != old else None


def _words(text: str) -> list[str]:
    return [word.strip() for word in text.split(",") if word.strip()]


def _words_text(text: str) -> str:
    return WORD_SEPARATOR.join(_words(text))


# --- applying them -----------------------------------------------------------------------------


def apply_changes(text: str, changes: list[Change]) -> str:
    """The survey's YAML text with these texts changed, and nothing else: comments, order and
    quoting stay as written."""
    if not check_text("draft", text).is_yaml:
        raise SurveyEditError("not_yaml")
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 4096  # one text per line, as drafts are written
    yaml.allow_unicode = True
    _, indent, block_sequence_indent = load_yaml_guess_indent(text)
    if indent is not None:
        offset = block_sequence_indent or 0
        yaml.indent(mapping=max(indent - offset, 2), sequence=indent, offset=offset)
    document = yaml.load(text)
    if not isinstance(document, dict):
        raise SurveyEditError("not_yaml")
    for change in changes:
        _apply(document, change)
    stream = io.StringIO()
    yaml.dump(document, stream)
    return stream.getvalue()


def _apply(document: dict[Any, Any], change: Change) -> None:
    node, is_word_list = _node_at(document, change.context)
    if node is None:
        raise SurveyEditError("unknown_context", context=change.context)
    if is_word_list:
        node[change.language] = _like_list(node, change.language, _words(change.new))
    else:
        node[change.language] = _like_text(node, change.language, change.new)


def _node_at(document: dict[Any, Any], context: str) -> tuple[dict[Any, Any] | None, bool]:
    """The mapping of languages a context names, and whether it holds word lists."""
    parts = context.split(".")
    if context in TEXT_FIELDS or context == "keywords":
        node = document.get(context)
        return (node if isinstance(node, dict) else None), context == "keywords"
    if len(parts) < 3 or parts[0] != "questions":
        return None, False
    question = _questions(document).get(parts[1])
    if question is None:
        return None, False
    if len(parts) == 3 and parts[2] in ("text", "wrong_units"):
        node = question.get(parts[2])
        return (node if isinstance(node, dict) else None), parts[2] == "wrong_units"
    if len(parts) >= 5 and parts[2] == "choices" and parts[-1] in ("label", "match"):
        choice = _choices(question).get(".".join(parts[3:-1]))
        node = choice.get(parts[-1]) if choice is not None else None
        return (node if isinstance(node, dict) else None), parts[-1] == "match"
    return None, False


def _like_text(node: dict[Any, Any], language: str, text: str) -> str:
    """The new text quoted as the old one was, or as its neighbours are."""
    examples = [node.get(language), *node.values()]
    style = next((type(v) for v in examples if isinstance(v, ScalarString)), None)
    return style(text) if style is not None else text


def _like_list(node: dict[Any, Any], language: str, words: list[str]) -> CommentedSeq:
    examples = [node.get(language), *node.values()]
    model = next((v for v in examples if isinstance(v, CommentedSeq)), None)
    items = [w for w in (model or []) if isinstance(w, ScalarString)]
    style = type(items[0]) if items else None
    sequence = CommentedSeq([style(w) if style is not None else w for w in words])
    if model is not None and model.fa.flow_style():
        sequence.fa.set_flow_style()
    return sequence


# --- preview and save --------------------------------------------------------------------------


def preview_changes(
    session: Session, texts: SurveyTexts, reading: Reading, *, org_name: str
) -> Preview:
    """What the upload would change and every problem the draft would then have (those it
    brings marked new), with the SMS cost of the languages it changes. Nothing is saved."""
    new_text = apply_changes(texts.text, reading.changes)
    before = check_draft_text(session, texts.survey_id, texts.text, org_name=org_name)
    after = check_draft_text(session, texts.survey_id, new_text, org_name=org_name)
    known = {(p.path, p.message) for p in before.problems}
    problems = [PreviewProblem(p, (p.path, p.message) not in known) for p in after.problems]
    problems.sort(key=lambda p: (not p.is_new, p.problem.line))
    changed = {c.language for c in reading.changes}
    old_costs = {(c.message, c.language): c.segments for c in before.costs}
    costs = [
        CostChange(
            c.message,
            c.language,
            old_costs.get((c.message, c.language)),
            c.segments,
            c.budget,
            c.encoding,
        )
        for c in after.costs
        if c.language in changed
    ]
    return Preview(reading, texts.revision, problems, costs)


def encode_changes(changes: list[Change]) -> str:
    """The changes as the confirming form carries them."""
    return json.dumps([[c.context, c.language, c.new] for c in changes], ensure_ascii=False)


def decode_changes(texts: SurveyTexts, encoded: str) -> list[Change]:
    """The confirming form's changes, against the survey's texts now (ValueError if garbled)."""
    data = json.loads(encoded)
    if not isinstance(data, list):
        raise ValueError("changes must be a list")
    entries = {e.context: e for e in texts.entries}
    changes = []
    for item in data:
        if not (
            isinstance(item, list) and len(item) == 3 and all(isinstance(v, str) for v in item)
        ):
            raise ValueError("each change is [context, language, text]")
        context, language, new = item
        if language not in texts.languages:
            raise ValueError(f"unknown language {language!r}")
        entry = entries.get(context)
        old = entry.texts.get(language, "") if entry is not None else ""
        changes.append(Change(context, language, old, new))
    return changes


def save_translations(
    session: Session,
    survey_id: str,
    changes: list[Change],
    *,
    revision: int,
    user_id: int | None,
    now: datetime,
) -> SurveyDraft:
    """Apply previewed changes to a web survey's draft; refused (StaleDraftError) when anyone
    saved it since `revision` was read, so nobody's edit is silently lost."""
    texts = survey_texts(session, survey_id)
    if not texts.is_web:
        raise SurveyEditError("read_only", survey_id=survey_id)
    if texts.revision != revision:
        raise StaleDraftError(texts.revision)
    new_text = apply_changes(texts.text, changes)
    return save_draft(
        session, survey_id, text=new_text, revision=revision, user_id=user_id, now=now
    )
