"""The simulator's phone: a call to a survey offered by phone, by the keypad of the page, through
the same steps as a real call; nobody is called and the help line is never dialled."""

from __future__ import annotations

import re
import wave
from pathlib import Path

import pytest
from sqlalchemy import func, select

from engage import db
from engage.models import Answer, Call, Contact, Conversation, Message, VoiceNote
from engage.services.simulator import SimulatorError, pressed_for
from engage.services.surveys import publish_surveys
from engage.services.voice import Pressed
from engage.survey.loader import load_surveys
from tests.conftest import SHIPPED_SURVEYS, TEST_SURVEYS, publish
from tests.readback import answers
from tests.test_simulator import DRAFT, Phone, add_draft, page_token
from tests.test_web_access import sign_in

URL = "/staff/simulator/call"
VOICE_SURVEYS = Path(__file__).resolve().parent / "voice"
HOTLINE = "+18883737888"
REFUSED = "Esta encuesta no se ofrece por teléfono (voice:)"


class Handset:
    """A staff member at the simulator's phone: one session, one simulated caller."""

    def __init__(self, client, session: str = "call-1", **options) -> None:
        self.client = client
        self.token = page_token(client)
        self.session = session
        self.options = options

    def post(self, action: str, digits: str = "", **extra):
        payload = {
            "session": self.session,
            "action": action,
            "digits": digits,
            **self.options,
            **extra,
        }
        return self.client.post(URL, json=payload, headers={"X-CSRFToken": self.token})

    def act(self, action: str, digits: str = "") -> dict:
        response = self.post(action, digits)
        assert response.status_code == 200, response.get_data(as_text=True)
        return response.get_json()

    def call(self) -> dict:
        return self.act("start")

    def press(self, keys: str) -> dict:
        """Keys as the keypad sends them: one key, or the keys before the # (without it)."""
        return self.act("keys", keys)


def heard(screen: dict) -> str:
    return " ".join(prompt["text"] for prompt in screen["prompts"])


def handset(web_app, session: str = "call-1", role: str = "staff", **options) -> Handset:
    """The phone of a signed-in person, calling `llamada` unless another survey is chosen (the
    shipped survey is offered by phone too: with none chosen, the call offers a menu)."""
    options.setdefault("survey", "llamada")
    client = web_app.test_client()
    assert sign_in(client, role).status_code == 302
    return Handset(client, session, **options)


@pytest.fixture
def phone_app(web_app):
    """The simulator's app with the voice test survey published too (`llamada`, es and en)."""
    publish(web_app, [SHIPPED_SURVEYS, TEST_SURVEYS, VOICE_SURVEYS])
    return web_app


def count(app, model, *where) -> int:
    with app.app_context():
        return db.session().scalar(select(func.count()).select_from(model).where(*where))


def to_the_first_question(phone: Handset) -> dict:
    phone.call()
    phone.press("1")  # Español
    return phone.press("1")  # I take part


# -- a whole survey --------------------------------------------------------------------------


def test_a_whole_survey_by_keypad_in_spanish(phone_app):
    phone = handset(phone_app)
    screen = phone.call()
    assert [p["text"] for p in screen["prompts"]] == [
        "Para español, oprima 1.",
        "For English, press 2.",
    ]
    assert screen["waits_for"] == "key" and screen["help_line"] is None
    assert screen["state"] is None  # nobody has pressed anything yet

    screen = phone.press("1")
    assert "Le llama Centro Campesino." in heard(screen)
    assert screen["waits_for"] == "key"
    assert screen["state"]["waiting_for"] == "el consentimiento (1 sí, 2 no)"

    screen = phone.press("1")
    text = heard(screen)
    assert "Son cinco preguntas cortas." in text
    assert "¿En qué estado trabaja? Para California, oprima 1. Para Florida, oprima 2." in text
    assert screen["waits_for"] == "key"
    assert screen["state"]["consent"] == "dado"

    screen = phone.press("2")  # Florida
    assert heard(screen).startswith("¿Le pagan a tiempo?")
    screen = phone.press("1")  # yes
    assert heard(screen).startswith("¿Cuántas horas trabajó ayer?")
    assert screen["waits_for"] == "keys"
    screen = phone.press("12")  # ended by #
    assert "Para Sin agua, oprima 1." in heard(screen)
    assert screen["waits_for"] == "keys"
    screen = phone.press("12")  # water and shade
    assert heard(screen).startswith("¿Algo más que quiera contarnos?")
    assert screen["waits_for"] == "voice_note"

    screen = phone.act("voice_note")
    assert heard(screen).startswith("Gracias por contestar.")
    assert screen["waits_for"] == "key"  # 9 never to be called again
    screen = phone.act("timeout")
    assert screen["prompts"] == [] and screen["waits_for"] == "end"

    assert answers(phone_app) == {
        "state": ("answered", "FL"),
        "paid_on_time": ("answered", "yes"),
        "hours": ("answered", 12),
        "problems": ("answered", ["water", "shade"]),
        "comments": ("answered", None),  # the text is stored encrypted, as {"c": …}
    }
    with phone_app.app_context(), db.transaction() as session:
        note = session.scalars(select(VoiceNote)).one()
        assert note.question_id == "comments" and note.seconds == 8
        assert re.fullmatch(r"RE0{32}-[0-9a-f]{16}", note.sid)
        conversation = session.scalars(select(Conversation)).one()
        assert (conversation.status, conversation.channel) == ("completed", "voice")
        assert conversation.is_simulated
        contact = session.scalars(select(Contact)).one()
        assert contact.is_simulated and contact.language == "es"
        assert session.scalars(select(Call)).one().is_simulated
        assert not session.scalars(select(Message).where(Message.direction == "out")).all()
    # The call has ended: a key now is refused until the next call.
    refused = phone.post("keys", "1")
    assert refused.status_code == 409 and refused.get_json()["error"] == "no_call"


