"""A survey's recorded prompts: the audio files its file names, read from beside it, checked,
and named by their content (the system prompts are engage/survey/prompt_files.py's).

A recording is known by its content (`<sha256>.<ext>`): a survey version names the recordings
it was published with, a changed file makes a new version, and `GET /media/<name>` serves
exactly the bytes that version was checked with.
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engage.survey.audio import AudioInfo, UnreadableAudio, inspect_audio, prompt_problem
from engage.survey.phrases import Count, Phrase
from engage.survey.voice import MAX_PROMPT_BYTES

# The most audio Twilio sends with a message (other than images: 500 KB).
MAX_MESSAGE_AUDIO_BYTES = 500_000


@dataclass(frozen=True)
class Reference:
    """An audio file as a survey names it (relative to the survey's folder), and the line."""

    path: str
    line: int


@dataclass(frozen=True)
class Recording:
    name: str  # "<sha256>.<ext>": how it is served and how a version names it
    mimetype: str
    data: bytes = field(repr=False)


@dataclass
class Read:
    """What reading a survey's recordings found: each file by its path, and the problems."""

    files: dict[str, Recording] = field(default_factory=dict)
    problems: list[tuple[int, Phrase]] = field(default_factory=list)


def media_name(data: bytes, info: AudioInfo) -> str:
    return f"{hashlib.sha256(data).hexdigest()}.{info.extension}"


def inspect_file(path: Path) -> tuple[Recording | None, Phrase | None]:
    """Read and check one recording: at most MAX_PROMPT_BYTES, WAV or MP3, at most
    MAX_PROMPT_SECONDS long."""
    try:
        with path.open("rb") as file:
            data = file.read(MAX_PROMPT_BYTES + 1)
    except OSError as error:
        return None, Phrase(
            "cannot read '%(path)s': %(reason)s", path=str(path), reason=str(error.strerror)
        )
    if len(data) > MAX_PROMPT_BYTES:
        return None, Phrase(
            "'%(path)s' is larger than %(max)s bytes", path=str(path), max=Count(MAX_PROMPT_BYTES)
        )
    try:
        info = inspect_audio(data)
    except UnreadableAudio as error:
        # The library's reason, in English: a value, not a template.
        return None, Phrase(
            "'%(path)s' is not a WAV or MP3 recording: %(reason)s",
            path=str(path),
            reason=str(error),
        )
    problem = prompt_problem(info)
    if problem is not None:
        return None, Phrase(
            "'%(path)s' cannot be a prompt: %(reason)s", path=str(path), reason=problem
        )
    return Recording(media_name(data, info), info.mimetype, data), None


def read(references: Iterable[Reference], folder: Path) -> Read:
    """Read every recording a survey names, relative to its folder."""
    result = Read()
    for reference in references:
        if reference.path in result.files:
            continue
        recording, problem = inspect_file(folder / reference.path)
        if recording is not None and recording.mimetype == "audio/mpeg":
            # An MP3 also goes with the survey's WhatsApp messages, where Twilio takes less.
            if len(recording.data) > MAX_MESSAGE_AUDIO_BYTES:
                recording, problem = (
                    None,
                    Phrase(
                        "'%(path)s' is larger than %(max)s bytes, the most a WhatsApp message "
                        "carries: record it at a lower bit rate (32 kbit/s is enough for speech)",
                        path=reference.path,
                        max=Count(MAX_MESSAGE_AUDIO_BYTES),
                    ),
                )
        if problem is not None:
            result.problems.append((reference.line, _named(problem, reference.path)))
        elif recording is not None:
            result.files[reference.path] = recording
    return result


def _named(problem: Phrase, path: str) -> Phrase:
    """A problem with the path as the survey wrote it (never the machine's full path)."""
    params = dict(problem.params)
    params["path"] = path
    return Phrase(problem.template, **params)


def with_media_names(source: dict[str, Any], files: dict[str, Recording]) -> dict[str, Any]:
    """A survey's definition with each recording's path replaced by its media name."""
    named = copy.deepcopy(source)
    for prompts in (named.get("audio") or {}).values():
        for lang, path in prompts.items():
            prompts[lang] = files[path].name
    for question in named.get("questions") or ():
        for lang, path in (question.get("audio") or {}).items():
            question["audio"][lang] = files[path].name
    return named
