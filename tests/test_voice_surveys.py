"""Survey files offered by phone: `voice:`, `audio:`, the recordings' checks, and /media."""

from __future__ import annotations

import hashlib
import shutil
import wave
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import make_app
from twilio_helpers import twilio_overrides

from engage import db
from engage.cli import main
from engage.services.surveys import publish_surveys
from engage.survey.loader import check_file, check_text, load_surveys
from engage.survey.voice import system_prompt_keys

MIXTECO = """\
id: ndaa
title: {es: Su trabajo, mix: Tiñu}
languages: [es, mix]
keywords: {es: [NDAA], mix: [TINU]}
voice: true
audio:
  title: {mix: audio/title-mix.wav}
intro: {es: "Dos preguntas.", mix: "Uvi tu'un."}
questions:
  - id: ok
    type: yes_no
    text: {es: "¿Todo bien?", mix: "¿Va'a?"}
    audio: {mix: audio/ok-mix.wav}
  - id: state
    type: choice
    text: {es: "¿Dónde trabaja?", mix: "¿Ndenu?"}
    choices:
      - {value: CA, label: {es: California, mix: California}}
      - {value: FL, label: {es: Florida, mix: Florida}}
"""


def write_wav(path: Path, seconds: float = 1.0, rate: int = 8000) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(b"\x00\x01" * int(seconds * rate))
    return path


def mixteco_locales(tmp_path: Path) -> Path:
    """A locales folder with every system prompt recorded in Mixteco."""
    locales = tmp_path / "locales"
    for key in system_prompt_keys():
        write_wav(locales / "mix" / "audio" / f"{key}.wav", 0.5)
    return locales


def survey_folder(tmp_path: Path, text: str = MIXTECO, *recordings: str) -> Path:
    folder = tmp_path / "surveys"
    folder.mkdir(exist_ok=True)
    (folder / "ndaa.yaml").write_text(text, encoding="utf-8")
    for name in recordings:
        write_wav(folder / name)
    return folder / "ndaa.yaml"


def problems_of(checked) -> list[str]:
    return [str(p) for p in checked.problems]


def test_check_names_the_line_of_every_missing_mixteco_prompt(tmp_path):
    path = survey_folder(tmp_path, MIXTECO, "audio/title-mix.wav", "audio/ok-mix.wav")
    checked = check_file(path, locales_dir=mixteco_locales(tmp_path))
    assert checked.survey is None
    assert problems_of(checked) == [
        f"{path}:8: no recording in 'mix' for audio of intro: the survey is offered by phone in "
        "'mix', which Twilio cannot read aloud",
        f"{path}:14: no recording in 'mix' for audio of question 'state': the survey is offered "
        "by phone in 'mix', which Twilio cannot read aloud",
    ]


def test_engage_surveys_check_reports_the_missing_system_prompts_by_line(tmp_path):
    text = MIXTECO.replace(
        "audio:\n  title: {mix: audio/title-mix.wav}\n",
        "audio:\n  title: {mix: audio/title-mix.wav}\n  intro: {mix: audio/intro-mix.wav}\n",
    ).replace(
        "      - {value: FL, label: {es: Florida, mix: Florida}}\n",
        "      - {value: FL, label: {es: Florida, mix: Florida}}\n"
        "    audio: {mix: audio/state-mix.wav}\n",
    )
    path = survey_folder(
        tmp_path,
        text,
        "audio/title-mix.wav",
        "audio/intro-mix.wav",
        "audio/ok-mix.wav",
        "audio/state-mix.wav",
    )
    # The shipped locales have no Mixteco recordings: every system prompt is named.
    result = CliRunner().invoke(main, ["surveys", "check", str(path)])
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert len(lines) == 1, result.output
    assert lines[0].startswith(f"{path}:5: the survey is offered by phone in 'mix', which has no ")
    assert "consent" in lines[0] and "org_intro" in lines[0] and "press_9" in lines[0]
    # With them recorded, the survey is ready.
    checked = check_file(path, locales_dir=mixteco_locales(tmp_path))
    assert checked.problems == [] and checked.survey is not None
    assert checked.survey.voice == ("es", "mix")


