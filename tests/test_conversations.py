"""Scripted conversations through `engage simulate`, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.fernet import InvalidToken
from sqlalchemy import select

from engage import db
from engage.models import Answer, Contact, Conversation, Message
from engage.privacy import has_one_form, lookup_form
from engage.survey.texts import SystemTexts
from tests import readback as rb

LOCALES = Path(__file__).resolve().parent.parent / "locales"
ES_CONSENT = "¿Participa? 1=Si 2=No"  # on SMS, system texts go in plain GSM-7 spelling
EN_CONSENT = "Join? 1=Yes 2=No"
ES_STATE = "¿En qué estado trabaja ahora?"
EN_STATE = "Which state do you work in now?"
EN_CROP = "Which crop do you work in most?"
EN_SEASON = "Is this your first work season in the United States?"
EN_DAYS = "How many days did you work last week?"
EN_HOURS = "On a usual work day, how many hours do you work?"
EN_PAY = "How are you paid?"
EN_DEDUCTIONS = "Is money taken from your pay for any of these?"
EN_HEAT = "On hot days, can you rest in the shade when you need to?"
EN_HAZARDS = "At this job, has any of this happened to you?"
EN_HOUSING = "Where you live now, is any of this true?"
EN_CONTRACT = "When did you get your work contract?"
EN_UNDERSTOOD = "Did you understand what your contract says?"
EN_FEE = "How much did you have to pay a recruiter"
EN_DEBT = "Do you still owe money that you borrowed"
EN_PASSPORT = "Who has your passport now?"
EN_PASSPORT_BACK = "If you ask for it, do they give your passport back?"
EN_THREATS = "At this job, has anyone threatened you"
EN_COMMENTS = "Anything else you want to tell us?"
HOTLINE = "1-888-373-7888"
# The shipped survey, answered from its first question to `comments` (the last) on the shortest
# path: worked 6 days, 10 hours a day, a contract before the visa, no fee, their own passport.
TO_COMMENTS = ("1", "1", "1", "6", "10", "1", "5", "1", "5", "7", "1", "1", "1", "1", "5")


def sms_texts(language: str) -> SystemTexts:
    """The system texts as the test app sends them on SMS."""
    return SystemTexts(LOCALES, language, "Centro Campesino").sms


def answers(app, survey_id="working-conditions"):
    with app.app_context():
        rows = db.session().scalars(
            select(Answer).where(Answer.survey_id == survey_id).order_by(Answer.id)
        )
        return {
            a.question_id: (a.status, rb.value(app, a), rb.raw_text(app, a), a.language)
            for a in rows
        }


def age(app, model, column: str, hours: float) -> None:
    """Move a timestamp of every row back in time, as if that many hours had passed."""
    with app.app_context(), db.transaction() as session:
        for row in session.scalars(select(model)):
            setattr(row, column, getattr(row, column) - timedelta(hours=hours))


def contact(app):
    with app.app_context():
        return db.session().scalars(select(Contact)).one()


def conversations(app):
    with app.app_context():
        return [
            (c.survey_id, c.status)
            for c in db.session().scalars(select(Conversation).order_by(Conversation.id))
        ]


def test_first_message_gets_the_language_menu_and_a_pick_confirms(worker):
    w = worker()
    menu = w.send("hola")
    assert menu.splitlines()[0] == sms_texts("es").language_menu_header()
    # Languages with catalogs, and those of active surveys (the test Mixteco one), fixed numbers.
    assert menu.splitlines()[1:] == [
        "1 Español",
        "2 English",
        "3 Kreyòl ayisyen",
        "4 Tu'un savi (Mixteco)",
    ]
    reply = w.send("2")
    assert reply.startswith("We will write to you in English.")
    assert "send HOUSING, PRUEBA, WORK." in reply  # each active survey's keyword in English


def test_a_menu_answer_by_name_works_and_anything_else_closes_it(worker, app):
    w = worker()
    w.send("buenas")
    assert w.send("kreyol").startswith("N ap ekri w an kreyòl.")
    assert contact(app).language == "ht"
    w2 = worker("+15551230002")
    w2.send("buenas")
    # Not a language: the menu closes and the message is handled normally (a keyword here).
    assert EN_CONSENT in w2.send("WORK")


def test_full_survey_in_english_with_forgiving_answers(worker, app):
    w = worker()
    assert EN_CONSENT in w.send("work")
    first = w.send("yes")
    assert first.startswith("Thank you. About 15 short questions")
    assert EN_STATE in first and "1 Florida" in first
    assert EN_CROP in w.send("cali")  # a match word
    assert EN_SEASON in w.send("strawberries")
    assert EN_DAYS in w.send("Nope!")  # a no word, any case and punctuation
    assert EN_HOURS in w.send("six")  # a number word
    assert EN_PAY in w.send("ten hours")
    assert EN_DEDUCTIONS in w.send("BY THE HOUR!")  # a label, any case and punctuation
    assert EN_HEAT in w.send("1 and meals")
    assert EN_HAZARDS in w.send("sometimes")
    assert EN_HOUSING in w.send("2,4")
    assert EN_CONTRACT in w.send("1, 3 and rats")
    assert EN_UNDERSTOOD in w.send("before")
    assert EN_FEE in w.send("part")
    assert EN_DEBT in w.send("3")  # 200 to 499 dollars: the debt question applies
    assert EN_PASSPORT in w.send("2")
    assert EN_THREATS in w.send("I have it")
    assert EN_COMMENTS in w.send("none")
    closing = w.send("The boss is fine")
    assert "Thank you for taking part!" in closing
    assert closing.endswith("\n\n" + sms_texts("en").may_delete())  # one line after the closing
    got = answers(app)
    assert got["state"][:2] == ("answered", "CA")
    assert got["main_crop"][:2] == ("answered", "berries")
    assert got["first_season"][:2] == ("answered", "no")
    assert got["days_worked"][:2] == ("answered", 6)
    assert got["hours_per_day"][:2] == ("answered", 10)
    assert got["pay_basis"][:2] == ("answered", "hourly")
    assert got["deductions"][:2] == ("answered", ["transport", "meals"])
    assert got["heat"][:2] == ("answered", "sometimes")
    assert got["work_hazards"][:2] == ("answered", ["no_water", "no_medical_care"])
    assert got["housing_conditions"][:2] == ("answered", ["charged", "no_clean_water", "pests"])
    assert got["contract_timing"][:2] == ("answered", "before_visa")
    assert got["contract_understood"][:2] == ("answered", "part")
    assert got["recruit_fee"][:2] == ("answered", "from_200")
    assert got["debt"][:2] == ("answered", "no_debt")
    assert got["passport_holder"][:2] == ("answered", "self")
    assert "passport_back" not in got  # asked only when someone else holds the passport
    assert got["threats"][:2] == ("answered", ["none"])
    assert got["comments"][:3] == ("answered", "The boss is fine", "The boss is fine")
    assert {a[3] for a in got.values()} == {"en"}
    assert conversations(app) == [("working-conditions", "completed")]
    assert contact(app).profile == {"state": "CA", "crop": "berries", "first_season": "no"}


def test_skip_logic_leaves_out_a_question_whose_condition_is_false(worker, app):
    w = worker()
    w.script("WORK", "1", "2", "3", "2")
    assert EN_PAY in w.send("0")  # no days worked last week: hours per day is not asked
    w.script("1", "5", "1", "5", "7")
    assert EN_FEE in w.send("no contract")  # no contract: whether it was understood is not
    assert EN_PASSPORT in w.send("nothing")  # no fee paid: debt is not asked
    assert EN_THREATS in w.send("1")  # their own passport: whether it is given back is not
    got = answers(app)
    assert got["days_worked"][1] == 0
    assert got["contract_timing"][1] == "no_contract"
    assert got["recruit_fee"][1] == "none"
    assert got["passport_holder"][1] == "self"
    skipped = {"hours_per_day", "contract_understood", "debt", "passport_back"}
    assert not skipped & set(got)  # not even stored as skipped: never asked


def test_a_follow_up_is_asked_when_its_condition_holds(worker, app):
    w = worker()
    w.script("WORK", "1", "2", "3", "2", "5", "8", "1", "5", "1", "5", "7")
    assert EN_UNDERSTOOD in w.send("after")
    w.send("1")
    assert EN_DEBT in w.send("prefer not")  # the fee not said: debt is asked
    assert EN_PASSPORT in w.send("3")
    assert EN_PASSPORT_BACK in w.send("the employer or contractor")
    assert EN_THREATS in w.send("4")
    got = answers(app)
    assert got["hours_per_day"][1] == 8
    assert got["contract_understood"][1] == "all"
    assert got["debt"][1] == "prefer_not"
    assert got["passport_back"][1] == "prefer_not"


def test_keyword_starts_in_its_language_and_consent_is_asked_once(worker, app):
    w = worker()
    consent = w.send("TRABAJO")
    assert consent == sms_texts("es").consent()
    assert consent.startswith("Centro Campesino le pregunta")
    assert "AYUDA" in consent and "SALTAR" in consent and "ALTO" in consent
    assert ES_STATE in w.send("sí")
    assert contact(app).has_consented
    assert contact(app).language == "es"


def test_consent_declined_ends_the_conversation_and_a_keyword_asks_again(worker, app):
    w = worker()
    w.send("TRABAJO")
    assert w.send("2") == sms_texts("es").consent_declined()
    assert conversations(app) == [("working-conditions", "declined")]
    assert not contact(app).is_opted_out
    assert ES_CONSENT in w.send("TRABAJO")


@pytest.mark.parametrize("reply", ["no gracias", "No, gracias.", "pues no"])
def test_consent_declined_with_courtesy_words(worker, app, reply):
    w = worker()
    w.send("TRABAJO")
    assert w.send(reply) == sms_texts("es").consent_declined()
    assert conversations(app) == [("working-conditions", "declined")]


@pytest.mark.parametrize("reply", ["sí señor", "si gracias", "pues si", "sii", "ajá"])
def test_consent_given_with_courtesy_words_or_variants(worker, app, reply):
    w = worker()
    w.send("TRABAJO")
    assert ES_STATE in w.send(reply)
    assert contact(app).has_consented


def test_three_non_answers_to_consent_are_a_decline_after_one_line_hints(worker, app):
    w = worker()
    w.send("WORK")
    assert w.send("what is this") == "Reply 1 to take part or 2 not to."
    assert w.send("who are you") == "Reply 1 to take part or 2 not to."
    assert w.send("hmm") == "Understood, thank you. We will not ask you anything."
    assert conversations(app) == [("working-conditions", "declined")]


def test_consent_miss_in_spanish_gets_the_short_hint(worker):
    w = worker()
    w.send("TRABAJO")
    assert w.send("que es esto") == "Responda 1 para participar o 2 para no."


@pytest.mark.parametrize("reply", ["no gracias", "No, gracias.", "no thank you", "non mèsi"])
def test_a_polite_no_declines_the_consent(worker, app, reply):
    w = worker()
    w.send("TRABAJO")
    assert w.send(reply) == sms_texts("es").consent_declined()
    assert conversations(app) == [("working-conditions", "declined")]
    assert not contact(app).is_opted_out


def test_a_polite_yes_consents(worker, app):
    w = worker()
    w.send("TRABAJO")
    assert ES_STATE in w.send("sí señor")
    assert contact(app).has_consented


def test_help_during_consent_gives_help_then_the_consent_again(worker):
    w = worker()
    w.send("TRABAJO")
    reply = w.send("AYUDA")
    assert HOTLINE in reply and reply.rstrip().endswith(ES_CONSENT)


def test_three_misses_move_on_and_keep_the_raw_texts(worker, app):
    w = worker()
    w.script("WORK", "1")
    first_miss = w.send("Oregon")
    assert first_miss.startswith("Please answer with a number from 1 to 16.")
    assert EN_STATE in first_miss
    assert EN_STATE in w.send("99")
    assert EN_CROP in w.send("0")
    status, value, raw, _ = answers(app)["state"]
    assert (status, value) == ("missed", None)
    assert raw.splitlines() == ["Oregon", "99", "0"]


def test_misses_hint_in_spanish(worker):
    w = worker()
    w.script("TRABAJO", "1", "1")  # consent, state → main_crop, 12 choices
    reply = w.send("mucho")
    assert reply.startswith(sms_texts("es").hint_choice(12))
    assert reply.startswith("Por favor, responda con un numero del 1 al 12.")  # GSM-7 spelling


def test_number_hint_names_the_range(worker, app):
    w = worker()
    w.script("WORK", "1", "1", "1")
    assert EN_DAYS in w.send("1")
    assert w.send("9").startswith("Please answer with a number from 0 to 7.")
    assert EN_HOURS in w.send("seis")
    assert w.send("30").startswith("Please answer with a number from 1 to 24.")
    assert EN_PAY in w.send("unas diez horas")
    assert answers(app)["hours_per_day"][:2] == ("answered", 10)


def test_skip_stores_skipped_for_any_question_and_zero_is_not_a_skip(worker, app):
    w = worker()
    w.script("TRABAJO", "1")
    assert "¿En qué cultivo" in w.send("SALTAR")
    assert answers(app)["state"][:2] == ("skipped", None)
    assert "Por favor" in w.send("0")
    assert "primera temporada" in w.send("skip")
    assert answers(app)["main_crop"][0] == "skipped"


def test_optional_question_mentions_skip_in_the_workers_language(worker, app):
    w = worker()
    comments = w.script("TRABAJO", "1", *TO_COMMENTS)[-1]
    assert "(SALTAR para saltar)" in comments
    closing = w.send("saltar")
    assert closing.startswith("¡Muchas gracias por participar!")
    assert closing.endswith("\n\n" + sms_texts("es").may_delete())
    assert conversations(app) == [("working-conditions", "completed")]
    assert answers(app)["comments"][0] == "skipped"


def test_help_mid_survey_gives_the_hotline_and_the_question_again(worker, app):
    w = worker()
    w.script("TRABAJO", "1")
    reply = w.send("ayuda")
    assert HOTLINE in reply and "233733" in reply
    assert sms_texts("es").help() in reply
    assert "No somos el gobierno ni su patron" in reply
    assert reply.rstrip().endswith("16 Otro")  # the pending question again
    assert "state" not in answers(app)  # help is not a miss, not an answer
    en = worker("+15551230009")
    en.script("WORK", "1")
    reply = en.send("HELP")
    assert "We are not the government or your employer" in reply and EN_STATE in reply


def test_language_switch_mid_survey_asks_the_question_again_in_the_new_language(worker, app):
    w = worker()
    w.script("TRABAJO", "1", "2")
    menu = w.send("IDIOMA")
    assert menu.splitlines()[1:] == ["1 Español", "2 English", "3 Kreyòl ayisyen"]
    switched = w.send("2")
    assert switched.startswith(EN_CROP)
    assert contact(app).language == "en"
    assert EN_SEASON in w.send("3")
    assert answers(app)["main_crop"][3] == "en"
    assert answers(app)["state"][3] == "es"


def test_opt_out_in_spanish_words_confirms_once_then_silence_until_opt_in(worker, app):
    w = worker()
    w.script("TRABAJO", "1")
    assert w.send("ALTO") == sms_texts("es").opted_out()
    assert contact(app).is_opted_out
    assert conversations(app) == [("working-conditions", "opted_out")]
    for text in ("TRABAJO", "1", "hola", "IDIOMA", "BAJA"):
        assert w.send(text) == ""
    assert w.send("alta").startswith(sms_texts("es").opted_in())
    assert not contact(app).is_opted_out
    # No survey resumes by itself: a plain text gets the "no conversation" reply.
    assert "TRABAJO" in w.send("hola")


def test_english_stop_on_sms_is_recorded_without_a_reply_twilio_confirms(worker, app):
    w = worker()
    w.send("WORK")
    assert w.send("STOP") == ""
    assert contact(app).is_opted_out
    assert w.send("HELP") == sms_texts("en").help()  # they wrote to us: help, still opted out
    assert contact(app).is_opted_out
    assert w.send("START") == ""  # Twilio confirms START itself on SMS
    assert not contact(app).is_opted_out


@pytest.mark.parametrize(
    "text",
    ["AYUDA", "auxilio!", "Socorro", "AYÚDENME", "ayudame", "anmwe", "Help me!", "ÈD", "sos ed"],
)
def test_help_and_distress_words_get_the_help_text_also_when_opted_out(worker, app, text):
    w = worker()
    w.script("TRABAJO", "1")
    w.send("ALTO")
    reply = w.send(text)
    if text == "sos ed":  # not a keyword: an opted-out contact gets nothing
        assert reply == ""
        return
    assert reply == sms_texts("es").help()
    assert contact(app).is_opted_out
    assert conversations(app) == [("working-conditions", "opted_out")]  # nothing restarts


@pytest.mark.parametrize("text", ["AUXILIO", "socorro.", "Ayúdenme", "ANMWE", "help me", "ED"])
def test_distress_words_mid_survey_get_help_and_the_question_again(worker, app, text):
    w = worker()
    w.script("TRABAJO", "1")
    reply = w.send(text)
    assert reply.startswith(sms_texts("es").help())
    assert reply.rstrip().endswith("16 Otro")
    assert "state" not in answers(app)


def test_kreyol_keywords_skip_and_stop(worker, app):
    w = worker()
    w.script("TRABAJO", "1")
    assert "¿En qué cultivo" in w.send("sote")
    assert answers(app)["state"][:2] == ("skipped", None)
    assert w.send("SISPANN") == sms_texts("es").opted_out()
    assert contact(app).is_opted_out


def test_system_texts_keep_their_accents_on_whatsapp(worker):
    w = worker(channel="whatsapp")
    consent = w.send("TRABAJO")
    assert consent == SystemTexts(LOCALES, "es", "Centro Campesino").consent()
    assert "¿Participa? 1=Sí 2=No" in consent


def test_stop_on_whatsapp_is_confirmed_by_us(worker, app):
    w = worker(channel="whatsapp")
    w.send("WORK")
    assert w.send("stop").startswith("You will get no more messages from us.")
    assert w.send("start").startswith("You will get our messages again.")


def test_stop_as_first_message_creates_the_contact_opted_out(worker, app):
    w = worker()
    assert w.send("STOP") == ""
    assert contact(app).is_opted_out
    assert w.send("TRABAJO") == ""


def test_profile_question_is_not_asked_again_in_a_second_survey(worker, app):
    w = worker()
    w.script("WORK", "1", "2")  # state = California
    w.script(*TO_COMMENTS[1:], "skip")
    assert conversations(app)[-1] == ("working-conditions", "completed")
    first = w.send("HOUSING")
    assert "Which state" not in first
    assert "clean water" in first
    w.send("1")
    housing = answers(app, "housing-check")
    assert housing["state"][:2] == ("profile", "CA")
    assert housing["water"][:2] == ("answered", "yes")


def test_another_surveys_keyword_abandons_the_current_one(worker, app):
    w = worker()
    w.script("WORK", "1", "2")
    reply = w.send("HOUSING")
    assert "clean water" in reply  # state known from the profile
    assert conversations(app) == [
        ("working-conditions", "abandoned"),
        ("housing-check", "active"),
    ]
    assert answers(app)["state"][1] == "CA"  # answers of the abandoned survey are kept


def test_the_same_keyword_mid_survey_repeats_the_pending_question(worker, app):
    w = worker()
    w.script("WORK", "1")
    assert w.send("work").startswith(EN_STATE)
    assert conversations(app) == [("working-conditions", "active")]


def test_a_completed_survey_is_not_answered_twice(worker, app):
    w = worker()
    w.script("HOUSING", "1", "1")
    assert w.send("1").startswith("Thank you.")
    assert w.send("HOUSING") == "You already answered this survey. Thank you!"


def test_known_contact_without_conversation_gets_one_reply_a_day(worker, app):
    w = worker()
    w.script("HOUSING", "2")  # declined
    assert "send HOUSING, PRUEBA, WORK." in w.send("hello?")
    assert w.send("anyone there?") == ""
    age(app, Contact, "last_nudged_at", 25)
    assert "send HOUSING, PRUEBA, WORK." in w.send("hello again")
    free = rb.inbound_bodies(app, Message.is_free_text.is_(True))
    assert free == ["hello?", "anyone there?", "hello again"]


def test_idle_conversation_expires_and_a_later_message_starts_afresh(worker, app):
    w = worker()
    w.script("WORK", "1", "2")
    age(app, Conversation, "last_activity_at", 73)
    reply = w.send("3")
    assert EN_CROP not in reply
    assert conversations(app) == [("working-conditions", "expired")]
    assert answers(app)["state"][1] == "CA"
    assert EN_CROP in w.send("WORK")  # a new conversation; state known from the profile


def test_a_survey_started_again_supersedes_the_earlier_rows_of_its_questions(worker, app):
    w = worker()
    w.script("WORK", "1", "2")  # state = California
    age(app, Conversation, "last_activity_at", 73)
    w.send("3")  # the conversation has expired
    assert EN_CROP in w.send("WORK")  # state recorded again, from the profile
    w.send("1")
    with app.app_context():
        session = db.session()
        rows = session.scalars(select(Answer).order_by(Answer.id)).all()
        ends = session.scalars(select(Conversation).order_by(Conversation.id)).all()
    assert [(a.conversation_id, a.question_id, a.status, a.is_latest) for a in rows] == [
        (ends[0].id, "state", "answered", False),
        (ends[1].id, "state", "profile", True),
        (ends[1].id, "main_crop", "answered", True),
    ]
    assert [(c.last_question_id, c.last_profile.get("state")) for c in ends] == [
        ("state", "CA"),
        ("main_crop", "CA"),
    ]


def test_a_conversation_within_the_idle_time_resumes(worker, app):
    w = worker()
    w.script("WORK", "1")
    age(app, Conversation, "last_activity_at", 71)
    assert EN_CROP in w.send("2")


def test_a_survey_language_without_cldr_data_reads_spanish_system_texts(worker, app):
    w = worker()
    consent = w.send("NDAA")
    assert consent == sms_texts("es").consent()
    assert "¿Va'a?\n1 Si 2 No" in w.send("1")
    assert contact(app).language == "mix"


def test_phone_number_is_not_stored_in_clear_text(worker, app, database, tmp_path):
    phone = "+15559876543"
    worker(phone).script("WORK", "1")
    digits = phone.lstrip("+").encode()
    if database == "sqlite":
        with app.app_context():
            db.engine().dispose()  # checkpoint: everything is in the files now
        raw = b"".join(p.read_bytes() for p in tmp_path.glob("engage.db*"))
        assert b"Which state" in raw  # the stored replies are there, in clear
        assert digits not in raw
        assert digits[-7:] not in raw
    else:
        with app.app_context(), db.engine().connect() as conn:
            from sqlalchemy import text

            for table in ("contacts", "messages", "conversations", "answers"):
                rows = conn.execute(text(f"SELECT row_to_json(t)::text FROM {table} t"))
                for (row,) in rows:
                    assert digits.decode() not in row
    c = contact(app)
    assert c.phone_encrypted.startswith("gAAAA")
    vault = app.extensions["engage.vault"]
    # Under the contact's own key, not the PII key.
    assert vault.contact_cipher(c.key_encrypted).decrypt(c.phone_encrypted) == phone
    with pytest.raises(InvalidToken):
        vault.decrypt(c.phone_encrypted)


@pytest.mark.parametrize(
    ("number", "looked_up_as", "one_form"),
    [
        ("+5215512345678", "+525512345678", False),
        ("+525512345678", "+525512345678", False),
        ("+5491123456789", "+541123456789", False),
        ("+52155123456", "+52155123456", False),  # too short for the mobile prefix
        ("+12095550100", "+12095550100", True),
    ],
)
def test_numbers_with_two_forms(number, looked_up_as, one_form):
    assert lookup_form(number) == looked_up_as
    assert has_one_form(number) is one_form


def test_whatsapp_mexican_mobile_is_the_same_contact_as_its_sms_form(worker, app):
    worker("+5215512345678", channel="whatsapp").script("TRABAJO", "1")
    reply = worker("+525512345678").send("1")
    assert "¿En qué cultivo" in reply  # the same conversation, continued by SMS
    with app.app_context():
        assert db.session().scalar(select(Contact.id).order_by(Contact.id.desc())) == 1
        # Each message keeps the address it came from and its reply goes back there.
        rows = db.session().scalars(select(Message).order_by(Message.id)).all()
        addresses = [(m.direction, rb.address(app, m)) for m in rows]
    assert addresses[-2:] == [("in", "+525512345678"), ("out", "+525512345678")]
    assert addresses[0] == ("in", "whatsapp:+5215512345678")


def test_simulated_contacts_and_answers_are_marked(worker, app):
    worker().script("WORK", "1", "1")
    with app.app_context():
        session = db.session()
        assert session.scalars(select(Contact.is_simulated)).all() == [True]
        assert set(session.scalars(select(Answer.is_simulated)).all()) == {True}


def test_the_clock_expires_idle_conversations_without_waiting_for_a_message(worker, app):
    from click.testing import CliRunner
    from flask.cli import ScriptInfo

    from engage.cli import main

    worker().script("WORK", "1")
    worker("+15551230002").script("WORK", "1")
    age(app, Conversation, "last_activity_at", 73)
    worker("+15551230002").send("2")  # its conversation would have expired, but it writes again
    result = CliRunner().invoke(main, ["clock", "--once"], obj=ScriptInfo(create_app=lambda: app))
    assert result.exit_code == 0, result.output
    statuses = [status for _survey, status in conversations(app)]
    assert statuses == ["expired", "expired"]  # the second one expired in its own step


PLAIN_SURVEY = """\
id: plain-spelling
title: {es: Días de trabajo, en: Work days}
languages: [es, en]
keywords: {es: [DIAS], en: [DAYS]}
sms_spelling: plain
intro: {es: "Gracias por participar. Son sólo dos preguntas.", en: "Thank you."}
questions:
  - id: days
    type: choice
    text: {es: "¿Cuántos días trabajó esta semana?", en: "How many days did you work?"}
    choices:
      - {value: few, label: {es: "Menos de tres días", en: Fewer than three}}
      - {value: many, label: {es: "Tres días o más", en: Three or more}}
  - id: rest
    type: yes_no
    text: {es: "¿Tuvo un día de descanso?", en: "Did you have a day off?"}
