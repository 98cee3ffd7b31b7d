"""What a recording is and how long it plays, read from its bytes. Pure: bytes in, info out.

A caller hears a recorded prompt through Twilio's `<Play>`, which plays WAV and MP3. What a file
is comes from its bytes, never its name: a WAV file whose samples are 8 or 16 bits (PCM, μ-law,
A-law) or an MP3 file is read; anything else is refused with the reason.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any

import mutagen
from mutagen import FileType
from mutagen.mp3 import MP3, MPEGInfo
from mutagen.wave import WAVE, WaveStreamInfo

from engage.survey.voice import MAX_PROMPT_BYTES, MAX_PROMPT_SECONDS

# The fewest bytes a WAV file holds before its samples: the RIFF, fmt and data headers.
_WAV_HEADER_BYTES = 44
# Samples of 8 bits (PCM, μ-law, A-law) or 16 (PCM). Other encodings (ADPCM, GSM, float,
# 24-bit) are not what a phone line carries, and their headers do not give the length the same
# way: a 20-second ADPCM file reads as a fraction of a second.
_WAV_SAMPLE_BITS = (8, 16)
_MIB = 1024 * 1024


@dataclass(frozen=True)
class AudioInfo:
    """A playable recording: its kind, the type it is served as, how long it plays, its size."""

    extension: str  # "wav" or "mp3"
    mimetype: str  # "audio/wav" or "audio/mpeg": what /media serves and <Play> accepts
    seconds: float
    size: int  # bytes


class UnreadableAudio(ValueError):
    """Bytes that are not a recording Twilio can play; str() says why in a few English words."""


def inspect_audio(data: bytes) -> AudioInfo:
    """The kind, length and size of a WAV or MP3 recording; UnreadableAudio for anything else."""
    if not data:
        raise UnreadableAudio("empty file")
    if data.startswith(b"RIFF"):
        return AudioInfo("wav", "audio/wav", _wav_seconds(data), len(data))
    return AudioInfo("mp3", "audio/mpeg", _mp3_seconds(data), len(data))


def _wav_seconds(data: bytes) -> float:
    stream: WaveStreamInfo = _stream_info(WAVE, data, "a damaged or truncated WAV header")
    bits = stream.bits_per_sample
    if bits not in _WAV_SAMPLE_BITS:
        raise UnreadableAudio(
            f"a WAV encoding other than PCM, μ-law or A-law ({bits} bits a sample): "
            "save it as 16-bit PCM"
        )
    # The header says how much audio follows; a copy or an upload that stopped early holds less,
    # and would play cut off.
    promised = round(stream.length * stream.bitrate / 8)
    if len(data) < _WAV_HEADER_BYTES + promised:
        raise UnreadableAudio("truncated: the file holds less audio than its header says")
    return _audible(stream.length)


def _mp3_seconds(data: bytes) -> float:
    # MP3 has no signature: mutagen looks for consecutive MPEG frames. Where it found too few to
    # be sure (`sketchy`), the bytes are some other thing that happens to hold a frame sync.
    stream: MPEGInfo = _stream_info(MP3, data, "not a WAV or MP3 file")
    if stream.sketchy:
        raise UnreadableAudio("not a WAV or MP3 file")
    return _audible(stream.length)


def _stream_info(kind: Callable[[IO[bytes]], FileType], data: bytes, refusal: str) -> Any:
    """What mutagen reads of the bytes as one kind of file (its StreamInfo), else the refusal."""
    try:
        return kind(io.BytesIO(data)).info
    except mutagen.MutagenError:
        raise UnreadableAudio(refusal) from None


def _audible(seconds: float) -> float:
    if seconds <= 0:
        raise UnreadableAudio("no audio in it (0 seconds)")
    return seconds


def prompt_problem(info: AudioInfo) -> str | None:
    """Why a playable recording cannot be a prompt (longer or larger than one may be), or None."""
    if info.seconds > MAX_PROMPT_SECONDS:
        return f"longer than {MAX_PROMPT_SECONDS} s ({info.seconds:.1f} s)"
    if info.size > MAX_PROMPT_BYTES:
        return f"larger than {MAX_PROMPT_BYTES // _MIB} MiB ({info.size / _MIB:.1f} MiB)"
    return None
