"""The conversation engine on its own: the conversation rules (docs/conversation.md), row by row.

No database, no app: surveys come from YAML text through the project's loader into an in-memory
catalog, system texts from the repository's gettext catalogs (`make catalogs`). Each case states
what the worker wrote and in what state, and checks the replies, the state left behind and the
answer records. Survey texts are written out here; system texts come from `SystemTexts`, so a
changed translation moves both sides.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from engage.survey.definition import Survey
from engage.survey.engine import (
    CONSENT,
    INVITATION,
    ContactState,
    ConversationState,
    Engine,
    Outcome,
)
from engage.survey.loader import load_surveys
from engage.survey.safety import SafetyWords
from engage.survey.segments import Segments, count_segments
from engage.survey.texts import SystemTexts

LOCALES = Path(__file__).resolve().parents[2] / "locales"
ORG = "Centro Campesino"
NOW = datetime(2025, 6, 2, 15, 0, tzinfo=UTC)
IDLE = timedelta(hours=72)

WORK = """\
id: work
title: {es: Condiciones de trabajo, en: Working conditions}
languages: [es, en]
keywords: {es: [TRABAJO], en: [WORK]}
intro: {es: "Son preguntas cortas.", en: "These are short questions."}
questions:
  - id: state
    type: choice
    profile: state
    text: {es: "¿En qué estado trabaja?", en: "Which state do you work in?"}
    choices:
      - {value: FL, label: {es: Florida, en: Florida}}
      - {value: CA, label: {es: California, en: California}, match: {es: [cali]}}
      - {value: other, label: {es: Otro, en: Other}}
  - id: paid
    type: yes_no
    text: {es: "¿Le pagan a tiempo?", en: "Are you paid on time?"}
  - id: problems
    type: multi
    when: "paid == 'no'"
    text: {es: "¿Qué problemas tuvo?", en: "Which problems did you have?"}
    choices:
      - {value: late, label: {es: Pago tarde, en: Late pay}}
      - {value: short, label: {es: Pago menor, en: Short pay}}
      - {value: none, label: {es: Ninguno, en: None of these}, exclusive: true}
  - id: hours
    type: number
    min: 0
    max: 100
    wrong_units: {es: [día, diario], en: [day, daily]}
    text: {es: "¿Cuántas horas trabajó la semana pasada?", en: "How many hours last week?"}
  - id: comments
    type: text
    optional: true
    text: {es: "¿Algo más que quiera contarnos?", en: "Anything else to tell us?"}
closing: {es: "¡Gracias por responder!", en: "Thank you for answering!"}
"""
# The same survey published again: another first question, and no comments question.
WORK_V2 = (
    WORK.replace("¿En qué estado trabaja?", "¿En qué estado trabaja ahora?")
    .replace("Which state do you work in?", "Which state do you work in now?")
    .split("  - id: comments")[0]
    + 'closing: {es: "¡Gracias por responder!", en: "Thank you for answering!"}\n'
)
HOUSING = """\
id: housing
title: {es: Vivienda, ht: Lojman}
languages: [es, ht]
keywords: {es: [VIVIENDA], ht: [LOJMAN]}
questions:
  - id: water
    type: yes_no
    text: {es: "¿Tiene agua limpia donde vive?", ht: "Èske ou gen dlo pwòp kote w rete a?"}
  - id: rooms
    type: number
    min: 1
    max: 20
    text: {es: "¿Cuántas personas duermen en su cuarto?", ht: "Konbyen moun ki dòmi nan chanm ou?"}
closing: {es: "Gracias.", ht: "Mèsi."}
"""
# Mixteco has no catalog and no CLDR data: its system texts are Spanish.
PULSE = """\
id: pulse
title: {es: Pulso, en: Pulse, mix: Pulso}
languages: [es, en, mix]
keywords: {es: [PULSO], en: [PULSE], mix: [NDAA]}
repeat: true
questions:
  - id: well
    type: yes_no
    text: {es: "¿Todo bien esta semana?", en: "All well this week?", mix: "¿Va'a?"}
"""
# Zapoteco's native name is written with an accent GSM-7 lacks (Diidxazá).
ZAPOTECO = """\
id: zap-check
title: {es: Prueba, zap: Prueba}
languages: [es, zap]
keywords: {es: [PRUEBA], zap: [GUENDA]}
questions:
  - id: ok
    type: yes_no
    text: {es: "¿Todo bien?", zap: "¿Todo bien?"}
