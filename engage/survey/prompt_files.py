"""The recorded system prompts of a language: `locales/<lang>/audio/<key>.wav`, one a key of
`voice.SYSTEM_PROMPTS`, and whether each is there and can be played.

Where Twilio speaks the language, a caller hears the prompts read by `<Say>` (its voices beat a
machine's recording; the shipped Spanish and English recordings are the reference set, and the
staff simulator plays them), and the prompts that name the organisation are never recorded.
Elsewhere every prompt must be recorded. A file that is there must play, in any language.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from engage.survey import voice
from engage.survey.audio import AudioInfo, UnreadableAudio, inspect_audio, prompt_problem

AUDIO_DIR = "audio"
SYSTEM_PROMPT_EXTENSION = ".wav"


def system_prompt_path(locales_dir: Path, language: str, key: str) -> Path:
    """Where the recording of one system prompt lives."""
    return locales_dir / language / AUDIO_DIR / f"{key}{SYSTEM_PROMPT_EXTENSION}"


@dataclass(frozen=True)
class PromptFile:
    """One system prompt's recording in one language, as it stands."""

    key: str
    path: Path
    is_said: bool  # read by <Say> with the configured organisation name: never recorded
    is_required: bool  # the language has no <Say> voice: the caller hears only the recording
    is_present: bool
    info: AudioInfo | None  # present and playable
    problem: str | None  # "missing", "unreadable: …", or what keeps it from being a prompt

    @property
    def fails(self) -> bool:
        """Whether a caller would hear nothing, or a broken file, in its place."""
        return self.problem is not None and (self.is_required or self.is_present)


def check_prompt_files(locales_dir: Path, language: str) -> list[PromptFile]:
    """Every system prompt of a language, in SYSTEM_PROMPTS order, with its file's state."""
    required = set(voice.recorded_keys(language))
    said = voice.NAMES_ORG if voice.is_spoken_by_twilio(language) else frozenset()
    return [
        _check(system_prompt_path(locales_dir, language, key), key, key in said, key in required)
        for key in voice.system_prompt_keys()
    ]


def _check(path: Path, key: str, is_said: bool, is_required: bool) -> PromptFile:
    info, problem = None, None
    is_present = path.is_file()
    if is_said:
        pass  # a file here is never played
    elif not is_present:
        problem = "missing"
    else:
        try:
            info = inspect_audio(path.read_bytes())
        except UnreadableAudio as exc:
            problem = f"unreadable: {exc}"
        else:
            problem = prompt_problem(info)
    return PromptFile(key, path, is_said, is_required, is_present, info, problem)


def missing_system_prompts(locales_dir: Path, language: str) -> list[str]:
    """The system prompts a caller in this language would not hear: required and missing, or
    unplayable."""
    return [f.key for f in check_prompt_files(locales_dir, language) if f.is_required and f.fails]
