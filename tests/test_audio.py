"""Recordings read from their bytes: WAV (PCM, μ-law, A-law) and MP3 are measured, everything
else is refused with its reason; a prompt longer or larger than the limits is named; the
Spanish and English system prompts shipped in locales/ are all there and all play.

The files under tests/audio/ are 440 Hz tones made with Debian's sox 14.4.2 and lame 3.100:
    sox -n -r 8000 -c 1 -e u-law tone-ulaw.wav synth 0.5 sine 440 gain -6
    sox -n -r 8000 -c 1 -e a-law tone-alaw.wav synth 0.5 sine 440 gain -6
    sox -n -r 8000 -c 1 -b 16 tone8k.wav synth 1 sine 440 gain -6
    lame -b 8 tone8k.wav tone-8k.mp3                    (MPEG-2.5, no tag)
    sox -n -r 22050 -c 1 -b 16 tone22k.wav synth 1 sine 440 gain -6
    lame -b 32 --tt tone --add-id3v2 tone22k.wav tone-22k-id3.mp3   (MPEG-2, an ID3v2 tag first)
"""

from __future__ import annotations

import io
import random
import shutil
import subprocess
import wave
from pathlib import Path

import pytest

from engage.survey.audio import AudioInfo, UnreadableAudio, inspect_audio, prompt_problem
from engage.survey.voice import MAX_PROMPT_BYTES, MAX_PROMPT_SECONDS, NAMES_ORG, SYSTEM_PROMPTS

FIXTURES = Path(__file__).resolve().parent / "audio"
LOCALES = Path(__file__).resolve().parent.parent / "locales"


def pcm_wav(seconds: float, rate: int = 8000, width: int = 2, channels: int = 1) -> bytes:
    """A WAV file of silence written by the standard library's `wave` (PCM)."""
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(channels)
        wav.setsampwidth(width)
        wav.setframerate(rate)
        wav.writeframes(b"\x00" * round(seconds * rate) * width * channels)
    return out.getvalue()


@pytest.mark.parametrize(
    ("rate", "width", "channels"), [(8000, 2, 1), (16000, 2, 1), (8000, 1, 1), (44100, 2, 2)]
)
def test_a_pcm_wav_is_measured_from_its_header(rate, width, channels):
    data = pcm_wav(2.5, rate=rate, width=width, channels=channels)
    assert inspect_audio(data) == AudioInfo("wav", "audio/wav", 2.5, len(data))


@pytest.mark.parametrize("name", ["tone-ulaw.wav", "tone-alaw.wav"])
def test_mu_law_and_a_law_wav_are_read_as_wav(name):
    data = (FIXTURES / name).read_bytes()
    info = inspect_audio(data)
    assert (info.extension, info.mimetype, info.size) == ("wav", "audio/wav", len(data))
    assert info.seconds == pytest.approx(0.5)


@pytest.mark.parametrize("name", ["tone-8k.mp3", "tone-22k-id3.mp3"])
def test_an_mp3_is_served_as_audio_mpeg_with_its_length(name):
    data = (FIXTURES / name).read_bytes()
    info = inspect_audio(data)
    assert (info.extension, info.mimetype, info.size) == ("mp3", "audio/mpeg", len(data))
    # An MP3 plays a little longer than its source: the encoder pads the last frame.
    assert info.seconds == pytest.approx(1.0, abs=0.2)


def test_the_bytes_decide_not_the_name(tmp_path):
    # The same bytes under a misleading name are still an MP3; inspect_audio never sees a name.
    misnamed = tmp_path / "prompt.wav"
    shutil.copyfile(FIXTURES / "tone-8k.mp3", misnamed)
    assert inspect_audio(misnamed.read_bytes()).extension == "mp3"