def test_recordings_are_named_by_content_and_a_new_recording_is_a_new_version(tmp_path):
    text = MIXTECO.replace("voice: true", "voice: [es]")
    path = survey_folder(tmp_path, text, "audio/title-mix.wav", "audio/ok-mix.wav")
    first = check_file(path).survey
    assert first is not None
    data = (path.parent / "audio" / "ok-mix.wav").read_bytes()
    name = hashlib.sha256(data).hexdigest() + ".wav"
    assert first.question("ok").audio == {"mix": name}
    assert first.recordings[name].data == data and first.recordings[name].mimetype == "audio/wav"
    assert first.source["questions"][0]["audio"] == {"mix": name}
    write_wav(path.parent / "audio" / "ok-mix.wav", 2.0)
    second = check_file(path).survey
    assert second is not None and second.version != first.version


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("../secret.wav", "must be a path inside the survey's folder"),
        ("/etc/passwd.wav", "must be a path inside the survey's folder"),
        ("audio/ok-mix.ogg", "must be a .wav or .mp3 file"),
        ("audio/missing.wav", "cannot read 'audio/missing.wav'"),
        ("audio/text.wav", "'audio/text.wav' is not a WAV or MP3 recording"),
        ("audio/long.wav", "'audio/long.wav' cannot be a prompt: longer than 60 s"),
    ],
)
def test_a_bad_recording_is_named_with_its_line(tmp_path, value, problem):
    text = MIXTECO.replace("voice: true", "voice: [es]").replace("audio/ok-mix.wav", value)
    path = survey_folder(tmp_path, text, "audio/title-mix.wav")
    (path.parent / "audio" / "text.wav").write_text("RIFF but not really", encoding="utf-8")
    write_wav(path.parent / "audio" / "long.wav", 61.0)
    checked = check_file(path)
    assert checked.survey is None
    assert len(checked.problems) == 1, problems_of(checked)
    assert checked.problems[0].line == 13
    assert problem in checked.problems[0].message
    assert str(tmp_path) not in checked.problems[0].message


def test_voice_names_only_the_surveys_languages(tmp_path):
    text = MIXTECO.replace("voice: true", "voice: [es, fr]")
    path = survey_folder(tmp_path, text, "audio/title-mix.wav", "audio/ok-mix.wav")
    assert problems_of(check_file(path)) == [f"{path}:5: unknown language 'fr' in voice"]
    text = MIXTECO.replace("voice: true", "voice: sometimes")
    path = survey_folder(tmp_path, text, "audio/title-mix.wav", "audio/ok-mix.wav")
    assert "voice must be true, false or a list" in problems_of(check_file(path))[0]


def test_a_survey_written_on_the_pages_may_not_name_recordings():
    text = MIXTECO.replace("voice: true", "voice: [es]")
    checked = check_text("draft", text)
    assert checked.survey is None
    assert [p.line for p in checked.problems] == [7, 13]
    assert "recordings can be given only in survey files" in checked.problems[0].message
    # Read aloud in Spanish, it needs none.
    plain = text.replace("audio:\n  title: {mix: audio/title-mix.wav}\n", "").replace(
        "    audio: {mix: audio/ok-mix.wav}\n", ""
    )
    assert check_text("draft", plain).problems == []


@pytest.fixture
def media_app(request, tmp_path, database, fake_twilio):
    pg = request.getfixturevalue("pg_url") if database == "postgresql" else None
    app = make_app(tmp_path, database, pg, **twilio_overrides(fake_twilio, tmp_path))
    yield app
    app.extensions["engage.engine"].dispose()