"""

# How each question reads, in the survey's words; system lines come from the catalogs.
SHOWN: dict[tuple[str, str], Callable[[SystemTexts], list[str]]] = {
    ("state", "es"): lambda t: ["¿En qué estado trabaja?", "1 Florida", "2 California", "3 Otro"],
    ("state", "en"): lambda t: [
        "Which state do you work in?",
        "1 Florida",
        "2 California",
        "3 Other",
    ],
    ("state2", "es"): lambda t: [
        "¿En qué estado trabaja ahora?",
        "1 Florida",
        "2 California",
        "3 Otro",
    ],
    ("paid", "es"): lambda t: ["¿Le pagan a tiempo?", t.yes_no_choices()],
    ("paid", "en"): lambda t: ["Are you paid on time?", t.yes_no_choices()],
    ("problems", "es"): lambda t: [
        "¿Qué problemas tuvo?",
        "1 Pago tarde",
        "2 Pago menor",
        "3 Ninguno",
        t.several_allowed(),
    ],
    ("hours", "es"): lambda t: ["¿Cuántas horas trabajó la semana pasada?"],
    ("hours", "en"): lambda t: ["How many hours last week?"],
    ("comments", "es"): lambda t: ["¿Algo más que quiera contarnos?", t.skip_prompt()],
    ("water", "es"): lambda t: ["¿Tiene agua limpia donde vive?", t.yes_no_choices()],
    ("water", "ht"): lambda t: ["Èske ou gen dlo pwòp kote w rete a?", t.yes_no_choices()],
    ("rooms", "es"): lambda t: ["¿Cuántas personas duermen en su cuarto?"],
    ("well", "es"): lambda t: ["¿Todo bien esta semana?", t.yes_no_choices()],
}
INTRO = {"es": "Son preguntas cortas.", "en": "These are short questions."}
CLOSING = {"es": "¡Gracias por responder!", "en": "Thank you for answering!"}
# The first keyword of each active survey, in catalog order, as the no-conversation reply
# names them (a survey without the language gives its default language's).
KEYWORDS = {
    "es": ["TRABAJO", "VIVIENDA", "PULSO"],
    "en": ["WORK", "VIVIENDA", "PULSE"],
    "ht": ["TRABAJO", "LOJMAN", "PULSO"],
    "mix": ["TRABAJO", "VIVIENDA", "NDAA"],
}
FULL_MENU = ["1 Español", "2 English", "3 Kreyòl ayisyen", "4 Tu'un savi (Mixteco)"]


# -- the pieces ------------------------------------------------------------------------------


def load_yaml(text: str) -> Survey:
    """A survey from YAML text, through the loader and its checks, as `surveys load` reads it."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "survey.yaml"
        path.write_text(text, encoding="utf-8")
        surveys, problems = load_surveys([path])
    assert len(surveys) == 1, [str(p) for p in problems]
    return surveys[0]


class MemoryCatalog:
    """The engine's SurveyCatalog in memory: the active versions, and older ones still read."""

    def __init__(self, active: list[Survey], older: tuple[Survey, ...] = ()) -> None:
        self._active = active
        self._versions = {(s.id, s.version): s for s in (*older, *active)}

    def active(self) -> list[Survey]:
        return list(self._active)

    def get(self, survey_id: str, version: str) -> Survey:
        return self._versions[survey_id, version]


@cache
def surveys() -> dict[str, Survey]:
    return {
        "work": load_yaml(WORK),
        "work2": load_yaml(WORK_V2),
        "housing": load_yaml(HOUSING),
        "pulse": load_yaml(PULSE),
        "zap": load_yaml(ZAPOTECO),
    }


@cache
def texts(language: str) -> SystemTexts:
    return SystemTexts(LOCALES, language, ORG)


def system(language: str, channel: str = "sms") -> SystemTexts:
    """The system texts as a channel gets them: plain GSM-7 spelling on SMS."""
    return texts(language).sms if channel == "sms" else texts(language)


def make_engine(*, new_version: bool = False, more: tuple[str, ...] = ()) -> Engine:
    s = surveys()
    extra = [s[name] for name in more]
    if new_version:
        catalog = MemoryCatalog([s["work2"], s["housing"], s["pulse"]], older=(s["work"],))
    else:
        catalog = MemoryCatalog([s["work"], s["housing"], s["pulse"], *extra])
    return Engine(catalog, texts=texts, idle=IDLE, safety=SafetyWords(LOCALES))


@pytest.fixture(scope="module")
def engine() -> Engine:
    return make_engine()


def shown(question: str, language: str = "es", channel: str = "sms") -> str:
    """A question as the worker reads it."""
    return "\n".join(SHOWN[question, language](system(language, channel)))


def said(*parts: str) -> str:
    return "\n\n".join(parts)


def replies(outcome: Outcome) -> str:
    """What the step sent, as one text: parts are joined or sent in order, the words are equal."""
    return "\n\n".join(outcome.replies)


def worker(language: str | None = "es", *, consented: bool = True, **fields: Any) -> ContactState:
    return ContactState(language=language, has_consented=consented, **fields)


def talking(
    survey: str = "work", pending: str | None = "state", language: str = "es", **fields: Any
) -> ConversationState:
    """An open conversation, last active ten minutes ago."""
    return ConversationState(
        survey_id=surveys()[survey].id,
        version=surveys()[survey].version,
        language=language,
        started_at=NOW - timedelta(hours=1),
        last_activity_at=NOW - timedelta(minutes=10),
        pending=pending,
        key=7,
        **fields,
    )


def step(
    engine: Engine,
    contact: ContactState,
    conversation: ConversationState | None,
    text: str | None,
    *,
    channel: str = "sms",
    media: bool = False,
    twilio: bool = False,
    now: datetime = NOW,
) -> Outcome:
    return engine.step(
        contact,
        conversation,
        text,
        now=now,
        channel=channel,
        has_media=media,
        twilio_confirmed=twilio,
    )


def records(outcome: Outcome) -> list[tuple[str, str, Any, str | None]]:
    return [(a.question_id, a.status, a.value, a.raw_text) for a in outcome.answers]


# -- first message, the language menu ------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "media"),
    [("hola", False), ("Buenos días, ¿quién es?", False), ("2", False), ("", True)],
    ids=["greeting", "question", "a-number", "media-only"],
)
def test_a_first_message_from_a_new_number_gets_the_language_menu(engine, text, media):
    contact = ContactState(is_new=True)
    out = step(engine, contact, None, text, media=media)
    assert out.replies == [said("\n".join([system("es").language_menu_header(), *FULL_MENU]))]
    assert contact.is_menu_open and contact.language is None
    assert out.conversation is None and out.is_free_text


