"""Calls: a test caller posts signed voice webhooks, follows the TwiML, presses keys and checks
what it hears and what is stored."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select
from twilio_helpers import OUR_NUMBER, inbound_form, post_signed
from voice_caller import Caller, Heard

from engage import db
from engage.models import Call, CallStep, Contact, Conversation, Message, VoiceNote
from tests.readback import answers

HOTLINE = "+18883737888"


@pytest.fixture
def caller(voice_app, fake_twilio):
    def make(phone: str = "+15551230001") -> Caller:
        return Caller(voice_app.test_client(), fake_twilio.auth_token, phone)

    return make


def to_the_first_question(worker: Caller) -> Heard:
    """Call, pick Español and take part: what is heard then (the intro and the first question)."""
    worker.call()
    worker.press("1")  # Español
    return worker.press("1")  # I take part


def to_the_voice_note(worker: Caller) -> None:
    """Call, and answer every question before the last (a voice note) by keypad."""
    to_the_first_question(worker)
    for keys in ("1", "1"):  # California, yes
        worker.press(keys)
    worker.press("8", finished_on_key="#")
    worker.press("3", finished_on_key="#")


def count(app, model) -> int:
    with app.app_context(), db.transaction() as session:
        return session.scalar(select(func.count()).select_from(model))


def test_a_whole_survey_in_spanish_by_keypad(voice_app, caller):
    worker = caller()
    heard = worker.call()
    # A new caller: the language menu, each option in its own language.
    assert "Para español, oprima 1." in heard.says
    assert "For English, press 2." in heard.says
    assert heard.gather.attrib["numDigits"] == "1"

    heard = worker.press("1")
    assert "Le llama Centro Campesino." in heard.says
    assert heard.gather is not None

    heard = worker.press("1")  # yes, I take part
    text = heard.text
    assert "Son cinco preguntas cortas." in text
    assert "¿En qué estado trabaja? Para California, oprima 1. Para Florida, oprima 2." in text
    assert heard.gather.attrib["numDigits"] == "1"

    heard = worker.press("2")  # Florida
    assert "¿Le pagan a tiempo?" in heard.text

    heard = worker.press("1")  # yes
    assert "¿Cuántas horas trabajó ayer?" in heard.text
    gather = heard.gather
    assert "numDigits" not in gather.attrib and gather.attrib["finishOnKey"] == "#"

    heard = worker.press("12", finished_on_key="#")
    assert "Para Sin agua, oprima 1." in heard.text
    heard = worker.press("12", finished_on_key="#")  # water and shade
    assert "¿Algo más que quiera contarnos?" in heard.text
    assert heard.record is not None and heard.record.attrib["maxLength"] == "60"

    heard = worker.leave_voice_note(seconds=9)
    assert "Gracias por contestar." in heard.text
    assert heard.gather.attrib["numDigits"] == "1"  # 9 never to be called again
    heard = worker.wait()
    assert heard.hangs_up

    assert answers(voice_app) == {
        "state": ("answered", "FL"),
        "paid_on_time": ("answered", "yes"),
        "hours": ("answered", 12),
        "problems": ("answered", ["water", "shade"]),
        "comments": ("answered", None),  # the text is stored encrypted, as {"c": …}
    }
    with voice_app.app_context(), db.transaction() as session:
        note = session.scalars(select(VoiceNote)).one()
        assert (note.sid, note.seconds, note.question_id) == (
            worker.last_recording,
            9,
            "comments",
        )
        conversation = session.scalars(select(Conversation)).one()
        assert (conversation.status, conversation.channel, conversation.language) == (
            "completed",
            "voice",
            "es",
        )
        contact = session.scalars(select(Contact)).one()
        assert contact.language == "es" and contact.has_consented
        # No message is ever sent for a call: what the caller heard was spoken.
        assert not session.scalars(select(Message).where(Message.direction == "out")).all()


def test_star_repeats_the_prompt_and_records_nothing(voice_app, caller):
    worker = caller()
    first = to_the_first_question(worker)
    again = worker.press("*")
    assert "¿En qué estado trabaja?" in again.text
    assert "Son cinco preguntas" not in again.text
    assert again.gather.attrib["action"] != first.gather.attrib["action"]
    assert answers(voice_app) == {}
    worker.press("3")
    assert answers(voice_app) == {"state": ("answered", "other")}


def test_zero_gives_help_and_a_second_zero_connects_to_the_help_line(voice_app, caller):
    worker = caller()
    to_the_first_question(worker)
    heard = worker.press("0")
    assert any("1 8 8 8, 3 7 3, 7 8 8 8" in s for s in heard.says), heard.twiml
    assert "Centro Campesino" not in heard.text  # help names no one on the line
    heard = worker.press("0")
    dial = heard.first("Dial")
    assert dial is not None and dial.text == HOTLINE
    assert "Le comunicamos con la línea de ayuda." in heard.says
    # The help line's call ends: back to the question, nothing recorded.
    heard = worker.follow_redirect()
    assert "¿En qué estado trabaja?" in heard.text
    assert answers(voice_app) == {}


def test_another_key_after_help_goes_back_to_the_question(voice_app, caller):
    worker = caller()
    to_the_first_question(worker)
    worker.press("0")
    heard = worker.press("5")
    assert "¿En qué estado trabaja?" in heard.text
    worker.press("1")
    assert answers(voice_app) == {"state": ("answered", "CA")}


def test_pound_skips_a_question(voice_app, caller):
    worker = caller()
    to_the_first_question(worker)
    heard = worker.press("#")  # one-key question: # is a key
    assert "¿Le pagan a tiempo?" in heard.text
    worker.press("2")
    # On a number question # alone ends the keys with none: Twilio says so in FinishedOnKey.
    heard = worker.press("", finished_on_key="#")
    assert "¿Qué problemas tuvo?" in heard.text
    assert answers(voice_app) == {
        "state": ("skipped", None),
        "paid_on_time": ("answered", "no"),
        "hours": ("skipped", None),
    }


def test_no_key_is_a_miss_and_the_third_moves_on(voice_app, caller):
    worker = caller()
    to_the_first_question(worker)
    heard = worker.wait()
    assert heard.says[0] == "No escuchamos una respuesta."
    assert "¿En qué estado trabaja?" in heard.text
    heard = worker.press("7")  # no such choice
    assert heard.says[0] == "No entendimos esa respuesta."
    heard = worker.wait()
    assert "¿Le pagan a tiempo?" in heard.text
    assert answers(voice_app) == {"state": ("missed", None)}


def test_a_number_out_of_range_is_a_miss(voice_app, caller):
    worker = caller()
    to_the_first_question(worker)
    worker.press("1")
    worker.press("1")
    heard = worker.press("30", finished_on_key="#")
    assert heard.says[0] == "No entendimos esa respuesta."
    worker.press("8", finished_on_key="#")
    assert answers(voice_app)["hours"] == ("answered", 8)


def test_silence_after_the_tone_skips_the_voice_note(voice_app, caller):
    worker = caller()
    to_the_voice_note(worker)
    # Nothing recorded: Twilio skips the action and runs the next verb, the redirect.
    heard = worker.follow_redirect()
    assert "Gracias por contestar." in heard.text
    assert answers(voice_app)["comments"] == ("skipped", None)
    assert count(voice_app, VoiceNote) == 0


def test_a_repeated_step_gets_the_same_twiml_and_records_once(voice_app, caller):
    worker = caller()
    consent = to_the_first_question(worker)
    action = consent.gather.attrib["action"]
    first = worker.press("2")
    again = worker.repeat_last_request({"Digits": "2"}, action)
    assert again.twiml == first.twiml
    assert answers(voice_app) == {"state": ("answered", "FL")}
    with voice_app.app_context(), db.transaction() as session:
        inbound = session.scalar(
            select(func.count()).select_from(Message).where(Message.direction == "in")
        )
    assert inbound == 3  # the survey's start, the consent and the answer: once each
    assert count(voice_app, CallStep) == 4


def test_a_hang_up_leaves_the_conversation_open_for_a_text_or_a_later_call(
    voice_app, caller, fake_twilio
):
    worker = caller()
    to_the_first_question(worker)
    worker.press("2")  # Florida, then the caller hangs up
    client = voice_app.test_client()
    response = post_signed(
        client, fake_twilio.auth_token, "/twilio/messages", inbound_form(worker.phone, "1")
    )
    assert response.status_code == 200
    assert answers(voice_app)["paid_on_time"] == ("answered", "yes")

    heard = worker.call()
    assert heard.says[0] == "Bienvenido otra vez. Seguimos donde se quedó."
    assert "¿Cuántas horas trabajó ayer?" in heard.text
    worker.press("10", finished_on_key="#")
    assert answers(voice_app)["hours"] == ("answered", 10)
    assert count(voice_app, Call) == 2


def test_nine_at_the_consent_opts_out_of_every_channel(voice_app, caller, fake_twilio):
    worker = caller()
    worker.call()
    worker.press("1")
    heard = worker.press("9")
    assert heard.says == ["No le volveremos a llamar ni a escribir. Adiós."]
    assert heard.hangs_up
    with voice_app.app_context(), db.transaction() as session:
        assert session.scalars(select(Contact)).one().is_opted_out
    # A text afterwards starts nothing; a later call is told how to come back.
    post_signed(
        voice_app.test_client(),
        fake_twilio.auth_token,
        "/twilio/messages",
        inbound_form(worker.phone, "LLAMADA"),
    )
    with voice_app.app_context(), db.transaction() as session:
        assert not session.scalars(select(Message).where(Message.direction == "out")).all()
    heard = worker.call()
    assert "Para volver a oír nuestras encuestas, oprima 1. Adiós." in heard.text
    heard = worker.press("1")
    assert "Le llama Centro Campesino." in heard.text or "¿En qué estado" in heard.text
    with voice_app.app_context(), db.transaction() as session:
        assert not session.scalars(select(Contact)).one().is_opted_out


def test_nine_after_the_goodbye_opts_out(voice_app, caller):
    worker = caller()
    worker.call()
    worker.press("2")  # English
    heard = worker.press("1")
    assert "Which state do you work in? For California, press 1." in heard.text
    worker.press("1")
    worker.press("2")
    worker.press("8", finished_on_key="#")
    worker.press("3", finished_on_key="#")
    heard = worker.follow_redirect()
    assert "Thank you for answering." in heard.text
    heard = worker.press("9")
    assert heard.says == ["We will not call you or write to you again. Goodbye."]
    with voice_app.app_context(), db.transaction() as session:
        assert session.scalars(select(Contact)).one().is_opted_out


def test_declining_the_consent_ends_the_call(voice_app, caller):
    worker = caller()
    worker.call()
    worker.press("1")
    heard = worker.press("2")
    assert heard.says == ["Entendido, gracias. No le preguntaremos nada. Adiós."]
    assert heard.hangs_up


def test_a_caller_who_answered_already_is_told_so(voice_app, caller):
    worker = caller()
    to_the_first_question(worker)
    for keys in ("1", "1"):
        worker.press(keys)
    worker.press("8", finished_on_key="#")
    worker.press("3", finished_on_key="#")
    worker.follow_redirect()
    heard = worker.call()
    assert heard.says == ["Usted ya respondió esta encuesta. ¡Gracias! Adiós."]


def test_voice_webhooks_are_signed(voice_app, fake_twilio):
    client = voice_app.test_client()
    form = {"CallSid": "CA" + "1" * 32, "From": "+15551230001", "To": OUR_NUMBER}
    assert client.post("/twilio/voice", data=form).status_code == 403
    assert post_signed(client, "wrong-token", "/twilio/voice", form).status_code == 403
    bad = {**form, "CallSid": "not-a-call"}
    assert post_signed(client, fake_twilio.auth_token, "/twilio/voice", bad).status_code == 400
    step = post_signed(
        client, fake_twilio.auth_token, "/twilio/voice/step?c=nobody&s=1", {**form, "Digits": "1"}
    )
    assert step.status_code == 404


def test_a_withheld_number_is_hung_up_on_and_kept_nowhere(voice_app, fake_twilio):
    form = {"CallSid": "CA" + "2" * 32, "From": "anonymous", "To": OUR_NUMBER}
    response = post_signed(voice_app.test_client(), fake_twilio.auth_token, "/twilio/voice", form)
    assert response.status_code == 200 and b"<Hangup" in response.data
    assert count(voice_app, Contact) == 0 and count(voice_app, Call) == 0


def test_erasure_deletes_voice_notes_and_call_records_at_twilio(voice_app, caller, fake_twilio):
    from engage.clock import run_erasure_clock
    from engage.services.erasure import BY_STAFF, erase_contact

    worker = caller()
    to_the_voice_note(worker)
    worker.leave_voice_note()
    # Twilio holds the call's record and the recording.
    fake_twilio.know(worker.sid, worker.last_recording)
    with voice_app.app_context():
        with db.engine().begin() as connection:
            contact_id = connection.scalar(select(Contact.id))
            assert erase_contact(connection, contact_id, by=BY_STAFF) is not None
        assert count(voice_app, VoiceNote) == 0
        run_erasure_clock()
    assert set(fake_twilio.deleted) == {worker.sid, worker.last_recording}
    with voice_app.app_context(), db.transaction() as session:
        assert session.scalars(select(Call)).one().contact_id is None


def test_a_simulated_call_runs_the_same_steps_and_calls_nobody(voice_app, fake_twilio):
    from engage.services.voice import Pressed
    from engage.simulation import simulate_call

    phone = "+12025550142"
    with voice_app.app_context():
        token, screen = simulate_call(voice_app, phone, token=None)
        assert [p.text for p in screen.prompts][:2] == [
            "Para español, oprima 1.",
            "For English, press 2.",
        ]
        for keys in ("1", "1"):
            token, screen = simulate_call(voice_app, phone, token=token, pressed=Pressed(keys))
        assert "¿En qué estado trabaja?" in screen.prompts[-1].text
        assert screen.keys is not None and screen.keys.one
        _token, screen = simulate_call(voice_app, phone, token=token, pressed=Pressed("0"))
        _token, screen = simulate_call(voice_app, phone, token=token, pressed=Pressed("0"))
        assert screen.dial == HOTLINE
        assert simulate_call(voice_app, phone, token="not-a-call", pressed=Pressed("1")) is None
    with voice_app.app_context(), db.transaction() as session:
        assert session.scalars(select(Contact)).one().is_simulated
        assert session.scalars(select(Call)).one().is_simulated
    assert fake_twilio.requests == [] and fake_twilio.calls == []


def test_the_shipped_survey_by_phone_counts_like_any_other_answers(
    twilio_app, fake_twilio, tmp_path
):
    """The shipped survey's voice edition (es, en), answered by keypad from start to end; the
    staff responses file has the call's answers as it has a text's."""
    import csv

    from click.testing import CliRunner
    from flask.cli import ScriptInfo

    from engage.cli import main

    app = twilio_app()
    worker = Caller(app.test_client(), fake_twilio.auth_token, "+15551230042")
    heard = worker.call()
    assert "Para español, oprima 1." in heard.says
    assert not any("kreyòl" in s.lower() for s in heard.says)  # not offered by phone
    worker.press("1")
    heard = worker.press("1")
    assert "Para Florida, oprima 1." in heard.text
    # 16 states: more than one key, so the keys end with #.
    assert "numDigits" not in heard.gather.attrib
    assert "Marque el número con el teclado" in heard.text
    heard = worker.press("2", finished_on_key="#")
    steps = 0
    while not heard.hangs_up and steps < 40:
        steps += 1
        if heard.record is not None:
            heard = worker.follow_redirect()
        elif "Para que nunca le volvamos a llamar, oprima 9 ahora" in heard.text:
            heard = worker.wait()
        elif heard.gather.attrib.get("numDigits") == "1":
            heard = worker.press("2")
        else:
            heard = worker.press("5", finished_on_key="#")
    assert heard.hangs_up and steps < 40
    out = tmp_path / "responses.csv"
    result = CliRunner().invoke(
        main,
        ["export", "working-conditions", "--responses", "-o", str(out)],
        obj=ScriptInfo(create_app=lambda: app),
    )
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert len(rows) == 1
    row = rows[0]
    assert row["status"] == "completed" and row["language"] == "es"
    assert row["state"] != "" and row["state"] not in ("_skipped", "_missed")
    assert row["days_worked"] == "5"


def staff_after_a_voice_note(app, caller) -> tuple[Any, Caller, int]:
    """A worker leaves a voice note; a staff member signs in: their client, the worker, and
    the worker's contact id."""
    from engage.services.accounts import create_user
    from tests.test_web_access import PASSWORD, sign_in

    with app.app_context(), db.transaction() as session:
        create_user(session, "staff@example.org", PASSWORD, "staff")
    worker = caller()
    to_the_voice_note(worker)
    worker.leave_voice_note()
    client = app.test_client()
    assert sign_in(client, "staff").status_code == 302
    with app.app_context(), db.transaction() as session:
        contact_id = session.scalar(select(Contact.id))
    return client, worker, contact_id


