"""Canned replies for the inbox, per worker language: data beside the catalogs.

`locales/<lang>/canned_replies.yaml` holds a list of `replies` (id, label, text) and the text of
the WhatsApp reply template (`whatsapp_template`, the words of ENGAGE_WHATSAPP_REPLY_TEMPLATE as
Twilio approved them). Partners edit these files like the safety word lists; a file that breaks
the rules below stops the inbox from offering any canned reply in that language, and says why.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

CANNED_FILE = "canned_replies.yaml"
# A reply is one message: Twilio refuses a body longer than this (error 21617).
MAX_TEXT = 1600
_ID = re.compile(r"^[a-z0-9_]{1,40}$")


class CannedRepliesError(ValueError):
    """A canned replies file that cannot be used, with the file and what is wrong."""


@dataclass(frozen=True)
class CannedReply:
    id: str
    label: str
    text: str


@dataclass(frozen=True)
class CannedReplies:
    language: str
    replies: tuple[CannedReply, ...]
    whatsapp_template: str | None


def read_canned_replies(path: Path, language: str, *, name: str | None = None) -> CannedReplies:
    """One language's file, checked: CannedRepliesError names the file (as `name`, else its
    path) and the problem."""
    where = name or str(path)
    try:
        data: Any = YAML(typ="safe").load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, YAMLError) as exc:
        raise CannedRepliesError(f"{where}: cannot be read: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("replies"), list):
        raise CannedRepliesError(f"{where}: needs a list named replies")
    replies: list[CannedReply] = []
    for index, item in enumerate(data["replies"], start=1):
        if not isinstance(item, dict):
            raise CannedRepliesError(f"{where}: reply {index} is not a mapping")
        reply_id, label, text = item.get("id"), item.get("label"), item.get("text")
        if not isinstance(reply_id, str) or not _ID.match(reply_id):
            raise CannedRepliesError(f"{where}: reply {index} needs an id of a-z, 0-9 and _")
        if any(r.id == reply_id for r in replies):
            raise CannedRepliesError(f"{where}: reply id {reply_id} is used twice")
        for name, value in (("label", label), ("text", text)):
            if not isinstance(value, str) or not value.strip():
                raise CannedRepliesError(f"{where}: reply {reply_id} needs a {name}")
        assert isinstance(label, str) and isinstance(text, str)
        if len(text.strip()) > MAX_TEXT:
            raise CannedRepliesError(f"{where}: reply {reply_id} is over {MAX_TEXT} characters")
        replies.append(CannedReply(reply_id, label.strip(), text.strip()))
    template = data.get("whatsapp_template")
    if template is not None and (not isinstance(template, str) or len(template) > MAX_TEXT):
        raise CannedRepliesError(f"{where}: whatsapp_template must be a text")
    return CannedReplies(language, tuple(replies), template.strip() if template else None)


@dataclass(frozen=True)
class CannedLibrary:
    """Every language's canned replies, and the files that could not be used (with why)."""

    languages: dict[str, CannedReplies]
    problems: tuple[str, ...]


@cache
def load_canned_replies(locales_dir: str) -> CannedLibrary:
    """Every language's canned replies (read once per process). A broken file leaves its
    language without canned replies and is named in `problems`: the inbox works on."""
    found: dict[str, CannedReplies] = {}
    problems: list[str] = []
    root = Path(locales_dir)
    for path in sorted(root.glob(f"*/{CANNED_FILE}")):
        language = path.parent.name
        try:
            name = str(path.relative_to(root.parent))
            found[language] = read_canned_replies(path, language, name=name)
        except CannedRepliesError as exc:
            problems.append(str(exc))
    return CannedLibrary(found, tuple(problems))


def canned_for(locales_dir: str, language: str | None) -> list[CannedReplies]:
    """The canned replies to offer for a worker: their language's first (Spanish when it has
    none), then the other languages'."""
    every = load_canned_replies(locales_dir).languages
    first = language if language in every else "es"
    return sorted(every.values(), key=lambda c: (c.language != first, c.language))


def template_text(locales_dir: str, language: str | None) -> str | None:
    """The reply template's words in the worker's language (Spanish when it has none)."""
    every = load_canned_replies(locales_dir).languages
    for candidate in (language, "es"):
        canned = every.get(candidate or "")
        if canned is not None and canned.whatsapp_template:
            return canned.whatsapp_template
    return None