@pytest.mark.parametrize(
    ("channel", "zapoteco"),
    [("sms", "5 Diidxaza (Zapoteco)"), ("whatsapp", "5 Diidxazá (Zapoteco)")],
)
def test_the_menu_on_sms_is_in_plain_gsm7_letters(channel, zapoteco):
    engine = make_engine(more=("zap",))
    out = step(engine, ContactState(is_new=True), None, "hola", channel=channel)
    header = system("es", channel).language_menu_header()
    assert out.replies == ["\n".join([header, *FULL_MENU, zapoteco])]
    if channel == "sms":
        assert count_segments(out.replies[0]) == Segments("GSM-7", len(out.replies[0]), 1)


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("1", "es"),
        ("Español", "es"),
        ("2", "en"),
        ("english", "en"),
        ("Inglés", "en"),
        ("3", "ht"),
        ("kreyol", "ht"),
        ("4", "mix"),
        ("Mixteco", "mix"),
    ],
)
def test_a_menu_pick_with_no_survey_confirms_and_names_the_keywords(engine, text, language):
    contact = worker(None, consented=False, is_menu_open=True)
    out = step(engine, contact, None, text)
    t = system(language)
    assert replies(out) == said(t.language_set(), t.no_conversation(KEYWORDS[language]))
    assert contact.language == language and not contact.is_menu_open
    assert out.conversation is None


def test_the_no_conversation_reply_after_a_menu_pick_counts_for_the_day(engine):
    contact = worker(None, consented=False, is_menu_open=True)
    step(engine, contact, None, "2")
    later = step(engine, contact, None, "hello?", now=NOW + timedelta(hours=1))
    assert later.replies == []
    assert later.is_free_text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("hola", lambda: system("es").no_conversation(KEYWORDS["es"])),
        ("9", lambda: system("es").no_conversation(KEYWORDS["es"])),
        ("AYUDA", lambda: system("es").help()),
        ("VIVIENDA", lambda: system("es").consent()),
    ],
    ids=["text", "no-such-language", "help", "survey-keyword"],
)
def test_anything_but_a_pick_closes_the_menu_and_is_handled_as_usual(engine, text, expected):
    contact = worker(consented=False, is_menu_open=True)
    out = step(engine, contact, None, text)
    assert replies(out) == expected()
    assert not contact.is_menu_open


@pytest.mark.parametrize("keyword", ["IDIOMA", "language", "Lang", "LANGUE", "¡idioma!"])
def test_the_language_keyword_opens_the_menu(engine, keyword):
    contact = worker("en")
    out = step(engine, contact, None, keyword)
    assert replies(out) == "\n".join([system("en").language_menu_header(), *FULL_MENU])
    assert contact.is_menu_open


def test_the_menu_mid_survey_lists_the_surveys_languages_with_their_own_numbers(engine):
    contact, conv = worker(), talking("housing", "water", misses=["x"])
    out = step(engine, contact, conv, "IDIOMA")
    header = system("es").language_menu_header()
    assert replies(out) == "\n".join([header, "1 Español", "3 Kreyòl ayisyen"])
    assert contact.is_menu_open
    assert out.conversation is conv and conv.pending == "water" and conv.misses == ["x"]
    assert out.answers == []


@pytest.mark.parametrize("text", ["3", "Kreyòl", "creole"])
def test_a_menu_pick_mid_survey_asks_the_pending_question_again_in_the_new_language(engine, text):
    contact, conv = worker(is_menu_open=True), talking("housing", "water")
    out = step(engine, contact, conv, text)
    assert replies(out) == shown("water", "ht")
    assert conv.language == "ht" and contact.language == "ht"
    assert not contact.is_menu_open and out.answers == []


def test_a_language_the_survey_lacks_is_no_pick_mid_survey_and_is_read_as_an_answer(engine):
    # 2 is English on the menu, but this survey's menu showed only 1 and 3.
    contact, conv = worker(is_menu_open=True), talking("housing", "water")
    out = step(engine, contact, conv, "2")
    assert records(out) == [("water", "answered", "no", "2")]
    assert conv.language == "es" and contact.language == "es"
    assert replies(out) == shown("rooms")


# -- survey keywords and consent -------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "survey", "language"),
    [
        ("TRABAJO", "work", "es"),
        ("work", "work", "en"),
        ("¡Trabajo!", "work", "es"),
        ("Lojman", "housing", "ht"),
        ("NDAA", "pulse", "mix"),
    ],
)
@pytest.mark.parametrize("is_new", [False, True], ids=["known", "first-message"])
def test_a_survey_keyword_asks_consent_first_in_the_keywords_language(
    engine, text, survey, language, is_new
):
    contact = worker(None if is_new else "es", consented=False, is_new=is_new)
    out = step(engine, contact, None, text)
    # Mixteco reads Spanish system texts.
    assert out.replies == [system(language).consent()]
    assert system("mix").consent() == system("es").consent()
    conv = out.conversation
    assert conv is not None and conv.survey_id == survey and conv.pending == CONSENT
    assert conv.language == language and contact.language == language
    assert not contact.is_menu_open and out.answers == []


@pytest.mark.parametrize(
    ("contact", "first", "recorded"),
    [
        (lambda: worker(), "state", []),
        (
            lambda: worker(profile={"state": "CA"}, profile_updated_at={"state": "x"}),
            "paid",
            [("state", "profile", "CA", None)],
        ),
    ],
    ids=["first-question", "known-profile-not-asked"],
)
def test_a_survey_keyword_after_consent_sends_the_intro_and_first_question(
    engine, contact, first, recorded
):
    contact = contact()
    out = step(engine, contact, None, "TRABAJO")
    assert replies(out) == said(INTRO["es"], shown(first))
    assert out.conversation is not None and out.conversation.pending == first
    assert records(out) == recorded


