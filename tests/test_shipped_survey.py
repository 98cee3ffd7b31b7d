"""The shipped survey, second edition (`surveys/h2a-working-conditions.yaml`): its SMS cost,
its branching, how it reads replies, and publishing it over the first edition."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlalchemy import select

from engage import db
from engage.models import Conversation
from engage.services.survey_report import check_files
from engage.survey.definition import Survey
from engage.survey.engine import render_question, spell_for_channel
from engage.survey.loader import load_survey_file
from engage.survey.segments import count_segments, is_gsm7
from tests import readback as rb
from tests.test_conversations import answers, contact, conversations, import_state, sms_texts

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "surveys" / "h2a-working-conditions.yaml"
FIRST_EDITION = Path(__file__).resolve().parent / "editions"
LANGUAGES = ("es", "en", "ht")
START = {"es": "TRABAJO", "en": "WORK", "ht": "TRAVAY"}
SKIP_WORD = {"es": "SALTAR", "en": "SKIP", "ht": "SOTE"}


def shipped() -> Survey:
    survey, problems = load_survey_file(SHIPPED)
    assert survey is not None, problems
    return survey


def sent_on_sms(survey: Survey, question_id: str, language: str) -> str:
    """A question as the engine renders it and sends it on SMS."""
    rendered = render_question(survey.question(question_id), survey, language, sms_texts(language))
    return spell_for_channel(survey, rendered, "sms")


def conversation_misses(app) -> list[str]:
    with app.app_context():
        conversation = db.session().scalars(select(Conversation)).one()
        return rb.misses(app, conversation)


# -- the file ------------------------------------------------------------------------------------


def test_the_second_edition_keeps_its_id_keywords_and_languages_and_goes_plain_on_sms():
    survey = shipped()
    assert survey.id == "working-conditions"
    assert survey.languages == LANGUAGES
    assert survey.keywords == {"es": ("TRABAJO",), "en": ("WORK",), "ht": ("TRAVAY",)}
    assert survey.sms_spelling == "plain"
    assert 15 <= len(survey.questions) <= 20
    assert sum(q.when is not None for q in survey.questions) >= 3


def test_state_and_crop_are_profiles_asked_again_after_30_days():
    survey = shipped()
    by_profile = {q.profile: q for q in survey.questions if q.profile}
    assert by_profile["state"].id == "state"  # the same question as in the first edition
    assert by_profile["crop"].id == "main_crop"
    assert by_profile["state"].max_age_days == by_profile["crop"].max_age_days == 30
    states = {c.value for c in by_profile["state"].choices}
    assert {"VA", "TN", "SC", "ID"} <= states  # the states the first edition missed


@pytest.mark.parametrize(
    "question_id", ["passport_holder", "passport_back", "recruit_fee", "debt", "threats"]
)
def test_sensitive_questions_offer_prefer_not_to_say(question_id):
    question = shipped().question(question_id)
    prefer_not = question.choice_by_value("prefer_not")
    assert prefer_not is not None
    assert prefer_not.label == {
        "es": "Prefiero no decir",
        "en": "I prefer not to say",
        "ht": "M pito pa di",
    }
    if question.type == "multi":
        assert prefer_not.exclusive


def test_frequency_is_asked_as_always_sometimes_never_and_none_is_exclusive():
    survey = shipped()
    heat = survey.question("heat")
    assert [c.label["es"] for c in heat.choices] == ["Siempre", "A veces", "Nunca"]
    for question in survey.questions:
        if question.type == "multi":
            assert question.choice_by_value("none").exclusive, question.id


def test_no_text_says_anonymous_or_names_trafficking():
    words = re.compile(r"an[oó]nim|traf[ié]|\btrata\b|trafficking", re.IGNORECASE)
    source = SHIPPED.read_text(encoding="utf-8")
    texts = [line for line in source.splitlines() if not line.lstrip().startswith("#")]
    assert not [line for line in texts if words.search(line)]


# -- what a message costs ----------------------------------------------------------------------


def test_the_checker_passes_it_and_every_message_is_two_sms_segments_at_most():
    ok, lines = check_files([SHIPPED], org_name="Centro Campesino")
    assert ok, lines
    assert not [line for line in lines if "warning" in line], lines
    survey = shipped()
    costs = {}
    for line in lines[1:]:
        name, language, encoding, segments, *rest = line.split()
        costs[(name, language)] = (encoding, int(segments), " ".join(rest))
    for language in LANGUAGES:
        names = ["intro", *(q.id for q in survey.questions), "closing"]
        for name in names:
            encoding, segments, rest = costs[(name, language)]
            assert segments <= 2, (name, language, segments)
            assert encoding == "GSM-7", (name, language)
            assert rest.startswith("segment(s) sent on SMS (plain;"), (name, language, rest)


@pytest.mark.parametrize("language", LANGUAGES)
def test_each_question_as_sent_on_sms_is_gsm7_and_two_segments_at_most(language):
    survey = shipped()
    messages = [spell_for_channel(survey, survey.intro[language], "sms")]
    messages += [sent_on_sms(survey, q.id, language) for q in survey.questions]
    messages.append(spell_for_channel(survey, survey.closing[language], "sms"))
    for message in messages:
        cost = count_segments(message)
        assert (cost.encoding, cost.segments <= 2) == ("GSM-7", True), (message, cost)
    # The multi questions carry their "several numbers" line, the optional one its skip line.
    assert sms_texts(language).several_allowed() in sent_on_sms(survey, "threats", language)
    assert sms_texts(language).skip_prompt() in sent_on_sms(survey, "comments", language)


# -- whole conversations -----------------------------------------------------------------------

# Every reply, from the state to the threats, then the comments skipped. The short path skips all
# four follow-ups; the long path is asked them all.
SHORT_PATH = {
    "state": "1",
    "main_crop": "1",
    "first_season": "1",
    "days_worked": "0",  # no days: hours_per_day is not asked
    "pay_basis": "1",
    "deductions": "5",
    "heat": "1",
    "work_hazards": "5",
    "housing_conditions": "7",
    "contract_timing": "3",  # no contract: contract_understood is not asked
    "recruit_fee": "1",  # nothing paid: debt is not asked
    "passport_holder": "1",  # their own: passport_back is not asked
    "threats": "5",
}
LONG_PATH = {
    "state": "14",
    "main_crop": "4",
    "first_season": "2",
    "days_worked": "6",
    "hours_per_day": "11",
    "pay_basis": "2",
    "deductions": "1 3",
    "heat": "2",
    "work_hazards": "1 2",
    "housing_conditions": "1 5",
    "contract_timing": "2",
    "contract_understood": "2",
    "recruit_fee": "4",
    "debt": "1",
    "passport_holder": "2",
    "passport_back": "2",
    "threats": "2 3",
}
FOLLOW_UPS = {"hours_per_day", "contract_understood", "debt", "passport_back"}


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize(("path", "asked_follow_ups"), [(SHORT_PATH, False), (LONG_PATH, True)])
def test_a_worker_reaches_the_closing_and_follow_ups_are_asked_only_when_they_apply(
    worker, app, language, path, asked_follow_ups
):
    survey = shipped()
    w = worker()
    assert w.send(START[language]) == sms_texts(language).consent()
    replies = [w.send("1")]
    intro = spell_for_channel(survey, survey.intro[language], "sms")
    assert replies[0].startswith(intro)
    for question_id, reply in path.items():
        assert sent_on_sms(survey, question_id, language) in replies[-1], (question_id, replies)
        replies.append(w.send(reply))
    assert sent_on_sms(survey, "comments", language) in replies[-1]
    closing = w.send(SKIP_WORD[language])
    assert closing == "\n\n".join(
        [
            spell_for_channel(survey, survey.closing[language], "sms"),
            sms_texts(language).may_delete(),
        ]
    )
    assert conversations(app) == [("working-conditions", "completed")]
    got = answers(app)
    shown = "\n".join(replies)
    for question_id in FOLLOW_UPS:
        asked = sent_on_sms(survey, question_id, language) in shown
        assert asked is asked_follow_ups, question_id
        assert (question_id in got) is asked_follow_ups, question_id
    assert set(got) == {*path, "comments"}
    assert got["comments"][0] == "skipped"
    assert {a[3] for a in got.values()} == {language}
    if asked_follow_ups:
        assert got["state"][1] == "SC" and got["hours_per_day"][1] == 11
        assert got["deductions"][1] == ["transport", "meals"]
        assert got["passport_back"][1] == "not_returned"
        assert got["threats"][1] == ["no_rehire", "complaint_punished"]
        assert contact(app).profile == {"state": "SC", "crop": "melons", "first_season": "no"}
    else:
        assert got["days_worked"][1] == 0 and got["recruit_fee"][1] == "none"
        assert contact(app).profile == {"state": "FL", "crop": "berries", "first_season": "yes"}


# -- how replies are read ------------------------------------------------------------------------


def to_days_worked(worker, language: str = "es", phone: str = "+15551230001"):
    w = worker(phone)
    w.script(START[language], "1", "1", "1", "1")  # consent, state, crop, first season
    return w


WRONG_UNIT_HINT = {
    # As sent on SMS: system texts go in plain GSM-7 spelling (número -> numero; è is GSM-7).
    "es": "Por favor, responda con un solo numero, contado como lo pide la pregunta.",
    "en": "Please answer with one number, counted as the question asks.",
    "ht": "Tanpri reponn ak yon sèl nimewo, jan kesyon an mande l la.",
}


def test_hours_a_day_to_the_question_about_days_last_week_is_a_miss(worker, app):
    survey = shipped()
    w = to_days_worked(worker)
    reply = w.send("10 horas al día")
    assert reply.startswith(sms_texts("es").hint_wrong_unit())
    assert reply.endswith(sent_on_sms(survey, "days_worked", "es"))  # the question again
    # Within 0 to 7 too: the unit makes it a miss, not the range.
    assert w.send("6 horas").startswith(sms_texts("es").hint_wrong_unit())
    assert conversation_misses(app) == ["10 horas al día", "6 horas"]
    assert "days_worked" not in answers(app)
    assert sent_on_sms(survey, "hours_per_day", "es") in w.send("6 días")
    assert answers(app)["days_worked"][:3] == ("answered", 6, "6 días")


def test_a_weekly_total_to_the_question_about_hours_a_day_is_a_miss(worker, app):
    survey = shipped()
    w = to_days_worked(worker)
    w.send("6")
    assert w.send("60 a la semana").startswith(sms_texts("es").hint_wrong_unit())
    assert w.send("12 semanales").startswith(sms_texts("es").hint_wrong_unit())
    assert "hours_per_day" not in answers(app)
    assert sent_on_sms(survey, "pay_basis", "es") in w.send("10 horas al día")
    assert answers(app)["hours_per_day"][:2] == ("answered", 10)


@pytest.mark.parametrize(
    ("language", "hours_a_day", "in_range"),
    [
        ("es", "10 horas al día", "5 horas"),
        ("en", "10 hours a day", "5 hours"),
        ("ht", "10 èdtan pa jou", "5 èdtan"),
    ],
)
def test_a_wrong_unit_gets_its_own_hint_in_the_workers_language(
    worker, app, language, hours_a_day, in_range
):
    survey = shipped()
    t = sms_texts(language)
    assert t.hint_wrong_unit() == WRONG_UNIT_HINT[language]
    assert is_gsm7(t.hint_wrong_unit()) and count_segments(t.hint_wrong_unit()).segments == 1
    w = to_days_worked(worker, language)
    prompt = sent_on_sms(survey, "days_worked", language)
    assert w.send(hours_a_day) == f"{WRONG_UNIT_HINT[language]}\n\n{prompt}"
    assert w.send(in_range) == f"{WRONG_UNIT_HINT[language]}\n\n{prompt}"
    assert conversation_misses(app) == [hours_a_day, in_range]
    # A number without a unit, out of range, still gets the hint that names the range.
    out_of_range = to_days_worked(worker, language, "+15551230002").send("9")
    assert out_of_range == f"{t.hint_number(0, 7)}\n\n{prompt}"


def test_none_of_these_with_another_housing_choice_is_a_miss(worker, app):
    survey = shipped()
    w = worker()
    w.script("TRABAJO", "1", "1", "1", "1", "6", "10", "1", "5", "1", "5")
    prompt = sent_on_sms(survey, "housing_conditions", "es")
    assert w.send("1 7") == f"{sms_texts('es').hint_multi()}\n\n{prompt}"
    assert w.send("ninguno y ratas") == f"{sms_texts('es').hint_multi()}\n\n{prompt}"
    assert "housing_conditions" not in answers(app)
    assert sent_on_sms(survey, "contract_timing", "es") in w.send("no")
    assert answers(app)["housing_conditions"][:2] == ("answered", ["none"])


def test_a_known_state_older_than_30_days_is_asked_again(worker, app):
    survey = shipped()
    import_state(app, "CA", days_ago=31)
    w = worker()
    w.send("WORK")  # consent first
    assert sent_on_sms(survey, "state", "en") in w.send("1")
    assert sent_on_sms(survey, "main_crop", "en") in w.send("14")
    assert contact(app).profile["state"] == "SC"
    assert answers(app)["state"][:2] == ("answered", "SC")


def test_a_known_state_of_29_days_is_not_asked_again(worker, app):
    survey = shipped()
    import_state(app, "CA", days_ago=29)
    w = worker()
    w.send("WORK")
    first = w.send("1")
    assert sent_on_sms(survey, "state", "en") not in first
    assert sent_on_sms(survey, "main_crop", "en") in first
    assert answers(app)["state"][:2] == ("profile", "CA")


# -- publishing over the first edition ----------------------------------------------------------


def inbound(app, phone: str, *texts: str) -> None:
    """Messages from a worker through the webhook's service, not simulated: they count."""
    from engage.privacy import parse_sender
    from engage.services.conversations import handle_inbound, settings_from

    with app.app_context():
        settings = settings_from(app.config, app.extensions["engage.vault"])
        for text in texts:
            with db.engine().begin() as connection:
                handle_inbound(
                    connection,
                    settings,
                    sender=parse_sender(phone),
                    to="+15005550006",
                    body=text,
                    is_simulated=False,
                )