WAV = pcm_wav(1.0)
OGG = b"OggS\x00\x02" + bytes(20) + b"\x01\x1e\x01vorbis" + bytes(200)
FLAC = b"fLaC\x00\x00\x00\x22" + bytes(34) + bytes(200)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty file"),
        (random.Random(7).randbytes(4096), "not a WAV or MP3 file"),
        (b"Para Florida, oprima 1.\n" * 40, "not a WAV or MP3 file"),
        (OGG, "not a WAV or MP3 file"),
        (FLAC, "not a WAV or MP3 file"),
        (WAV[:30], "a damaged or truncated WAV header"),
        (WAV[:4], "a damaged or truncated WAV header"),
        (WAV[: len(WAV) // 2], "truncated: the file holds less audio than its header says"),
        (pcm_wav(0), "no audio in it (0 seconds)"),
        (pcm_wav(1.0, width=3), "a WAV encoding other than PCM, μ-law or A-law (24 bits"),
        ((FIXTURES / "tone-8k.mp3").read_bytes()[:4], "not a WAV or MP3 file"),
    ],
    ids=[
        "empty",
        "garbage",
        "text",
        "ogg",
        "flac",
        "header cut",
        "riff only",
        "samples cut",
        "no samples",
        "24-bit",
        "mp3 header cut",
    ],
)
def test_what_is_not_a_playable_wav_or_mp3_is_refused_with_its_reason(data, reason):
    with pytest.raises(UnreadableAudio) as refused:
        inspect_audio(data)
    assert str(refused.value).startswith(reason)


@pytest.mark.skipif(shutil.which("sox") is None, reason="sox makes the other encodings")
@pytest.mark.parametrize(
    ("encoding", "bits"), [(["-e", "ima-adpcm"], 4), (["-e", "floating-point", "-b", "32"], 32)]
)
def test_other_wav_encodings_are_refused_not_mismeasured(tmp_path, encoding, bits):
    # An ADPCM header gives a 3-second file as a few milliseconds: it is refused, not believed.
    path = tmp_path / "other.wav"
    subprocess.run(
        ["sox", "-n", "-r", "8000", "-c", "1", *encoding, str(path), "synth", "3", "sine", "440"],
        check=True,
    )
    with pytest.raises(UnreadableAudio, match=rf"\({bits} bits a sample\)"):
        inspect_audio(path.read_bytes())


def test_a_prompt_within_the_limits_has_no_problem():
    assert prompt_problem(inspect_audio(pcm_wav(MAX_PROMPT_SECONDS))) is None


def test_a_prompt_longer_than_the_limit_is_named():
    info = inspect_audio(pcm_wav(MAX_PROMPT_SECONDS + 1, width=1))
    assert info.size < MAX_PROMPT_BYTES
    assert prompt_problem(info) == f"longer than {MAX_PROMPT_SECONDS} s (61.0 s)"


def test_a_prompt_larger_than_the_limit_is_named():
    info = inspect_audio(pcm_wav(30, rate=48000, channels=2))
    assert info.seconds <= MAX_PROMPT_SECONDS
    assert prompt_problem(info) == "larger than 5 MiB (5.5 MiB)"


@pytest.mark.parametrize("language", ["es", "en"])
def test_every_shipped_system_prompt_is_an_8_khz_wav_within_the_limits(language):
    audio = LOCALES / language / "audio"
    # Each prompt but the one naming the organisation, which <Say> reads with its current name.
    keys = set(SYSTEM_PROMPTS) - NAMES_ORG
    assert sorted(p.name for p in audio.iterdir()) == sorted(f"{key}.wav" for key in keys)
    for key in keys:
        data = (audio / f"{key}.wav").read_bytes()
        info = inspect_audio(data)
        assert info.extension == "wav", key
        assert 0.5 < info.seconds <= MAX_PROMPT_SECONDS, key
        assert info.size <= MAX_PROMPT_BYTES, key
        assert prompt_problem(info) is None, key
        with wave.open(io.BytesIO(data)) as wav:
            assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (8000, 1, 2)