@pytest.mark.parametrize("text", ["1", "si", "Sí señor", "pues sí", "YES", "sii"])
def test_consent_yes_sends_the_intro_with_the_first_question(engine, text):
    contact, conv = worker(consented=False), talking(pending=CONSENT)
    out = step(engine, contact, conv, text)
    assert contact.has_consented
    assert out.replies == [said(INTRO["es"], shown("state"))]
    assert out.conversation is conv and conv.pending == "state" and conv.is_open
    assert out.answers == []


@pytest.mark.parametrize("text", ["2", "no", "No gracias", "no, thank you", "nel", "NO!"])
def test_consent_no_declines_with_one_line_and_the_next_keyword_asks_again(engine, text):
    contact, conv = worker(consented=False), talking(pending=CONSENT)
    out = step(engine, contact, conv, text)
    assert out.replies == [system("es").consent_declined()]
    assert out.conversation is None and out.ended == [conv] and conv.status == "declined"
    assert not contact.has_consented and not contact.is_opted_out
    again = step(engine, contact, None, "TRABAJO")
    assert again.replies == [system("es").consent()]


def test_consent_non_answers_get_a_one_line_hint_and_the_third_declines(engine):
    contact, conv = worker(consented=False), talking(pending=CONSENT)
    hint = system("es").consent_hint()
    for tries, text in enumerate(["hola", "¿qué es esto?"], start=1):
        out = step(engine, contact, conv, text)
        assert out.replies == [hint]
        assert conv.consent_tries == tries and conv.is_open
    out = step(engine, contact, conv, "3")
    assert out.replies == [system("es").consent_declined()]
    assert conv.status == "declined" and out.conversation is None
    assert not contact.has_consented


@pytest.mark.parametrize(
    ("text", "media", "expected"),
    [
        ("AYUDA", False, lambda: said(system("es").help(), system("es").consent())),
        ("SALTAR", False, lambda: system("es").consent()),
        ("TRABAJO", False, lambda: system("es").consent()),
        ("", True, lambda: said(system("es").answer_by_text(), system("es").consent())),
    ],
    ids=["help", "skip", "same-keyword", "media"],
)
def test_help_keywords_and_media_during_consent_ask_consent_again_and_are_no_tries(
    engine, text, media, expected
):
    contact, conv = worker(consented=False), talking(pending=CONSENT, consent_tries=2)
    out = step(engine, contact, conv, text, media=media)
    assert replies(out) == expected()
    assert conv.consent_tries == 2 and conv.pending == CONSENT and conv.is_open


def test_a_step_is_one_message_within_the_segment_budget_else_its_parts_in_order(engine):
    short = step(engine, worker(consented=False), talking(pending=CONSENT), "1")
    assert short.replies == [said(INTRO["es"], shown("state"))]
    long = step(engine, worker(consented=False), talking(pending=CONSENT), "AYUDA")
    assert long.replies == [system("es").help(), system("es").consent()]


def test_the_menu_during_consent_then_a_pick_asks_consent_in_the_new_language(engine):
    contact, conv = worker(consented=False), talking(pending=CONSENT)
    menu = step(engine, contact, conv, "IDIOMA")
    assert menu.replies == ["\n".join([system("es").language_menu_header(), *FULL_MENU[:2]])]
    out = step(engine, contact, conv, "2")
    assert out.replies == [system("en").consent()]
    assert conv.language == "en" and contact.language == "en" and conv.consent_tries == 0


# -- answers ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pending", "text", "value", "then"),
    [
        ("state", "2", "CA", "paid"),
        ("state", "California", "CA", "paid"),
        ("state", "cali", "CA", "paid"),
        ("state", "1 Florida", "FL", "paid"),
        ("state", "el 3", "other", "paid"),
        ("paid", "1", "yes", "hours"),  # `problems` is asked only when not paid on time
        ("paid", "Sí señor", "yes", "hours"),
        ("paid", "2", "no", "problems"),
        ("paid", "no gracias", "no", "problems"),
        ("problems", "1 y 2", ["late", "short"], "hours"),
        ("problems", "1y2", ["late", "short"], "hours"),
        ("problems", "3", ["none"], "hours"),
        ("problems", "pago tarde", ["late"], "hours"),
        ("hours", "40", 40, "comments"),
        ("hours", "cuarenta y cinco", 45, "comments"),
        ("hours", "40,5", 40.5, "comments"),
        ("hours", "0", 0, "comments"),  # 0 is an answer, never a skip
        ("comments", "El patrón no nos da agua", "El patrón no nos da agua", None),
    ],
)
def test_an_answer_of_each_type_is_stored_and_the_next_question_asked(
    engine, pending, text, value, then
):
    contact, conv = worker(), talking(pending=pending, misses=["earlier miss"])
    out = step(engine, contact, conv, text)
    assert records(out) == [(pending, "answered", value, text)]
    record = out.answers[0]
    assert (record.version, record.language, record.conversation) == (conv.version, "es", conv)
    assert conv.values[pending] == value and conv.misses == []
    if then is None:
        assert replies(out) == said(CLOSING["es"], system("es").may_delete())
        assert conv.status == "completed" and out.conversation is None
        assert "work" in contact.completed_surveys
    else:
        assert replies(out) == shown(then)
        assert conv.pending == then and out.conversation is conv
    if pending == "state":
        assert contact.profile == {"state": value}
        assert contact.profile_updated_at == {"state": NOW.isoformat()}


