"""Prompts spoken by a machine: espeak-ng reads the words, sox makes the WAV a phone line plays.

For Spanish and English only, where a machine voice stands in until a person records the words
(Twilio's `<Say>` reads them anyway); a language Twilio does not speak is recorded by a native
speaker (docs/voice-prompts.md).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

# The espeak-ng voice of each language: Latin-American Spanish, as callers speak it.
VOICES = {"es": "es-419", "en": "en-us"}
TOOLS = ("espeak-ng", "sox")
# Words a minute: a little slower than espeak-ng's 175, as a phone line and a busy caller need.
_SPEED = "150"
# What a phone line carries: 8 kHz, one channel, 16-bit PCM.
_WAV_FORMAT = ["-r", "8000", "-c", "1", "-b", "16", "-e", "signed-integer"]
# sox's `silence`: from the start, drop everything quieter than 0.5% until 0.02 s of sound.
_TRIM_LEAD_IN = ["silence", "1", "0.02", "0.5%"]


def missing_tools() -> list[str]:
    """The programs rendering needs that are not on PATH."""
    return [tool for tool in TOOLS if shutil.which(tool) is None]


def render_words(words: str, language: str, path: Path) -> None:
    """Speak the words into a WAV file at `path`, written whole or not at all."""
    espeak, sox = (shutil.which(tool) or tool for tool in TOOLS)
    spoken = subprocess.run(  # noqa: S603 - fixed programs; the words go in on standard input
        [espeak, "-v", VOICES[language], "-s", _SPEED, "--stdin", "--stdout"],
        input=words.encode(),
        capture_output=True,
        check=True,
    ).stdout
    # Written beside the target and renamed: a run stopped halfway leaves no half a prompt.
    handle, partial = tempfile.mkstemp(suffix=".wav", dir=path.parent)
    os.close(handle)
    try:
        os.chmod(partial, 0o644)  # mkstemp makes it 0600; a prompt is read by the web server
        subprocess.run(  # noqa: S603 - fixed programs and arguments
            [sox, "-t", "wav", "-", *_WAV_FORMAT, partial, *_TRIM_LEAD_IN],
            input=spoken,
            capture_output=True,
            check=True,
        )
        os.replace(partial, path)
    finally:
        Path(partial).unlink(missing_ok=True)