def test_staff_find_a_voice_note_in_the_inbox_with_its_recording(voice_app, caller):
    client, worker, contact_id = staff_after_a_voice_note(voice_app, caller)
    inbox = client.get("/staff/inbox").get_data(as_text=True)
    assert f"/staff/inbox/{contact_id}" in inbox
    thread = client.get(f"/staff/inbox/{contact_id}?lang=es").get_data(as_text=True)
    assert f"/Recordings/{worker.last_recording}" in thread
    assert "· Llamada de voz" in thread  # the channel of each step of the call
    assert worker.phone not in thread and worker.phone not in inbox


def test_the_language_menu_again_after_no_key_or_a_wrong_one(voice_app, caller):
    worker = caller()
    worker.call()
    heard = worker.wait()
    assert heard.says[:2] == ["No escuchamos una respuesta.", "Para español, oprima 1."]
    heard = worker.press("7")
    assert heard.says[:2] == ["No entendimos esa respuesta.", "Para español, oprima 1."]
    heard = worker.press("2")
    assert "This call is from Centro Campesino." in heard.says


def test_staff_answer_a_caller_by_text_from_the_number_they_called(voice_app, caller, fake_twilio):
    from tests.test_web_access import csrf_token

    client, worker, contact_id = staff_after_a_voice_note(voice_app, caller)
    token = csrf_token(client, f"/staff/inbox/{contact_id}")
    response = client.post(
        f"/staff/inbox/{contact_id}/reply",
        data={"csrf_token": token, "body": "Gracias, le llamamos"},
    )
    assert response.status_code in (200, 302, 303), response.status_code
    [created] = [r.form for r in fake_twilio.requests if "Body" in r.form]
    assert created["To"] == [worker.phone] and created["From"] == [OUR_NUMBER]
    with voice_app.app_context(), db.transaction() as session:
        reply = session.scalars(select(Message).where(Message.kind == "staff_reply")).one()
        assert reply.channel == "sms"