@pytest.mark.parametrize(
    ("pending", "text", "hint"),
    [
        ("state", "9", lambda t: t.hint_choice(3)),
        ("state", "0", lambda t: t.hint_choice(3)),  # 0 is never a skip
        ("state", "banana", lambda t: t.hint_choice(3)),
        ("paid", "tal vez", lambda t: t.hint_yes_no()),
        ("paid", "3", lambda t: t.hint_yes_no()),
        ("problems", "1 3", lambda t: t.hint_multi()),  # "none" with another
        ("problems", "1 y 7", lambda t: t.hint_multi()),
        ("hours", "200", lambda t: t.hint_number(0, 100)),
        ("hours", "10 al día", lambda t: t.hint_wrong_unit()),  # a wrong unit: its own hint
        ("hours", "muchas", lambda t: t.hint_number(0, 100)),
        ("hours", "8 o 9", lambda t: t.hint_number(0, 100)),
        # An empty reply to a text question is no answer: a miss, whose hint asks for words
        # (a number hint there would only puzzle).
        ("comments", "   ", lambda t: t.answer_by_text()),
        ("comments", "\n\t ", lambda t: t.answer_by_text()),
    ],
)
def test_a_miss_gets_a_short_hint_and_the_question_again(engine, pending, text, hint):
    contact, conv = worker(), talking(pending=pending, misses=["first"])
    out = step(engine, contact, conv, text)
    t = system("es")
    assert replies(out) == said(hint(t), shown(pending))
    assert out.answers == [] and conv.pending == pending and len(conv.misses) == 2
    assert out.kind == "miss"


def test_a_miss_below_a_numbers_minimum_names_its_range_and_0_is_no_skip(engine):
    contact, conv = worker(), talking("housing", "rooms")
    out = step(engine, contact, conv, "0")
    assert replies(out) == said(system("es").hint_number(1, 20), shown("rooms"))
    assert out.answers == [] and conv.misses == ["0"]


@pytest.mark.parametrize(
    ("pending", "then", "expected"),
    [
        ("state", "paid", lambda: shown("paid")),
        ("hours", "comments", lambda: shown("comments")),
        ("comments", None, lambda: said(CLOSING["es"], system("es").may_delete())),
    ],
)
def test_the_third_miss_moves_on_stored_as_missed_with_the_raw_texts(
    engine, pending, then, expected
):
    contact, conv = worker(), talking(pending=pending, misses=["uno mas", "quién sabe"])
    out = step(engine, contact, conv, "ya no sé" if pending != "comments" else " ")
    raw = "uno mas\nquién sabe\n" + ("ya no sé" if pending != "comments" else "")
    assert records(out) == [(pending, "missed", None, raw)]
    assert replies(out) == expected()  # no hint: the next question, or the end
    assert conv.misses == [] and conv.pending == then


@pytest.mark.parametrize(
    ("text", "media", "expected"),
    [
        ("AYUDA", False, lambda: said(system("es").help(), shown("state"))),
        ("AUXILIO", False, lambda: said(system("es").help(), shown("state"))),
        ("TRABAJO", False, lambda: shown("state")),
        ("IDIOMA", False, lambda: "\n".join([system("es").language_menu_header(), *FULL_MENU[:2]])),
        ("", True, lambda: said(system("es").answer_by_text(), shown("state"))),
        ("me quitaron el pasaporte", False, lambda: said(system("es").help(), shown("state"))),
    ],
    ids=["help", "distress", "same-keyword", "menu", "media", "safety-words"],
)
def test_keywords_and_media_do_not_count_as_misses(engine, text, media, expected):
    contact, conv = worker(), talking(pending="state", misses=["a", "b"])
    out = step(engine, contact, conv, text, media=media)
    assert replies(out) == expected()
    assert conv.misses == ["a", "b"] and conv.pending == "state" and out.answers == []


@pytest.mark.parametrize(
    ("contact", "conversation", "expected", "kind"),
    [
        (
            lambda: worker(),
            lambda: talking(pending="paid"),
            lambda: said(system("es").answer_by_text(), shown("paid")),
            "media",
        ),
        (
            lambda: worker(last_nudged_at=None),
            lambda: None,
            lambda: system("es").no_conversation(KEYWORDS["es"]),
            "media",
        ),
        (
            lambda: worker(last_nudged_at=NOW - timedelta(hours=2)),
            lambda: None,
            lambda: "",
            "media",
        ),
    ],
    ids=["mid-survey", "no-conversation", "no-conversation-nudged-today"],
)
def test_media_without_text(engine, contact, conversation, expected, kind):
    # Outside a conversation there is no question to answer by text: a photo is a message
    # like any other (the media URL is kept for staff by the caller).
    contact, conv = contact(), conversation()
    out = step(engine, contact, conv, None, media=True)
    assert replies(out) == expected()
    assert out.kind == kind and out.answers == []
    if conv is not None:
        assert conv.misses == [] and conv.pending == "paid"


# -- keywords mid-survey ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "language"),
    [("TRABAJO", "es"), ("trabajo.", "es"), ("WORK", "en")],
)
def test_the_same_surveys_keyword_mid_survey_asks_the_pending_question_again(
    engine, text, language
):
    contact = worker()
    conv = talking(pending="paid", misses=["x"], values={"state": "CA"})
    out = step(engine, contact, conv, text)
    # In the keyword's language, as a keyword always sets it.
    assert replies(out) == shown("paid", language)
    assert out.conversation is conv and conv.is_open and out.ended == []
    assert conv.pending == "paid" and conv.misses == ["x"] and conv.values == {"state": "CA"}
    assert conv.language == language and contact.language == language
    assert out.answers == []