def test_media_serves_published_recordings_only(media_app, tmp_path):
    text = MIXTECO.replace("voice: true", "voice: [es]")
    path = survey_folder(tmp_path, text, "audio/title-mix.wav", "audio/ok-mix.wav")
    unpublished = write_wav(path.parent / "audio" / "draft.wav", 3.0)
    surveys, problems = load_surveys([path])
    assert problems == []
    client = media_app.test_client()
    name = surveys[0].question("ok").audio["mix"]
    assert client.get(f"/media/{name}").status_code == 404  # not published yet
    with media_app.app_context(), db.transaction() as session:
        publish_surveys(session, surveys)
    response = client.get(f"/media/{name}")
    assert response.status_code == 200
    assert response.mimetype == "audio/wav"
    assert response.data == (path.parent / "audio" / "ok-mix.wav").read_bytes()
    assert "max-age=31536000" in response.headers["Cache-Control"]
    again = client.get(f"/media/{name}", headers={"If-None-Match": response.headers["ETag"]})
    assert again.status_code == 304
    draft = hashlib.sha256(unpublished.read_bytes()).hexdigest() + ".wav"
    for missing in (draft, "0" * 64 + ".wav", "../../etc/passwd", name.replace(".wav", ".ogg")):
        assert client.get(f"/media/{missing}").status_code == 404, missing


def test_media_serves_the_shipped_system_prompts(media_app):
    locales = Path(media_app.config["ENGAGE_LOCALES_DIR"])
    consent = locales / "es" / "audio" / "consent.wav"
    name = hashlib.sha256(consent.read_bytes()).hexdigest() + ".wav"
    response = media_app.test_client().get(f"/media/{name}")
    assert response.status_code == 200 and response.mimetype == "audio/wav"
    assert response.data == consent.read_bytes()


def test_a_folder_of_surveys_with_a_copied_recording_serves_one_file(media_app, tmp_path):
    text = MIXTECO.replace("voice: true", "voice: [es]")
    path = survey_folder(tmp_path, text, "audio/title-mix.wav")
    shutil.copy(path.parent / "audio" / "title-mix.wav", path.parent / "audio" / "ok-mix.wav")
    survey = check_file(path).survey
    assert survey is not None and len(survey.recordings) == 1


WHATSAPP_AUDIO = """\
id: escucha
title: {es: Escuche, en: Listen}
languages: [es, en]
keywords: {es: [ESCUCHA], en: [LISTEN]}
voice: true
intro: {es: "Una pregunta.", en: "One question."}
questions:
  - id: ok
    type: yes_no
    text: {es: "¿Todo bien?", en: "All well?"}
    audio: {es: audio/ok-es.mp3, en: audio/ok-en.wav}
"""
MP3 = Path(__file__).resolve().parent / "audio" / "tone-8k.mp3"


@pytest.fixture
def whatsapp_app(twilio_app, tmp_path):
    folder = tmp_path / "escucha"
    (folder / "audio").mkdir(parents=True)
    (folder / "escucha.yaml").write_text(WHATSAPP_AUDIO, encoding="utf-8")
    shutil.copy(MP3, folder / "audio" / "ok-es.mp3")
    write_wav(folder / "audio" / "ok-en.wav")
    app = twilio_app()
    surveys, problems = load_surveys([folder / "escucha.yaml"])
    assert problems == []
    with app.app_context(), db.transaction() as session:
        publish_surveys(session, surveys)
    return app, surveys[0]


def texted(app, fake_twilio, phone: str, *texts: str) -> list[dict]:
    from twilio_helpers import inbound_form, post_signed

    client = app.test_client()
    for text in texts:
        response = post_signed(
            client, fake_twilio.auth_token, "/twilio/messages", inbound_form(phone, text)
        )
        assert response.status_code == 200
    return [r.form for r in fake_twilio.requests]


def test_a_whatsapp_question_carries_its_mp3_recording(whatsapp_app, fake_twilio):
    app, survey = whatsapp_app
    forms = texted(app, fake_twilio, "whatsapp:+5215512345678", "ESCUCHA", "1")
    assert "MediaUrl" not in forms[0]  # the consent: no recording
    question = forms[-1]
    assert "¿Todo bien?" in question["Body"][0]
    name = survey.question("ok").audio["es"]
    assert question["MediaUrl"] == [f"https://engage.example.org/media/{name}"]
    served = app.test_client().get(f"/media/{name}")
    assert served.status_code == 200 and served.mimetype == "audio/mpeg"
    assert served.data == MP3.read_bytes()
    assert fake_twilio.violations == []