def test_a_number_is_ended_by_pound_and_a_lone_pound_skips(phone_app):
    phone = handset(phone_app)
    to_the_first_question(phone)
    phone.press("3")
    screen = phone.press("2")
    assert screen["waits_for"] == "keys"
    screen = phone.press("30")  # more than 24: not understood, the question again
    assert heard(screen).startswith("No entendimos esa respuesta. ¿Cuántas horas")
    screen = phone.press("8")
    assert heard(screen).startswith("¿Qué problemas tuvo?")
    screen = phone.press("")  # # alone
    assert heard(screen).startswith("¿Algo más que quiera contarnos?")
    screen = phone.act("silence")  # nothing said after the tone: skipped
    assert heard(screen).startswith("Gracias por contestar.")
    assert answers(phone_app) == {
        "state": ("answered", "other"),
        "paid_on_time": ("answered", "no"),
        "hours": ("answered", 8),
        "problems": ("skipped", None),
        "comments": ("skipped", None),
    }
    assert count(phone_app, VoiceNote) == 0


def test_keys_left_before_the_timeout_are_sent_as_twilio_sends_them(phone_app):
    phone = handset(phone_app)
    to_the_first_question(phone)
    phone.press("1")
    phone.press("1")
    screen = phone.act("timeout", "9")  # 9 keyed, no #
    assert heard(screen).startswith("¿Qué problemas tuvo?")
    screen = phone.act("timeout")  # nothing: a miss, the question again
    assert heard(screen).startswith("No escuchamos una respuesta. ¿Qué problemas tuvo?")
    assert answers(phone_app)["hours"] == ("answered", 9)


def test_star_repeats_the_question_and_records_nothing(phone_app):
    phone = handset(phone_app)
    first = to_the_first_question(phone)
    again = phone.press("*")
    assert heard(again).startswith("¿En qué estado trabaja?")
    assert "Son cinco preguntas" in heard(first) and "Son cinco preguntas" not in heard(again)
    assert again["waits_for"] == "key"
    assert answers(phone_app) == {}
    phone.press("3")
    assert answers(phone_app) == {"state": ("answered", "other")}


def test_zero_then_zero_shows_the_help_line_and_dials_nobody(phone_app):
    phone = handset(phone_app)
    to_the_first_question(phone)
    screen = phone.press("0")
    assert "1 8 8 8, 3 7 3, 7 8 8 8" in heard(screen)
    assert screen["waits_for"] == "key"
    screen = phone.press("0")
    assert heard(screen) == "Le comunicamos con la línea de ayuda."
    assert screen["waits_for"] == "help_line" and screen["help_line"] == HOTLINE
    # While "connected", the keypad sends nothing: only the end of the help line's call.
    refused = phone.post("keys", "1")
    assert refused.status_code == 409 and refused.get_json()["error"] == "wrong_action"
    screen = phone.act("after_dial")
    assert heard(screen).startswith("¿En qué estado trabaja?")
    assert screen["waits_for"] == "key"
    assert answers(phone_app) == {}
    with phone_app.app_context(), db.transaction() as session:
        calls = session.scalars(select(Call)).all()
        assert len(calls) == 1 and calls[0].is_simulated and calls[0].sid is None
        assert not session.scalars(select(Message).where(Message.direction == "out")).all()