@pytest.mark.parametrize(
    ("pending", "text", "consented", "expected", "language"),
    [
        ("hours", "VIVIENDA", True, lambda: shown("water"), "es"),
        ("comments", "VIVIENDA", True, lambda: shown("water"), "es"),  # a keyword, not text
        ("hours", "LOJMAN", True, lambda: shown("water", "ht"), "ht"),
        (CONSENT, "VIVIENDA", False, lambda: system("es").consent(), "es"),
    ],
)
def test_another_surveys_keyword_mid_survey_abandons_it_and_starts_the_new_one(
    engine, pending, text, consented, expected, language
):
    contact = worker(consented=consented)
    conv = talking(pending=pending, values={"state": "CA", "paid": "yes"})
    out = step(engine, contact, conv, text)
    assert conv.status == "abandoned" and out.ended == [conv]
    assert conv.values == {"state": "CA", "paid": "yes"}  # answers kept
    new = out.conversation
    assert new is not None and new.survey_id == "housing" and new.language == language
    assert replies(out) == expected()
    assert contact.language == language and out.answers == []


def test_the_keyword_of_a_completed_survey_without_repeat_says_already_answered(engine):
    contact = worker(completed_surveys={"housing"})
    out = step(engine, contact, None, "VIVIENDA")
    assert out.replies == [system("es").already_answered()]
    assert out.conversation is None and out.ended == []


def test_the_keyword_of_a_completed_survey_mid_another_keeps_the_one_in_progress(engine):
    # Nothing starts, so nothing is given up: the worker keeps their place.
    contact = worker(completed_surveys={"housing"})
    conv = talking(pending="paid", values={"state": "CA"})
    out = step(engine, contact, conv, "VIVIENDA")
    assert replies(out) == said(system("es").already_answered(), shown("paid"))
    assert conv.is_open and out.conversation is conv and out.ended == []


def test_a_survey_with_repeat_starts_again_after_it_was_completed(engine):
    contact = worker(completed_surveys={"pulse"})
    out = step(engine, contact, None, "PULSO")
    assert replies(out) == shown("well")
    assert out.conversation is not None and out.conversation.survey_id == "pulse"


# -- outside any conversation ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("language", "last_nudged", "expected"),
    [
        ("es", None, lambda: system("es").no_conversation(KEYWORDS["es"])),
        ("en", None, lambda: system("en").no_conversation(KEYWORDS["en"])),
        ("es", NOW - timedelta(hours=23), lambda: ""),
        ("es", NOW - timedelta(hours=24), lambda: system("es").no_conversation(KEYWORDS["es"])),
    ],
    ids=["spanish", "english", "nudged-today", "a-day-later"],
)
def test_a_known_contact_with_no_conversation_is_nudged_at_most_once_a_day(
    engine, language, last_nudged, expected
):
    contact = worker(language, last_nudged_at=last_nudged)
    out = step(engine, contact, None, "hola, ¿hay trabajo?")
    assert replies(out) == expected()
    assert out.is_free_text and out.conversation is None
    assert contact.last_nudged_at == (NOW if expected() else last_nudged)


# -- idle conversations and new versions -----------------------------------------------------


@pytest.mark.parametrize(
    ("idle", "text", "expected", "status"),
    [
        (timedelta(hours=71), "1", lambda: shown("hours"), "active"),
        (timedelta(hours=73), "1", lambda: system("es").no_conversation(KEYWORDS["es"]), "expired"),
        (timedelta(hours=73), "TRABAJO", lambda: said(INTRO["es"], shown("state")), "expired"),
    ],
    ids=["resumes", "expired", "expired-then-keyword"],
)
def test_an_idle_conversation_expires_and_within_the_idle_time_resumes(
    engine, idle, text, expected, status
):
    contact = worker()
    conv = talking(pending="paid", values={"state": "CA"})
    conv.last_activity_at = NOW - idle
    out = step(engine, contact, conv, text)
    assert replies(out) == expected()
    assert conv.status == status
    if status == "expired":
        assert out.ended == [conv] and conv.values == {"state": "CA"}
        assert all(a.conversation is not conv for a in out.answers)
    else:
        assert records(out) == [("paid", "answered", "yes", "1")]


def test_a_conversation_finishes_on_the_version_it_started_on():
    engine = make_engine(new_version=True)
    old, new = surveys()["work"], surveys()["work2"]
    assert old.version != new.version
    contact = worker()
    conv = talking(pending="state")
    assert step(engine, contact, conv, "TRABAJO").replies == [shown("state")]  # not state2
    out = step(engine, contact, conv, "2")
    assert out.answers[0].version == old.version
    for text in ("1", "40"):
        out = step(engine, contact, conv, text)
    assert replies(out) == shown("comments")  # a question only the old version has
    assert all(a.version == old.version for a in out.answers)
    # The next start is on the new version.
    fresh = step(engine, worker(), None, "TRABAJO")
    assert fresh.conversation is not None and fresh.conversation.version == new.version
    assert replies(fresh) == said(INTRO["es"], shown("state2"))


# -- invitations -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("language", "consented", "pending", "expected", "conv_language"),
    [
        ("es", False, CONSENT, lambda: system("es").consent(), "es"),
        ("en", True, INVITATION, lambda: system("en").invitation("Working conditions"), "en"),
        ("ht", True, INVITATION, lambda: system("es").invitation("Condiciones de trabajo"), "es"),
        (None, True, INVITATION, lambda: system("es").invitation("Condiciones de trabajo"), "es"),
    ],
)
def test_an_invitation_opens_a_conversation_awaiting_consent(
    engine, language, consented, pending, expected, conv_language
):
    contact = worker(language, consented=consented)
    out = engine.invite(contact, surveys()["work"], now=NOW)
    assert out.replies == [expected()]
    conv = out.conversation
    assert conv is not None and conv.pending == pending and conv.language == conv_language
    assert conv.started_at == NOW and out.kind == "invitation"


def test_an_invitation_on_whatsapp_keeps_its_accents():
    engine = make_engine()
    out = engine.invite(worker(consented=False), surveys()["work"], now=NOW, channel="whatsapp")
    assert out.replies == [texts("es").consent()]
    assert texts("es").consent() != texts("es").sms.consent()