closing: {es: "¡Muchas gracias! Su información ayudará.", en: "Thank you!"}
"""


def publish_plain_survey(app, tmp_path: Path) -> None:
    from conftest import publish

    directory = tmp_path / "plain-surveys"
    directory.mkdir()
    (directory / "plain.yaml").write_text(PLAIN_SURVEY, encoding="utf-8")
    publish(app, [directory])


def test_a_plain_survey_goes_in_gsm7_letters_on_sms(worker, app, tmp_path):
    from engage.survey.segments import is_gsm7

    publish_plain_survey(app, tmp_path)
    w = worker()
    replies = w.script("DIAS", "1", "2", "1")
    assert "¿Cuantos dias trabajo esta semana?" in replies[1]
    assert "1 Menos de tres dias" in replies[1]
    assert "Son solo dos preguntas." in replies[1]
    assert "¡Muchas gracias! Su informacion ayudara." in replies[3]
    assert all(is_gsm7(reply) for reply in replies), replies
    assert conversations(app)[-1] == ("plain-spelling", "completed")


def test_a_plain_survey_keeps_its_accents_on_whatsapp(worker, app, tmp_path):
    publish_plain_survey(app, tmp_path)
    w = worker("+5215512345678", channel="whatsapp")
    replies = w.script("DIAS", "1", "2", "1")
    assert "¿Cuántos días trabajó esta semana?" in replies[1]
    assert "Son sólo dos preguntas." in replies[1]
    assert "Su información ayudará." in replies[3]


def test_the_shipped_survey_goes_plain_on_sms_and_keeps_its_accents_on_whatsapp(worker):
    from engage.survey.segments import is_gsm7

    sms = worker().script("TRABAJO", "1", "1")
    assert "¿En qué cultivo trabaja mas?\n1 Fresa, arandano o mora" in sms[-1]
    assert all(is_gsm7(reply) for reply in sms), sms
    whatsapp = worker("+5215512345678", channel="whatsapp").script("TRABAJO", "1", "1")
    assert "¿En qué cultivo trabaja más?\n1 Fresa, arándano o mora" in whatsapp[-1]


def test_a_survey_as_written_keeps_its_accents_on_sms(worker, app, tmp_path):
    from conftest import SHIPPED_SURVEYS, publish

    # The shipped survey without `sms_spelling: plain`: a new version, spelled as written.
    source = (SHIPPED_SURVEYS / "h2a-working-conditions.yaml").read_text(encoding="utf-8")
    as_written = source.replace('\nsms_spelling: "plain"\n', "\n", 1)
    assert as_written != source
    directory = tmp_path / "as-written"
    directory.mkdir()
    (directory / "h2a.yaml").write_text(as_written, encoding="utf-8")
    publish(app, [directory])
    replies = worker().script("TRABAJO", "1", "1")
    assert "¿En qué cultivo trabaja más?\n1 Fresa, arándano o mora" in replies[-1], replies


AGING_SURVEY = """\
id: crew-check
title: {es: Cuadrilla, en: Crew}
languages: [es, en]
keywords: {es: [CUADRILLA], en: [CREW]}
questions:
  - id: state
    type: choice
    profile: state
    max_age_days: 30
    text: {es: "¿En qué estado trabaja?", en: "Which state do you work in now?"}
    choices:
      - {value: FL, label: {es: Florida, en: Florida}}
      - {value: CA, label: {es: California, en: California}}
  - id: water
    type: yes_no
    text: {es: "¿Tiene agua limpia?", en: "Do you have clean water at work?"}
