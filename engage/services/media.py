"""Recorded prompts, served to Twilio by their content: the system prompts shipped under
`locales/<lang>/audio/`, and the recordings of published survey versions (`media_files`).

Nothing else is ever served: a name that is neither is unknown (404), whatever is on disk.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from sqlalchemy import Connection, select
from sqlalchemy.orm import Session

from engage.db import insert_ignoring_conflicts, table_of, utcnow
from engage.models import MediaFile
from engage.survey.definition import Survey
from engage.survey.prompt_files import AUDIO_DIR, SYSTEM_PROMPT_EXTENSION
from engage.survey.voice import SYSTEM_PROMPTS

_media = table_of(MediaFile)
MIMETYPES = {"wav": "audio/wav", "mp3": "audio/mpeg"}


@dataclass(frozen=True)
class SystemAudio:
    """The shipped system prompts: by language and prompt, and by media name."""

    by_prompt: dict[tuple[str, str], str] = field(default_factory=dict)
    files: dict[str, Path] = field(default_factory=dict)

    def media(self, language: str, key: str) -> str | None:
        return self.by_prompt.get((language, key))


@lru_cache(maxsize=4)
def system_audio(locales_dir: str) -> SystemAudio:
    """Every system prompt recorded under `locales/<lang>/audio/` (read once per process)."""
    audio = SystemAudio()
    for path in sorted(Path(locales_dir).glob(f"*/{AUDIO_DIR}/*{SYSTEM_PROMPT_EXTENSION}")):
        key = path.stem
        if key not in SYSTEM_PROMPTS:
            continue
        name = f"{hashlib.sha256(path.read_bytes()).hexdigest()}.{path.suffix[1:]}"
        audio.by_prompt[(path.parent.parent.name, key)] = name
        audio.files[name] = path
    return audio


def store_recordings(session: Session, survey: Survey) -> int:
    """Keep a survey version's recordings for serving (those already kept are left alone)."""
    rows = [
        {
            "name": recording.name,
            "mimetype": recording.mimetype,
            "content": recording.data,
            "created_at": utcnow(),
        }
        for recording in survey.recordings.values()
    ]
    if rows:
        dialect = session.get_bind().dialect.name
        session.execute(insert_ignoring_conflicts(dialect, _media, "name"), rows)
    return len(rows)


def find_media(
    connection: Connection | Session, locales_dir: str, name: str
) -> tuple[bytes, str] | None:
    """A served file's bytes and type, by its name: a system prompt or a published recording."""
    extension = name.rpartition(".")[2]
    if extension not in MIMETYPES:
        return None
    path = system_audio(locales_dir).files.get(name)
    if path is not None:
        return path.read_bytes(), MIMETYPES[extension]
    row = connection.execute(
        select(_media.c.content, _media.c.mimetype).where(_media.c.name == name)
    ).first()
    return (bytes(row.content), row.mimetype) if row is not None else None
