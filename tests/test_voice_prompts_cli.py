"""`engage voice prompts LANG`: every system prompt's file, its state and the words to record;
exit status 1 when a caller would miss one, 2 when it cannot do what it was asked."""

from __future__ import annotations

import io
import re
import shutil
import wave
from pathlib import Path

import pytest
from click.testing import CliRunner

from engage.cli import main
from engage.survey.keywords import menu_number
from engage.survey.prompt_files import missing_system_prompts
from engage.survey.texts import SystemTexts
from engage.survey.voice import NAMES_ORG, SYSTEM_PROMPTS, VoiceTexts

LOCALES = Path(__file__).resolve().parent.parent / "locales"
ORG = "Centro Campesino"
HAS_SPEECH_TOOLS = all(shutil.which(tool) for tool in ("espeak-ng", "sox"))


def run(*args: str):
    return CliRunner().invoke(main, ["voice", "prompts", *args], env={"ENGAGE_ORG_NAME": ORG})


def states(output: str) -> dict[str, str]:
    """Each listed file's key and what the command says of it."""
    found = {}
    for line in output.splitlines():
        path, sep, state = line.partition(".wav: ")
        if sep and "/audio/" in path:
            found[path.rsplit("/", 1)[1]] = state
    return found


def catalogs_only(tmp_path: Path) -> Path:
    """A copy of the catalogs without a recording, to point the command at."""
    locales = tmp_path / "locales"
    shutil.copytree(LOCALES, locales, ignore=shutil.ignore_patterns("audio"))
    return locales


def silence_wav(seconds: float, rate: int = 8000) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(1)
        wav.setframerate(rate)
        wav.writeframes(b"\x80" * round(seconds * rate))
    return out.getvalue()


def record_all(locales: Path, language: str) -> Path:
    audio = locales / language / "audio"
    audio.mkdir(parents=True)
    for key in SYSTEM_PROMPTS:
        (audio / f"{key}.wav").write_bytes(silence_wav(1.5))
    return audio


def test_a_language_without_recordings_lists_every_prompt_missing_with_its_spanish_words(
    tmp_path,
):
    result = run("mix", "--locales-dir", str(catalogs_only(tmp_path)))
    assert result.exit_code == 1, result.output
    listed = states(result.output)
    assert list(listed) == list(SYSTEM_PROMPTS)
    assert all(state.startswith("missing") for state in listed.values()), listed
    # Mixteco has no catalog: the words are the Spanish ones, its menu key its own (4).
    spanish = VoiceTexts(SystemTexts(LOCALES, "es", ORG), lambda _code: menu_number("mix"))
    for key in SYSTEM_PROMPTS:
        assert f"    words: {spanish.prompt(key)}\n" in result.output, key
    assert "    words: Para español, oprima 4.\n" in result.output
    assert "    English: For English, press 4.\n" in result.output  # the template, mix's key
    assert "    words: Le llama Centro Campesino.\n" in result.output
    assert "    English: This call is from Centro Campesino.\n" in result.output
    # The prompt that names the organisation is the organisation's to record.
    assert listed["org_intro"].endswith("recorded by the organisation)")
    assert result.output.rstrip().endswith("0 of 30 present and playable, 30 failing")


def test_the_shipped_spanish_prompts_are_all_present():
    result = run("es")
    assert result.exit_code == 0, result.output
    listed = states(result.output)
    assert list(listed) == list(SYSTEM_PROMPTS)
    assert listed.pop("org_intro") == "read by <Say> with ENGAGE_ORG_NAME, not recorded"
    assert all(re.fullmatch(r"present, \d+\.\d s", state) for state in listed.values()), listed
    assert "    words: Le llama Centro Campesino.\n" in result.output
    assert "    English: This call is from Centro Campesino.\n" in result.output
    assert result.output.rstrip().endswith("29 of 30 present and playable, 0 failing")


def test_a_language_with_every_prompt_recorded_passes(tmp_path):
    locales = catalogs_only(tmp_path)
    record_all(locales, "mix")
    result = run("mix", "--locales-dir", str(locales))
    assert result.exit_code == 0, result.output
    assert set(states(result.output).values()) == {"present, 1.5 s"}