def test_a_survey_begun_by_text_goes_on_by_phone(phone_app):
    client = phone_app.test_client()
    sign_in(client, "staff")
    texts = Phone(client, "shared")
    assert "Centro Campesino" in texts.send("LLAMADA")[0]
    assert texts.send("1")[0].startswith("Son cinco preguntas cortas.")
    phone = Handset(client, "shared")
    screen = phone.call()
    assert heard(screen).startswith("Bienvenido otra vez. Seguimos donde se quedó.")
    assert "¿En qué estado trabaja?" in heard(screen)
    phone.press("2")
    # …and by text again: the same worker, at the next question.
    assert texts.send("1")[0].startswith("¿Cuántas horas trabajó ayer?")
    assert count(phone_app, Contact) == 1
    assert answers(phone_app) == {
        "state": ("answered", "FL"),
        "paid_on_time": ("answered", "yes"),
    }


def test_hang_up_and_a_new_session_leave_no_call_to_press_keys_in(phone_app):
    phone = handset(phone_app)
    to_the_first_question(phone)
    screen = phone.act("hang_up")
    assert screen["prompts"] == [] and screen["waits_for"] == "end"
    assert phone.post("keys", "1").get_json()["error"] == "no_call"
    # Calling again, the same worker is welcomed back where it stopped.
    assert heard(phone.call()).startswith("Bienvenido otra vez.")
    # A reset is a new session: no call yet, and a new worker when it calls.
    reset = Handset(phone.client, "call-2", survey="llamada")
    refused = reset.post("keys", "1")
    assert refused.status_code == 409
    assert refused.get_json()["message"] == "No hay ninguna llamada en curso: oprima Llamar."
    assert heard(reset.call()).startswith("Para español, oprima 1.")
    assert "Le llama Centro Campesino." in heard(reset.press("1"))
    assert count(phone_app, Contact) == 2


def test_a_checked_draft_offered_by_phone_runs_alone(phone_app):
    add_draft(
        phone_app, DRAFT.replace("languages: [es, en]\n", "languages: [es, en]\nvoice: true\n")
    )
    phone = handset(phone_app, survey="water-check", draft=True)
    assert heard(phone.call()).startswith("Para español, oprima 1.")
    phone.press("1")
    screen = phone.press("1")
    assert "¿De dónde toma agua? Para Llave, oprima 1." in heard(screen)
    assert "Son cinco preguntas" not in heard(screen)  # the published survey is not offered
    phone.press("2")
    with phone_app.app_context():
        survey = db.session().scalar(select(Answer.survey_id))
    assert survey == "water-check"


# -- refused -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "code"),
    [({"survey": "housing-check"}, 409), ({"survey": "water-check", "draft": True}, 409)],
)
def test_a_survey_not_offered_by_phone_is_refused_with_the_reason(phone_app, options, code):
    add_draft(phone_app)  # water-check, without voice:
    phone = handset(phone_app, **options)
    response = phone.post("start")
    assert response.status_code == code
    assert response.get_json()["error"] == "no_voice"
    assert response.get_json()["message"].startswith(REFUSED)
    assert count(phone_app, Call) == 0
    # The page says so instead of the keypad for such a survey (its script shows one or the
    # other): each survey says whether it is offered by phone.
    page = phone.client.get("/staff/simulator").get_data(as_text=True)
    assert re.search(r'<option value="housing-check" data-draft="0"\s+data-voice="0"', page)
    assert re.search(r'<option value="llamada" data-draft="0"\s+data-voice="1"', page)
    assert REFUSED in page


def test_anonymous_gets_401_the_policy_role_403_and_a_missing_csrf_token_400(phone_app):
    anonymous = phone_app.test_client()
    login = anonymous.get("/login").get_data(as_text=True)
    token = re.search(r'<meta name="csrf-token" content="([^"]+)"', login).group(1)
    payload = {"session": "s", "action": "start"}
    assert anonymous.post(URL, json=payload, headers={"X-CSRFToken": token}).status_code == 401
    policy = phone_app.test_client()
    sign_in(policy, "policy")
    results = policy.get("/results").get_data(as_text=True)
    token = re.search(r'<meta name="csrf-token" content="([^"]+)"', results).group(1)
    assert policy.post(URL, json=payload, headers={"X-CSRFToken": token}).status_code == 403
    phone = handset(phone_app)
    assert phone.client.post(URL, json=payload).status_code == 400
    forged = phone.client.post(URL, json=payload, headers={"X-CSRFToken": "forged"})
    assert forged.status_code == 400
    assert count(phone_app, Call) == 0
    assert phone.post("start").status_code == 200