def test_publishing_over_the_first_edition_keeps_its_results(request, tmp_path, database):
    from conftest import SHIPPED_SURVEYS, TEST_SURVEYS, Worker, make_app, publish

    from engage.services.results import build_report, describe_survey
    from engage.survey.loader import load_surveys
    from tests.results.test_responses import export_rows

    pg = request.getfixturevalue("pg_url") if database == "postgresql" else None
    app = make_app(tmp_path, database, pg)
    try:
        publish(app, [FIRST_EDITION, TEST_SURVEYS])
        # Through the first edition: state, crop, fee, amount, job, contract language, paid on
        # time, hours last week, housing, documents, free to leave, comments.
        first_edition = ("2", "1", "1", "2", "1", "1", "1", "50", "5", "2", "1", "todo bien")
        inbound(app, "+15551230001", "TRABAJO", "1", *first_edition)
        midway = Worker(app, "+15551230002")
        midway.script("TRABAJO", "1", "1", "1")  # at the first edition's paid_fee
        # The second edition publishes over the first: no question changes type, `state`
        # keeps every value that has answers.
        surveys, problems = load_surveys([SHIPPED])
        assert not [p for p in problems if not p.is_warning], problems
        publish(app, [SHIPPED_SURVEYS, TEST_SURVEYS])
        # A conversation finishes on the edition it started on.
        assert "¿Cuánto pagó en total, en dólares?" in midway.send("1")
        inbound(app, "+15551230003", "TRABAJO", "1", *SHORT_PATH.values(), "SALTAR")
        with app.app_context():
            session = db.session()
            info = describe_survey(session, "working-conditions")
            ids = {q.id for q in info.questions}
            report = build_report(session, "working-conditions")
        assert {"paid_fee", "hours_last_week", "documents_held", "crop"} <= ids  # first edition
        assert {"recruit_fee", "hours_per_day", "passport_holder", "main_crop"} <= ids  # second
        assert [v.is_current for v in info.versions] == [False, True]
        exported = export_rows(app)
        assert len(exported) == 2  # the simulated conversation is left out
        rows = {row["version"]: row for row in exported}
        old, new = (rows[v.version] for v in info.versions)
        assert (old["status"], new["status"]) == ("completed", "completed")
        assert (old["state"], old["crop"], old["paid_fee"], old["hours_last_week"]) == (
            "CA",
            "berries",
            "yes",
            "50",
        )
        assert old["recruit_fee"] == ""  # never asked in the first edition
        assert (new["state"], new["days_worked"], new["recruit_fee"], new["paid_fee"]) == (
            "FL",
            "0",
            "none",
            "",
        )
        assert {row.question_id for row in report.rows} >= {"paid_fee", "recruit_fee"}
    finally:
        app.extensions["engage.engine"].dispose()