def test_sms_and_a_wav_recording_go_without_audio(whatsapp_app, fake_twilio):
    app, _survey = whatsapp_app
    forms = texted(app, fake_twilio, "+15551230009", "ESCUCHA", "1")
    assert "¿Todo bien?" in forms[-1]["Body"][0]
    assert all("MediaUrl" not in form for form in forms)
    # WhatsApp plays MP3, not WAV: the English question goes as text alone.
    forms = texted(app, fake_twilio, "whatsapp:+5215512345679", "LISTEN", "1")
    assert "All well?" in forms[-1]["Body"][0]
    assert "MediaUrl" not in forms[-1]


def test_an_mp3_too_large_for_a_whatsapp_message_is_refused(tmp_path):
    folder = tmp_path / "escucha"
    (folder / "audio").mkdir(parents=True)
    (folder / "escucha.yaml").write_text(WHATSAPP_AUDIO, encoding="utf-8")
    # A short MP3 with a large tag (as a cover picture would be): over 500,000 bytes.
    from mutagen.id3 import PRIV
    from mutagen.mp3 import MP3 as Mp3File

    big = folder / "audio" / "ok-es.mp3"
    shutil.copy(MP3, big)
    tagged = Mp3File(big)
    if tagged.tags is None:
        tagged.add_tags()
    tagged.tags.add(PRIV(owner="engage-test", data=b"\0" * 600_000))
    tagged.save()
    write_wav(folder / "audio" / "ok-en.wav")
    checked = check_file(folder / "escucha.yaml")
    assert checked.survey is None
    assert [p.line for p in checked.problems] == [11]
    assert "the most a WhatsApp message carries" in checked.problems[0].message


def test_by_phone_a_multi_question_has_at_most_nine_choices(tmp_path):
    choices = "".join(
        f"      - {{value: c{i}, label: {{es: Opción {i}, mix: Opción {i}}}}}\n" for i in range(10)
    )
    text = (
        MIXTECO.replace("voice: true", "voice: [es]")
        .replace("    type: choice\n", "    type: multi\n")
        .replace(
            "      - {value: CA, label: {es: California, mix: California}}\n"
            "      - {value: FL, label: {es: Florida, mix: Florida}}\n",
            choices,
        )
    )
    path = survey_folder(tmp_path, text, "audio/title-mix.wav", "audio/ok-mix.wav")
    problems = problems_of(check_file(path))
    assert problems == [
        f"{path}:17: question 'state' has 10 choices, but the survey is offered by phone, where "
        "a multi question takes one key per choice: at most 9"
    ]
    # Not by phone, ten are fine.
    path.write_text(text.replace("voice: [es]\n", ""), encoding="utf-8")
    assert problems_of(check_file(path)) == []


def test_a_language_twilio_does_not_speak_hears_its_recorded_system_prompts():
    from engage.survey.texts import SystemTexts
    from engage.survey.voice import PromptBook, VoiceTexts

    locales = Path(__file__).resolve().parents[1] / "locales"

    def recorded(language: str, key: str) -> str | None:
        return f"{language}-{key}.wav"  # every prompt recorded, in every language

    def book(language: str) -> PromptBook:
        texts = SystemTexts(locales, language, "Centro Campesino")
        return PromptBook(language, VoiceTexts(texts, lambda code: 4), recorded)

    consent = book("mix").system("consent")
    assert consent.media == "mix-consent.wav"
    assert consent.text.startswith("Le preguntamos sobre su trabajo")  # its words, for staff
    # Where Twilio speaks the language, <Say> reads it even with a recording there.
    spoken = book("es").system("consent")
    assert spoken.media is None and spoken.language == "es"
    org = book("es").system("org_intro")
    assert org.text == "Le llama Centro Campesino." and org.media is None