@pytest.mark.parametrize(
    ("consented", "text", "expected", "pending"),
    [
        (True, "1", lambda: said(INTRO["es"], shown("state")), "state"),
        (True, "Sí", lambda: said(INTRO["es"], shown("state")), "state"),
        (True, "TRABAJO", lambda: said(INTRO["es"], shown("state")), "state"),
        (True, "hola", lambda: system("es").invitation("Condiciones de trabajo"), INVITATION),
        (False, "1", lambda: said(INTRO["es"], shown("state")), "state"),
        (False, "hola", lambda: system("es").consent_hint(), CONSENT),
        (False, "TRABAJO", lambda: system("es").consent(), CONSENT),
    ],
    ids=[
        "invited-1",
        "invited-si",
        "invited-keyword",
        "invited-non-answer",
        "consent-1",
        "consent-non-answer",
        "consent-keyword",
    ],
)
def test_a_reply_to_an_invitation_is_read_against_it(engine, consented, text, expected, pending):
    contact = worker(consented=consented)
    conv = engine.invite(contact, surveys()["work"], now=NOW - timedelta(hours=1)).conversation
    out = step(engine, contact, conv, text)
    assert replies(out) == expected()
    assert conv is not None and conv.pending == pending and conv.is_open
    assert contact.has_consented == (consented or pending == "state")


@pytest.mark.parametrize("consented", [True, False])
def test_no_to_an_invitation_declines_it(engine, consented):
    contact = worker(consented=consented)
    conv = engine.invite(contact, surveys()["work"], now=NOW - timedelta(hours=1)).conversation
    out = step(engine, contact, conv, "no gracias")
    assert out.replies == [system("es").consent_declined()]
    assert conv is not None and conv.status == "declined"


# -- opt-out and opt-in ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "channel", "twilio", "language", "confirmation"),
    [
        ("STOP", "sms", False, "es", False),  # Twilio answers its English words on SMS
        ("stop.", "sms", False, "es", False),
        ("Unsubscribe", "sms", False, "es", False),
        ("CANCEL", "sms", False, "es", False),
        ("END", "sms", False, "es", False),
        ("QUIT", "sms", False, "es", False),
        ("STOPALL", "sms", False, "es", False),
        ("REVOKE", "sms", False, "es", False),
        ("OPTOUT", "sms", False, "es", False),
        ("PARAR", "sms", False, "es", True),
        ("alto", "sms", False, "es", True),
        ("Baja", "sms", False, "es", True),
        ("CANCELAR", "sms", False, "es", True),
        ("SISPANN", "sms", False, "ht", True),
        ("PARAR", "sms", True, "es", False),  # Twilio said it answered (OptOutType STOP)
        ("STOP", "whatsapp", False, "es", True),  # on WhatsApp only we can confirm
        ("STOP", "whatsapp", False, "en", True),
    ],
)
@pytest.mark.parametrize("mid_survey", [False, True], ids=["no-conversation", "mid-survey"])
def test_opt_out_records_and_confirms_unless_twilio_does(
    engine, text, channel, twilio, language, confirmation, mid_survey
):
    contact = worker(language, is_menu_open=True)
    conv = talking(pending="paid", language="en" if language == "en" else "es")
    conv = conv if mid_survey else None
    out = step(engine, contact, conv, text, channel=channel, twilio=twilio)
    expected = [system(language, channel).opted_out()] if confirmation else []
    assert out.replies == expected
    assert contact.is_opted_out and not contact.is_menu_open
    assert out.conversation is None and out.answers == []
    if conv is not None:
        assert conv.status == "opted_out" and out.ended == [conv]


def test_stop_as_a_first_message_creates_the_contact_opted_out(engine):
    contact = ContactState(is_new=True)
    out = step(engine, contact, None, "STOP")
    assert out.replies == [] and contact.is_opted_out and not contact.is_menu_open


@pytest.mark.parametrize(
    ("text", "media"),
    [
        ("hola", False),
        ("TRABAJO", False),
        ("IDIOMA", False),
        ("SALTAR", False),
        ("1", False),
        ("STOP", False),
        ("PARAR", False),
        ("", True),
    ],
)
def test_nothing_is_sent_while_opted_out(engine, text, media):
    contact = worker(is_opted_out=True)
    out = step(engine, contact, None, text, media=media)
    assert out.replies == [] and out.conversation is None
    assert contact.is_opted_out and not contact.is_menu_open and contact.last_nudged_at is None


@pytest.mark.parametrize(
    ("text", "channel", "confirmation"),
    [
        ("START", "sms", False),  # Twilio confirms its own words on SMS
        ("unstop", "sms", False),
        ("YES", "sms", False),
        ("ALTA", "sms", True),
        ("Inicio", "sms", True),
        ("START", "whatsapp", True),
    ],
)
def test_opt_in_while_opted_out_confirms_once_and_resumes_no_survey(
    engine, text, channel, confirmation
):
    contact = worker(is_opted_out=True)
    out = step(engine, contact, None, text, channel=channel)
    assert out.replies == ([system("es", channel).opted_in()] if confirmation else [])
    assert not contact.is_opted_out and out.conversation is None


@pytest.mark.parametrize(
    ("text", "conversation", "expected"),
    [
        ("START", lambda: None, lambda: system("es").no_conversation(KEYWORDS["es"])),
        (
            "ALTA",
            lambda: talking(pending="paid"),
            lambda: said(system("es").hint_yes_no(), shown("paid")),
        ),
        ("YES", lambda: talking(pending="paid"), lambda: shown("hours")),
    ],
    ids=["no-conversation", "a-miss", "an-answer"],
)
def test_opt_in_words_are_ordinary_text_when_not_opted_out(engine, text, conversation, expected):
    contact = worker()
    out = step(engine, contact, conversation(), text)
    assert replies(out) == expected()
    assert not contact.is_opted_out