def test_a_bad_recording_is_named_with_its_problem(tmp_path):
    locales = catalogs_only(tmp_path)
    audio = record_all(locales, "mix")
    (audio / "consent.wav").write_text("Le preguntamos sobre su trabajo.")
    (audio / "help.wav").write_bytes(silence_wav(61))
    (audio / "keys.wav").write_bytes(silence_wav(2)[:3000])
    (audio / "press_4.wav").unlink()
    result = run("mix", "--locales-dir", str(locales))
    assert result.exit_code == 1, result.output
    listed = states(result.output)
    assert listed["consent"] == "unreadable: not a WAV or MP3 file"
    assert listed["help"] == "longer than 60 s (61.0 s)"
    assert listed["keys"] == "unreadable: truncated: the file holds less audio than its header says"
    assert listed["press_4"] == "missing"
    assert listed["goodbye"] == "present, 1.5 s"
    assert result.output.rstrip().endswith("26 of 30 present and playable, 4 failing")
    # `engage surveys check` refuses a phone survey in mix for the same four.
    failing = {key for key, state in listed.items() if not state.startswith("present")}
    assert set(missing_system_prompts(locales, "mix")) == failing


def test_where_twilio_speaks_a_missing_recording_is_read_and_a_bad_one_still_fails(tmp_path):
    locales = catalogs_only(tmp_path)
    missing = run("en", "--locales-dir", str(locales))
    assert missing.exit_code == 0, missing.output
    listed = states(missing.output)
    assert listed["consent"] == "missing (read by <Say>)"
    assert listed["org_intro"] == "read by <Say> with ENGAGE_ORG_NAME, not recorded"
    assert "English:" not in missing.output  # the words are English already
    # A file that is there is played instead of <Say>: a broken one is a caller's silence.
    audio = locales / "en" / "audio"
    audio.mkdir()
    (audio / "goodbye.wav").write_bytes(b"")
    broken = run("en", "--locales-dir", str(locales))
    assert broken.exit_code == 1, broken.output
    assert states(broken.output)["goodbye"] == "unreadable: empty file"


@pytest.mark.parametrize("language", ["../es", "ES", "e", "spanish"])
def test_only_a_language_code_is_taken(language):
    result = run(language)
    assert result.exit_code == 2
    assert "is not a language code" in result.output


def test_rendering_refuses_without_espeak_ng_and_sox(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # a PATH with neither program on it
    locales = catalogs_only(tmp_path)
    result = run("es", "--render-with", "espeak-ng", "--locales-dir", str(locales))
    assert result.exit_code == 2, result.output
    assert "needs espeak-ng and sox on PATH" in result.output
    assert not (locales / "es" / "audio").exists()


def test_rendering_refuses_a_language_a_native_speaker_records(tmp_path):
    locales = catalogs_only(tmp_path)
    result = run("mix", "--render-with", "espeak-ng", "--locales-dir", str(locales))
    assert result.exit_code == 2, result.output
    assert "mix is recorded by a native speaker" in result.output
    assert not (locales / "mix" / "audio").exists()


@pytest.mark.skipif(not HAS_SPEECH_TOOLS, reason="needs espeak-ng and sox")
def test_rendering_writes_each_missing_prompt_as_8_khz_mono_16_bit_wav(tmp_path):
    locales = catalogs_only(tmp_path)
    audio = locales / "en" / "audio"
    audio.mkdir()
    kept = silence_wav(3.0)
    (audio / "goodbye.wav").write_bytes(kept)
    result = run("en", "--render-with", "espeak-ng", "--locales-dir", str(locales))
    assert result.exit_code == 0, result.output
    listed = states(result.output)
    assert listed["goodbye"] == "present, 3.0 s"  # a recording that is there stays
    assert (audio / "goodbye.wav").read_bytes() == kept
    assert not (audio / "org_intro.wav").exists()  # named by <Say>, never rendered
    rendered = set(SYSTEM_PROMPTS) - NAMES_ORG - {"goodbye"}
    assert {p.stem for p in audio.iterdir()} == rendered | {"goodbye"}  # no partial file left
    for key in rendered:
        assert listed[key].endswith(" s, rendered now"), key
        with wave.open(str(audio / f"{key}.wav")) as wav:
            assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (8000, 1, 2)
            # The lead-in silence is trimmed: the first 20 ms already carry sound.
            lead_in = wav.readframes(160)
        assert (
            max(
                abs(int.from_bytes(lead_in[i : i + 2], "little", signed=True))
                for i in range(0, len(lead_in), 2)
            )
            > 150
        ), key