@pytest.mark.parametrize(
    "payload",
    [
        {"session": "s", "action": "dance"},
        {"session": "s"},
        {"session": "s", "action": "keys", "digits": "1a"},
        {"session": "s", "action": "keys", "digits": 1},
        {"session": "s", "action": "keys", "digits": "1" * 21},
        {"session": "", "action": "start"},
        {"session": "s", "action": "start", "draft": True},
    ],
)
def test_what_the_call_post_refuses(phone_app, payload):
    phone = handset(phone_app)
    response = phone.client.post(URL, json=payload, headers={"X-CSRFToken": phone.token})
    assert response.status_code == 400, response.get_data(as_text=True)
    assert response.get_json()["error"] == "bad_request"
    assert count(phone_app, Call) == 0


@pytest.mark.parametrize(
    ("action", "digits", "waiting"),
    [
        ("voice_note", "", "key"),
        ("silence", "", "keys"),
        ("after_dial", "", "key"),
        ("keys", "12", "key"),
        ("keys", "1#", "keys"),
        ("keys", "1", "voice_note"),
        ("timeout", "1", "key"),
        ("keys", "1", "end"),
    ],
)
def test_an_action_the_screen_does_not_wait_for_is_refused(action, digits, waiting):
    with pytest.raises(SimulatorError) as refused:
        pressed_for(action, digits, waiting)
    assert refused.value.code == "wrong_action"


@pytest.mark.parametrize(
    ("action", "digits", "waiting", "pressed"),
    [
        ("keys", "#", "key", Pressed(digits="#")),
        ("keys", "", "keys", Pressed(digits="", finished_on_key="#")),
        ("keys", "1*3", "keys", Pressed(digits="1*3", finished_on_key="#")),
        ("timeout", "", "key", Pressed()),
        ("timeout", "12", "keys", Pressed(digits="12")),
        ("silence", "", "voice_note", Pressed(after="record")),
        ("after_dial", "", "help_line", Pressed(after="dial")),
    ],
)
def test_each_action_is_what_twilio_would_send(action, digits, waiting, pressed):
    assert pressed_for(action, digits, waiting) == pressed
    note = pressed_for("voice_note", "", "voice_note")
    assert note.recording_url is None and note.recording_seconds == 8
    assert note.recording_sid != pressed_for("voice_note", "", "voice_note").recording_sid


# -- recordings ------------------------------------------------------------------------------

RECORDED = """\
id: grabada
title: {es: Una pregunta grabada}
languages: [es]
keywords: {es: [GRABADA]}
voice: true
questions:
  - id: ok
    type: yes_no
    text: {es: "¿Todo bien en el trabajo?"}
    audio: {es: audio/q.wav}
"""


def test_a_recorded_prompt_comes_with_the_address_it_plays_from(web_app, tmp_path):
    path = tmp_path / "surveys" / "grabada.yaml"
    (path.parent / "audio").mkdir(parents=True)
    path.write_text(RECORDED, encoding="utf-8")
    with wave.open(str(path.parent / "audio" / "q.wav"), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(b"\x00\x01" * 8000)
    surveys, problems = load_surveys([path])
    assert problems == []
    with web_app.app_context(), db.transaction() as session:
        publish_surveys(session, surveys)
    name = surveys[0].question("ok").audio["es"]

    phone = handset(web_app, survey="grabada")
    consent = phone.call()  # the one survey by phone, in its one language: the consent
    assert all(p["audio"] is None for p in consent["prompts"])  # read by <Say> in Spanish
    screen = phone.press("1")
    question = next(p for p in screen["prompts"] if p["text"] == "¿Todo bien en el trabajo?")
    assert question["audio"] == f"/media/{name}"
    keys = next(p for p in screen["prompts"] if p["text"] == "Oprima 1 para sí, o 2 para no.")
    assert keys["audio"] is None
    played = phone.client.get(question["audio"])
    assert played.status_code == 200 and played.mimetype == "audio/wav"
    assert played.data == (path.parent / "audio" / "q.wav").read_bytes()


def test_markup_in_a_prompt_comes_back_escaped(phone_app):
    hostile = DRAFT.replace("languages: [es, en]\n", "languages: [es, en]\nvoice: true\n").replace(
        "¿De dónde toma agua?", "<script>alert('es')</script> & ¿agua?"
    )
    add_draft(phone_app, hostile)
    phone = handset(phone_app, survey="water-check", draft=True)
    phone.call()
    phone.press("1")
    response = phone.post("keys", "1")
    raw = response.get_data(as_text=True)
    assert "<" not in raw and ">" not in raw and "&" not in raw
    assert "<script>alert('es')</script> & ¿agua? Para Llave" in heard(response.get_json())