# -- help and distress -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "language", "urgent"),
    [
        ("AYUDA", "es", None),
        ("help", "en", None),
        ("Info", "es", None),
        ("ÈD", "ht", None),
        ("ED", "ht", None),
        ("AIDE", "ht", None),
        ("EDE", "ht", None),
        ("¡Auxilio!", "es", "distress"),
        ("SOCORRO", "es", "distress"),
        ("ayúdenme", "es", "distress"),
        ("AYUDAME", "es", "distress"),
        ("ANMWE", "ht", "distress"),
        ("help me", "en", "distress"),
    ],
)
@pytest.mark.parametrize("state", ["no-conversation", "mid-survey", "opted-out"])
def test_help_and_distress_keywords_get_the_help_text_at_any_step(
    engine, text, language, urgent, state
):
    contact = worker(language, is_opted_out=state == "opted-out")
    survey, pending = ("work", "paid") if language == "en" else ("housing", "water")
    conv = talking(survey, pending, language, misses=["x"]) if state == "mid-survey" else None
    out = step(engine, contact, conv, text)
    help_text = system(language).help()
    assert replies(out) == (said(help_text, shown(pending, language)) if conv else help_text)
    assert out.urgent_topic == urgent
    assert contact.is_opted_out == (state == "opted-out")
    if conv is not None:
        assert conv.misses == ["x"] and conv.pending == pending and out.answers == []


def test_the_help_text_keeps_its_accents_on_whatsapp(engine):
    out = step(engine, worker(), None, "AYUDA", channel="whatsapp")
    assert out.replies == [texts("es").help()]


# -- skip ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pending", "then"),
    [("state", "paid"), ("paid", "hours"), ("hours", "comments"), ("comments", None)],
)
@pytest.mark.parametrize("word", ["SALTAR", "skip", "Sote", "saltar."])
def test_skip_skips_any_question(engine, pending, then, word):
    contact, conv = worker(), talking(pending=pending, misses=["x"])
    out = step(engine, contact, conv, word)
    assert records(out) == [(pending, "skipped", None, word)]
    assert conv.pending == then and conv.misses == []
    if then is None:
        assert replies(out) == said(CLOSING["es"], system("es").may_delete())
    else:
        assert replies(out) == shown(then)
    assert contact.profile == {}


def test_skipping_a_re_asked_profile_question_keeps_the_known_value(engine):
    contact = worker(profile={"state": "FL"})
    conv = talking(pending="state")
    out = step(engine, contact, conv, "SALTAR")
    assert records(out) == [("state", "profile", "FL", None)]
    assert contact.profile == {"state": "FL"}


def test_skip_outside_a_conversation_is_ordinary_text(engine):
    out = step(engine, worker(), None, "SALTAR")
    assert out.replies == [system("es").no_conversation(KEYWORDS["es"])]


# -- erase -----------------------------------------------------------------------------------


@pytest.mark.parametrize("word", ["BORRAR", "delete", "Erase", "EFASE"])
@pytest.mark.parametrize("mid_survey", [False, True], ids=["no-conversation", "mid-survey"])
def test_the_erase_keyword_asks_for_confirmation_and_erases_nothing_yet(engine, word, mid_survey):
    contact = worker()
    conv = talking(pending="paid", misses=["x"]) if mid_survey else None
    out = step(engine, contact, conv, word)
    assert out.replies == [system("es").erase_confirm()]
    assert contact.erase_requested and not out.erase
    assert out.conversation is conv and out.answers == []
    if conv is not None:
        assert conv.is_open and conv.pending == "paid" and conv.misses == ["x"]


@pytest.mark.parametrize("text", ["1", "sí", "Yes", "1."])
def test_1_confirms_the_erasure(engine, text):
    contact = worker(erase_requested=True)
    out = step(engine, contact, talking(pending="paid"), text)
    assert out.erase and out.replies == [system("es").erased()]
    assert out.answers == []


@pytest.mark.parametrize(
    ("text", "expected", "recorded"),
    [
        ("2", lambda: shown("problems"), [("paid", "answered", "no", "2")]),
        ("hola", lambda: said(system("es").hint_yes_no(), shown("paid")), []),
        ("AYUDA", lambda: said(system("es").help(), shown("paid")), []),
    ],
    ids=["an-answer", "a-miss", "help"],
)
def test_any_other_reply_cancels_the_erasure_and_is_handled_as_usual(
    engine, text, expected, recorded
):
    contact = worker(erase_requested=True)
    conv = talking(pending="paid")
    out = step(engine, contact, conv, text)
    assert not out.erase and not contact.erase_requested
    assert replies(out) == expected()
    # "2" is a no to the erasure and, read as usual, the answer to the pending question.
    assert records(out) == recorded


def test_the_erase_keyword_closes_the_language_menu(engine):
    # The confirmation replaced the menu on the worker's screen: "2" then means "do not erase",
    # not English.
    contact = worker(is_menu_open=True)
    step(engine, contact, None, "BORRAR")
    assert not contact.is_menu_open
    out = step(engine, contact, None, "2")
    assert not out.erase and contact.language == "es"
    assert out.replies == [system("es").no_conversation(KEYWORDS["es"])]


@pytest.mark.parametrize("word", ["BORRAR", "DELETE"])
def test_the_erase_keyword_while_opted_out_erases_at_once_and_sends_nothing(engine, word):
    contact = worker(is_opted_out=True)
    out = step(engine, contact, None, word)
    assert out.erase and out.replies == []
    assert contact.is_opted_out and not contact.erase_requested