"""
EN_STATE_NOW = "Which state do you work in now?"
EN_WATER = "Do you have clean water at work?"


def import_state(app, state: str, days_ago: float, phone: str = "+15551230001") -> None:
    """Import the worker with a state, as if the import had run that many days ago."""
    from engage.db import utcnow
    from engage.services.contacts import import_contacts, read_rows

    lines = ["phone,language,consent_source,state\n", f"{phone},en,clinic,{state}\n"]
    rows = read_rows(lines, default_region="US", name="contacts.csv")
    with app.app_context(), db.transaction() as session:
        vault = app.extensions["engage.vault"]
        import_contacts(session, vault, rows, now=utcnow() - timedelta(days=days_ago))


def publish_aging_survey(app, tmp_path: Path) -> None:
    from conftest import publish

    directory = tmp_path / "aging-surveys"
    directory.mkdir()
    (directory / "crew.yaml").write_text(AGING_SURVEY, encoding="utf-8")
    publish(app, [directory])


def profile_age_days(app, key: str) -> float:
    from datetime import datetime

    from engage.db import utcnow

    set_at = datetime.fromisoformat(contact(app).profile_updated_at[key])
    return (utcnow() - set_at).total_seconds() / 86400


def test_an_imported_profile_value_older_than_max_age_is_asked_again(worker, app, tmp_path):
    publish_aging_survey(app, tmp_path)
    import_state(app, "CA", days_ago=31)
    w = worker()
    w.send("CREW")  # consent first
    assert w.send("1").startswith(EN_STATE_NOW)
    assert w.send("1").startswith(EN_WATER)  # Florida now
    assert contact(app).profile["state"] == "FL"
    assert profile_age_days(app, "state") < 1  # counted again from this answer
    assert answers(app, "crew-check")["state"][:2] == ("answered", "FL")


def test_a_fresh_imported_profile_value_is_not_asked_again(worker, app, tmp_path):
    publish_aging_survey(app, tmp_path)
    import_state(app, "CA", days_ago=29)
    w = worker()
    w.send("CREW")
    assert w.send("1").startswith(EN_WATER)
    assert answers(app, "crew-check")["state"][:2] == ("profile", "CA")
    assert 28 < profile_age_days(app, "state") < 30  # not refreshed by being used


def test_skipping_a_re_asked_profile_question_keeps_the_old_value(worker, app, tmp_path):
    publish_aging_survey(app, tmp_path)
    import_state(app, "CA", days_ago=45)
    w = worker()
    w.script("CREW", "1")
    assert w.send("SKIP").startswith(EN_WATER)
    assert contact(app).profile["state"] == "CA"
    assert answers(app, "crew-check")["state"][:2] == ("profile", "CA")
    assert profile_age_days(app, "state") > 44  # still old: asked again next time
    w.send("1")
    assert w.send("CREW").startswith("You already answered")


def test_without_max_age_an_old_profile_value_is_never_asked_again(worker, app):
    import_state(app, "CA", days_ago=400)
    w = worker()
    w.send("HOUSING")
    assert "clean water" in w.send("1")
    assert answers(app, "housing-check")["state"][:2] == ("profile", "CA")


def test_a_profile_answer_in_a_conversation_records_when_it_was_given(worker, app):
    w = worker()
    w.script("WORK", "1", "2")  # state = California
    assert contact(app).profile["state"] == "CA"
    assert profile_age_days(app, "state") < 1
