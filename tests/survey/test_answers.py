"""Answer parsing: tables of replies per question type and language, hits and misses."""

from __future__ import annotations

import pytest

from engage.survey.answers import (
    Answer,
    number_words,
    parse_answer,
    parse_number,
    parse_yes_no,
)
from engage.survey.definition import Choice, Question

ES_EN = ("es", "en")
ES_HT = ("es", "ht")

STATE = Question(
    "state",
    "choice",
    {"es": "¿En qué estado trabaja?", "en": "Which state do you work in?"},
    choices=(
        Choice("CA", {"es": "California", "en": "California"}, {"es": ("cali",)}),
        Choice("FL", {"es": "Florida", "en": "Florida"}),
        Choice("MI", {"es": "Michoacán", "en": "Michoacan"}),
        Choice("other", {"es": "Otro estado", "en": "Another state"}, {"es": ("otro",)}),
    ),
)

PROBLEMS = Question(
    "problems",
    "multi",
    {"es": "¿Qué problemas?", "en": "Which problems?"},
    choices=(
        Choice("water", {"es": "Falta de agua", "en": "No water"}, {"es": ("agua",)}),
        Choice("pay", {"es": "Pago tarde", "en": "Late pay"}),
        Choice("food", {"es": "Frutas y verduras", "en": "Fruit and vegetables"}),
        Choice("heat", {"es": "Calor", "en": "Heat"}, {"en": ("hot",)}),
        Choice("none", {"es": "Ninguno", "en": "None"}),
        Choice("count", {"es": "Número de horas", "en": "Hours"}),
    ),
)

PAID = Question("paid_on_time", "yes_no", {"es": "¿Le pagan a tiempo?", "en": "Paid on time?"})
HOURS = Question("hours", "number", {"es": "¿Cuántas horas?", "en": "How many hours?"}, max=120)
HOURS_FROM_ZERO = Question("hours", "number", {"es": "¿Horas?"}, min=0, max=120)
COMMENTS = Question("comments", "text", {"es": "¿Comentarios?"}, optional=True)


# --- numbers ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("40", 40),
        (" 40 ", 40),
        ("40.", 40),
        ("#40", 40),
        ("007", 7),
        ("40.5", 40.5),
        ("40,5", 40.5),
        ("40,25", 40.25),
        ("3.14159", 3.14159),
        ("1,000", 1000),
        ("1.000", 1000),
        ("1,000,000", 1_000_000),
        ("1,000.50", 1000.5),
        ("1.000,5", 1000.5),
        ("0,500", 0.5),  # a leading zero never starts thousands
        ("unas 60 horas", 60),
        ("about 40 hours", 40),
        ("Trabajo 50 horas a la semana.", 50),
        ("60h", 60),
        ("un poco más de 40", 40),  # "un" is an article here, not a second number
        ("60hrs", 60),
        ("$15", 15),
        ("-5", -5),
        ("５０", 50),  # full-width digits from some phone keyboards
        ("5 mil", 5000),
        ("2 thousand", 2000),
        ("40 y media", 40.5),
        ("cuarenta y medio", 40.5),
        ("forty and a half", 40.5),
    ],
)
def test_parse_number_reads_digits(text: str, expected: float) -> None:
    assert parse_number(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "horas",
        "muchas",
        "40 o 50",
        "40, 50",
        "40-50",
        "entre 40 y 50",
        "40 horas 5 dias",
        "cuarenta o cincuenta",
        "dos y tres",
        "treinta y mil",
        "cinco seis",
        "forty fifty",
        "1,2,3",
        "1,000,00",
        "7:30",
        "una semana",  # "una" is an article unless it is the whole message
        "en",  # Haitian Creole "one" only in a survey with ht
        "de",
        "twa",
    ],
)
def test_parse_number_misses_none_or_several(text: str) -> None:
    assert parse_number(text) is None


ES_0_TO_20 = (
    "cero uno dos tres cuatro cinco seis siete ocho nueve diez once doce trece catorce quince "
    "dieciséis diecisiete dieciocho diecinueve veinte"
).split()
EN_0_TO_20 = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen twenty"
).split()
HT_0_TO_20 = (
    "zewo en de twa kat senk sis sèt uit nèf dis onz douz trèz katòz kenz sèz disèt dizuit "
    "diznèf ven"
).split()


@pytest.mark.parametrize(("expected", "word"), list(enumerate(ES_0_TO_20)))
def test_parse_number_reads_spanish_words_to_twenty(expected: int, word: str) -> None:
    assert parse_number(word) == expected
    assert parse_number(word.upper() + "!") == expected


@pytest.mark.parametrize(("expected", "word"), list(enumerate(EN_0_TO_20)))
def test_parse_number_reads_english_words_to_twenty(expected: int, word: str) -> None:
    assert parse_number(word) == expected
    assert parse_number(f"{word.capitalize()} hours") == expected


@pytest.mark.parametrize(("expected", "word"), list(enumerate(HT_0_TO_20)))
def test_parse_number_reads_haitian_words_only_in_haitian_surveys(expected: int, word: str) -> None:
    assert parse_number(word, ES_HT) == expected
    assert parse_number(word, ES_EN) is None


ES_TENS = {30: "treinta", 40: "cuarenta", 50: "cincuenta", 60: "sesenta", 70: "setenta"} | {
    80: "ochenta",
    90: "noventa",
}
EN_TENS = {20: "twenty", 30: "thirty", 40: "forty", 50: "fifty", 60: "sixty", 70: "seventy"} | {
    80: "eighty",
    90: "ninety",
}
ES_COMPOUNDS = [(f"{ES_TENS[t]} y {ES_0_TO_20[u]}", t + u) for t in ES_TENS for u in range(1, 10)]
EN_COMPOUNDS = [(f"{EN_TENS[t]}-{EN_0_TO_20[u]}", t + u) for t in EN_TENS for u in range(1, 10)]


@pytest.mark.parametrize(("text", "expected"), ES_COMPOUNDS)
def test_parse_number_reads_spanish_compounds(text: str, expected: int) -> None:
    assert parse_number(text) == expected


@pytest.mark.parametrize(("text", "expected"), EN_COMPOUNDS)
def test_parse_number_reads_english_compounds_hyphenated_or_not(text: str, expected: int) -> None:
    assert parse_number(text) == expected
    assert parse_number(text.replace("-", " ")) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("veintiuno", 21),
        ("veintiún", 21),
        ("veintidós", 22),
        ("veintidos", 22),
        ("veintitrés", 23),
        ("veinticuatro", 24),
        ("veinticinco", 25),
        ("veintiséis", 26),
        ("veintisiete", 27),
        ("veintiocho", 28),
        ("veintinueve", 29),
        ("treinta", 30),
        ("cuarenta", 40),
        ("noventa", 90),
        ("cien", 100),
        ("Cuarenta y cinco horas", 45),
        ("unas cuarenta y cinco", 45),
        ("treinta y un días", 31),
        ("treinta cinco", 35),  # written as spoken, without "y"
        ("ciento veinte", 120),
        ("ciento cinco", 105),
        ("doscientos cincuenta", 250),
        ("dos mil", 2000),
        ("mil quinientos", 1500),
        ("sinco", 5),
        ("beinte", 20),
        ("un", 1),
        ("una", 1),
        ("fifty", 50),
        ("one hundred", 100),
        ("a hundred", 100),
        ("one hundred and five", 105),
        ("one hundred twenty", 120),
        ("a thousand", 1000),
        ("about forty-five hours", 45),
    ],
)
def test_parse_number_reads_other_spelled_numbers(text: str, expected: int) -> None:
    assert parse_number(text) == expected


def test_number_words_are_exposed_per_language() -> None:
    assert number_words("es")["veintidos"] == 22
    assert number_words("en")["forty"] == 40
    assert number_words("ht")["set"] == 7
    assert number_words("mix") == {}


def test_number_words_returns_a_copy() -> None:
    number_words("es")["cuarenta"] = 4
    assert parse_number("cuarenta") == 40


@pytest.mark.parametrize(
    ("question", "text", "expected"),
    [
        (HOURS, "40", 40),
        (HOURS, "40,5", 40.5),
        (HOURS, "cuarenta y cinco", 45),
        (HOURS, "120", 120),
        (HOURS, "ciento veinte", 120),
        (HOURS, "-3", -3),  # no min: any number up to max
        (HOURS_FROM_ZERO, "0", 0),  # 0 is a number here, never a skip
        (HOURS_FROM_ZERO, "cero", 0),
    ],
)
def test_number_question_stores_the_number(question: Question, text: str, expected: float) -> None:
    answer = parse_answer(question, text, ES_EN)
    assert answer == Answer(expected)
    assert type(answer.value) is type(expected)  # int when integral, else float


@pytest.mark.parametrize(
    ("question", "text"),
    [
        (HOURS, "121"),
        (HOURS, "ciento veintiuno"),
        (HOURS, "1,000"),
        (HOURS_FROM_ZERO, "-1"),
        (HOURS, "40 o 50"),
        (HOURS, "muchas"),
        (HOURS, ""),
    ],
)
def test_number_question_misses_out_of_range_or_unreadable(question: Question, text: str) -> None:
    assert parse_answer(question, text, ES_EN) is None


def test_number_question_reads_haitian_words_in_haitian_surveys() -> None:
    assert parse_answer(HOURS, "dis", ("ht",)) == Answer(10)
    assert parse_answer(HOURS, "dis", ES_EN) is None


# --- choice -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1", "CA"),
        ("2", "FL"),
        ("2.", "FL"),
        ("#2", "FL"),
        (" 2 ", "FL"),
        ("(2)", "FL"),
        ("- 2", "FL"),  # a list bullet
        ("dos", "FL"),
        ("Dos", "FL"),
        ("two", "FL"),
        ("opción 2", "FL"),
        ("option 2", "FL"),
        ("número 2", "FL"),
        ("opcion dos", "FL"),
        ("4", "other"),
        ("cuatro", "other"),
        ("uno", "CA"),
        ("un", "CA"),
        ("CA", "CA"),
        ("ca", "CA"),
        ("other", "other"),
        ("California", "CA"),
        ("CALIFORNIA!", "CA"),
        ("california.", "CA"),
        ("Cáli", "CA"),
        ("cali", "CA"),
        ("michoacan", "MI"),
        ("MICHOACÁN", "MI"),
        ("otro", "other"),
        ("Otro estado", "other"),
        ("otro  ESTADO", "other"),
        ("Another state", "other"),
        ("2 Florida", "FL"),  # the list's line copied
        ("2. Florida", "FL"),
        ("3 Michoacán", "MI"),
        ("la 2", "FL"),
        ("the 2", "FL"),
        ("Florida, gracias", "FL"),
        ("pues otro", "other"),
        ("4 Otro estado gracias", "other"),
    ],
)
def test_choice_accepts_number_value_label_or_match(text: str, expected: str) -> None:
    assert parse_answer(STATE, text, ES_EN) == Answer(expected)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "  ",
        "?!",
        "0",  # never a skip, and not a choice
        "cero",
        "5",
        "cinco",
        "12",
        "2.5",
        "1 2",
        "1 Florida",  # the number and the label disagree
        "Florida 2",
        "la 5",
        "el Texas",
        "gracias",
        "Texas",
        "cal",
        "otro estado más",
        "en",  # Haitian Creole "one" only in a survey with ht
    ],
)
def test_choice_misses(text: str) -> None:
    assert parse_answer(STATE, text, ES_EN) is None


def test_choice_reads_haitian_number_words_in_haitian_surveys() -> None:
    assert parse_answer(STATE, "de", ES_HT) == Answer("FL")
    assert parse_answer(STATE, "twa", ES_HT) == Answer("MI")


def test_choice_shown_number_wins_over_a_numeric_label() -> None:
    children = Question(
        "children",
        "choice",
        {"es": "¿Cuántos hijos?"},
        choices=(
            Choice("zero", {"es": "0"}),
            Choice("one", {"es": "1"}),
            Choice("two", {"es": "2"}),
            Choice("more", {"es": "3 o más"}),
        ),
    )
    assert parse_answer(children, "2", ES_EN) == Answer("one")
    assert parse_answer(children, "3 o mas", ES_EN) == Answer("more")


def test_choice_value_wins_over_another_choice_label() -> None:
    question = Question(
        "q",
        "choice",
        {"es": "?"},
        choices=(Choice("no", {"es": "Ninguno"}), Choice("never", {"es": "No"})),
    )
    assert parse_answer(question, "no", ES_EN) == Answer("no")
    assert parse_answer(question, "ninguno", ES_EN) == Answer("no")


# --- multi --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1", ("water",)),
        ("agua", ("water",)),
        ("1 3", ("water", "food")),
        ("1,3", ("water", "food")),
        ("1, 3", ("water", "food")),
        ("1 y 3", ("water", "food")),
        ("1 Y 3.", ("water", "food")),
        ("2 and 4", ("pay", "heat")),
        ("1 e 3", ("water", "food")),
        ("1 et 3", ("water", "food")),
        ("1 ak 3", ("water", "food")),
        ("1 & 4", ("water", "heat")),
        ("1;2/4", ("water", "pay", "heat")),
        ("uno y tres", ("water", "food")),
        ("one and two", ("water", "pay")),
        ("4 2", ("pay", "heat")),  # stored in choice order
        ("2 2 2", ("pay",)),  # without duplicates
        ("Frutas y verduras", ("food",)),  # a whole label with "y" in it
        ("frutas y verduras y calor", ("food", "heat")),
        ("falta de agua, pago tarde", ("water", "pay")),
        ("Falta de agua y CALOR", ("water", "heat")),
        ("no water and late pay", ("water", "pay")),
        ("hot, 2", ("pay", "heat")),
        ("opciones 1 y 3", ("water", "food")),
        ("food", ("food",)),
        ("numero de horas y 2", ("pay", "count")),  # a label that starts like "número 2"
    ],
)
def test_multi_accepts_combinations(text: str, expected: tuple[str, ...]) -> None:
    assert parse_answer(PROBLEMS, text, ES_EN) == Answer(expected)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "0",
        "1 0",
        "7",
        "1 7",
        "1 o 3",
        "1 de 3",
        "1 Texas",
        "y",
        "and",
        "frutas",
        "1 2 mucho calor",
    ],
)
def test_multi_misses_when_any_piece_is_unknown(text: str) -> None:
    assert parse_answer(PROBLEMS, text, ES_HT) is None


# --- yes / no -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("sí", "yes"),
        ("si", "yes"),
        ("SÍ!", "yes"),
        ("¡Sí!", "yes"),
        ("s", "yes"),
        ("claro", "yes"),
        ("claro que sí", "yes"),
        ("correcto", "yes"),
        ("sí, sí", "yes"),
        ("no", "no"),
        ("NO.", "no"),
        ("n", "no"),
        ("no no", "no"),
        ("yes", "yes"),
        ("YES", "yes"),  # also the opt-in keyword, which only counts while opted out
        ("y", "yes"),
        ("yeah", "yes"),
        ("yep", "yes"),
        ("nope", "no"),
        ("1", "yes"),
        ("2", "no"),
        ("1.", "yes"),
        ("uno", "yes"),
        ("dos", "no"),
        ("one", "yes"),
        ("two", "no"),
        ("1 Sí", "yes"),
        ("2 No", "no"),
        ("opción 1", "yes"),
    ],
)
def test_yes_no_accepts_spanish_english_and_numbers(text: str, expected: str) -> None:
    assert parse_answer(PAID, text, ES_EN) == Answer(expected)
    assert parse_answer(PAID, text, ("mix",)) == Answer(expected)  # es and en always count


@pytest.mark.parametrize(
    ("text", "languages", "expected"),
    [
        ("wi", ("ht",), "yes"),
        ("Wi!", ("es", "ht"), "yes"),
        ("non", ("ht",), "no"),
        ("oui", ("ht",), "yes"),
        ("en", ("ht",), "yes"),
        ("de", ("ht",), "no"),
        ("oui", ("fr",), "yes"),
        ("non", ("fr",), "no"),
        ("1", ("ht",), "yes"),
        ("2", ("ht",), "no"),
    ],
)
def test_yes_no_accepts_words_of_the_survey_languages(
    text: str, languages: tuple[str, ...], expected: str
) -> None:
    assert parse_answer(PAID, text, languages) == Answer(expected)


@pytest.mark.parametrize(
    "text",
    ["", "0", "3", "tres", "no sé", "si no", "1 no", "quizás", "ok", "a veces", "wi", "non", "en"],
)
def test_yes_no_misses(text: str) -> None:
    assert parse_answer(PAID, text, ES_EN) is None


def test_parse_yes_no_is_usable_on_its_own() -> None:
    assert parse_yes_no("Sí", ES_EN) == "yes"
    assert parse_yes_no("non", ("ht",)) == "no"
    assert parse_yes_no("talvez", ES_EN) is None


# --- text ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("  Me pagan tarde.  ", "Me pagan tarde."),
        ("ÁGUA SUCIA", "ÁGUA SUCIA"),
        ("0", "0"),
        ("?", "?"),
    ],
)
def test_text_keeps_the_original_text_stripped(text: str, expected: str) -> None:
    assert parse_answer(COMMENTS, text, ES_EN) == Answer(expected)


@pytest.mark.parametrize("text", ["", "   ", "\n\t"])
def test_text_misses_when_empty(text: str) -> None:
    assert parse_answer(COMMENTS, text, ES_EN) is None


def test_unknown_question_type_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown question type"):
        parse_answer(Question("q", "date", {"es": "?"}), "hoy", ES_EN)


def test_answer_is_frozen() -> None:
    answer = Answer("yes")
    with pytest.raises(AttributeError):
        answer.value = "no"  # type: ignore[misc]


# --- replies workers send ----------------------------------------------------------------------

H2A_STATES = Question(
    "state",
    "choice",
    {"es": "¿En qué estado trabaja?", "en": "Which state?", "ht": "Nan ki eta?"},
    choices=(
        Choice("FL", {"es": "Florida", "en": "Florida", "ht": "Florid"}),
        Choice("GA", {"es": "Georgia", "en": "Georgia", "ht": "Georgia"}),
        Choice("NC", {"es": "Carolina del Norte", "en": "North Carolina", "ht": "Kawolin di Nò"}),
        Choice("WA", {"es": "Washington", "en": "Washington", "ht": "Washington"}),
        Choice("other", {"es": "Otro", "en": "Other", "ht": "Lòt"}),
    ),
)
ES_EN_HT = ("es", "en", "ht")


@pytest.mark.parametrize(
    ("text", "languages", "expected"),
    [
        ("no gracias", ES_EN, "no"),
        ("No, gracias.", ES_EN, "no"),
        ("sí señor", ES_EN, "yes"),
        ("Si señora", ES_EN, "yes"),
        ("si gracias", ES_EN, "yes"),
        ("pues si", ES_EN, "yes"),
        ("pues no", ES_EN, "no"),
        ("yes thank you", ES_EN, "yes"),
        ("no thanks", ES_EN, "no"),
        ("wi mèsi", ES_HT, "yes"),
        ("Wi, mesi anpil", ES_HT, "yes"),
        ("non mèsi", ES_HT, "no"),
    ],
)
def test_yes_no_reads_courtesy_words_around_the_answer(
    text: str, languages: tuple[str, ...], expected: str
) -> None:
    assert parse_answer(PAID, text, languages) == Answer(expected)


@pytest.mark.parametrize(
    ("text", "languages", "expected"),
    [
        ("sii", ES_EN, "yes"),
        ("Siiii", ES_EN, "yes"),
        ("ci", ES_EN, "yes"),
        ("ajá", ES_EN, "yes"),
        ("aja", ES_EN, "yes"),
        ("nooo", ES_EN, "no"),
        ("dakò", ES_HT, "yes"),
        ("dako", ("ht",), "yes"),
        ("wè", ES_HT, "yes"),
        ("wiii", ES_HT, "yes"),
    ],
)
def test_yes_no_reads_spelling_variants(
    text: str, languages: tuple[str, ...], expected: str
) -> None:
    assert parse_answer(PAID, text, languages) == Answer(expected)


@pytest.mark.parametrize(
    ("text", "languages"),
    [
        ("gracias", ES_EN),  # courtesy alone answers nothing
        ("pues", ES_EN),
        ("mèsi", ES_HT),
        ("no sé gracias", ES_EN),
        ("si no gracias", ES_EN),
        ("dakò", ES_EN),  # Haitian Creole words only in a survey with ht
        ("wè", ES_EN),
        ("wi mèsi", ES_EN),
    ],
)
def test_yes_no_still_misses(text: str, languages: tuple[str, ...]) -> None:
    assert parse_answer(PAID, text, languages) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [("2 dos", "no"), ("1 sí", "yes"), ("1️⃣", "yes"), ("2️⃣", "no"), ("simon", "yes"), ("nel", "no")],
)
def test_yes_no_keeps_reading_what_it_read_before(text: str, expected: str) -> None:
    assert parse_answer(PAID, text, ES_EN) == Answer(expected)


@pytest.mark.parametrize(
    ("text", "languages", "expected"),
    [
        ("1 Florida", ES_EN, "FL"),
        ("4 Washington", ES_EN, "WA"),
        ("3 Carolina del Norte", ES_EN, "NC"),
        ("3 North Carolina", ES_EN, "NC"),
        ("3) Carolina del norte", ES_EN, "NC"),
        ("1 Florid", ES_HT, "FL"),
        ("5 Lòt", ES_HT, "other"),
        ("el 2", ES_EN, "GA"),
        ("la 3", ES_EN, "NC"),
        ("el dos", ES_EN, "GA"),
        ("la tres", ES_EN, "NC"),
        ("El 4 gracias", ES_EN, "WA"),
        ("the 4", ES_EN, "WA"),
        ("4 mèsi", ES_HT, "WA"),
        ("1 Florida, gracias", ES_EN, "FL"),
    ],
)
def test_choice_reads_the_list_line_articles_and_courtesy(
    text: str, languages: tuple[str, ...], expected: str
) -> None:
    assert parse_answer(H2A_STATES, text, languages) == Answer(expected)


@pytest.mark.parametrize(
    ("text", "languages"),
    [
        ("2 Florida", ES_EN),
        ("4 Florida", ES_EN),
        ("1 Washington", ES_HT),
        ("el 6", ES_EN),
        ("la Texas", ES_EN),
        ("1 Florida 2", ES_EN),
        ("gracias", ES_EN),
        ("mèsi", ES_HT),
    ],
)
def test_choice_misses_a_disagreeing_line_or_nothing_but_courtesy(
    text: str, languages: tuple[str, ...]
) -> None:
    assert parse_answer(H2A_STATES, text, languages) is None


@pytest.mark.parametrize(
    ("text", "languages", "expected"),
    [
        ("1y3", ES_EN, ("water", "food")),
        ("1Y3", ES_EN, ("water", "food")),
        ("2and4", ES_EN, ("pay", "heat")),
        ("1et3", ES_HT, ("water", "food")),
        ("1e3", ES_HT, ("water", "food")),
        ("1ak3", ES_HT, ("water", "food")),
        ("el 1 y el 3", ES_EN, ("water", "food")),
        ("1 y 3, gracias", ES_EN, ("water", "food")),
        ("1 ak 3 mèsi", ES_HT, ("water", "food")),
    ],
)
def test_multi_splits_between_digits_and_letters_and_reads_courtesy(
    text: str, languages: tuple[str, ...], expected: tuple[str, ...]
) -> None:
    assert parse_answer(PROBLEMS, text, languages) == Answer(expected)


@pytest.mark.parametrize("text", ["1y7", "1x3", "1y3x", "13y"])
def test_multi_split_misses_when_a_piece_is_unknown(text: str) -> None:
    assert parse_answer(PROBLEMS, text, ES_EN) is None


# --- exclusive choices --------------------------------------------------------------------------

HOUSING = Question(
    "housing",
    "multi",
    {"es": "¿Qué problemas hay en su vivienda?", "en": "Which housing problems?"},
    choices=(
        Choice("crowded", {"es": "Mucha gente", "en": "Crowded"}),
        Choice("water", {"es": "Sin agua", "en": "No water"}),
        Choice("rats", {"es": "Ratas o chinches", "en": "Rats or bedbugs"}),
        Choice("none", {"es": "Ninguno", "en": "None"}, {"es": ("no",)}, exclusive=True),
        Choice("unsaid", {"es": "Prefiero no decir", "en": "Prefer not to say"}, exclusive=True),
    ),
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("4", ("none",)),
        ("ninguno", ("none",)),
        ("no", ("none",)),
        ("no gracias", ("none",)),
        ("5", ("unsaid",)),
        ("4 4", ("none",)),
        ("1 y 3", ("crowded", "rats")),
        ("1y2y3", ("crowded", "water", "rats")),
    ],
)
def test_multi_exclusive_choice_alone_is_an_answer(text: str, expected: tuple[str, ...]) -> None:
    assert parse_answer(HOUSING, text, ES_EN) == Answer(expected)


@pytest.mark.parametrize(
    "text", ["1 4", "4 1", "1 y ninguno", "mucha gente, ninguno", "4 5", "2y4", "no y 3"]
)
def test_multi_exclusive_choice_with_others_is_a_miss(text: str) -> None:
    assert parse_answer(HOUSING, text, ES_EN) is None


def test_multi_without_exclusive_takes_any_combination() -> None:
    assert parse_answer(PROBLEMS, "1 5", ES_EN) == Answer(("water", "none"))


# --- wrong units --------------------------------------------------------------------------------

WEEKLY_HOURS = Question(
    "hours_week",
    "number",
    {"es": "¿Cuántas horas trabajó la semana pasada?", "en": "Hours last week?", "ht": "Konbyen?"},
    min=0,
    max=120,
    wrong_units={"es": ("día", "diario"), "en": ("day", "daily"), "ht": ("jou",)},
)
DAILY_HOURS = Question(
    "hours_day",
    "number",
    {"es": "¿Cuántas horas trabaja en un día normal?", "en": "Hours a day?", "ht": "Konbyen?"},
    min=0,
    max=24,
    wrong_units={"es": ("semana", "semanal"), "en": ("week", "weekly"), "ht": ("semèn",)},
)


@pytest.mark.parametrize(
    ("question", "text"),
    [
        (WEEKLY_HOURS, "10 horas al día"),
        (WEEKLY_HOURS, "10 horas al dia"),
        (WEEKLY_HOURS, "10 HORAS AL DÍA"),
        (WEEKLY_HOURS, "12 por dia"),
        (WEEKLY_HOURS, "6 dias"),
        (WEEKLY_HOURS, "10hrs/dia"),
        (WEEKLY_HOURS, "10 diario"),
        (WEEKLY_HOURS, "diez horas al día"),
        (WEEKLY_HOURS, "10 hours a day"),
        (WEEKLY_HOURS, "6 days"),
        (WEEKLY_HOURS, "10 daily"),
        (WEEKLY_HOURS, "10 è pa jou"),
        (WEEKLY_HOURS, "dis è pa jou"),
        (DAILY_HOURS, "10 a la semana"),
        (DAILY_HOURS, "10 por semana"),
        (DAILY_HOURS, "10 semanas"),
        (DAILY_HOURS, "10 semanal"),
        (DAILY_HOURS, "10 a week"),
        (DAILY_HOURS, "10 weekly"),
        (DAILY_HOURS, "10 pa semèn"),
        (DAILY_HOURS, "10 pa semen"),
    ],
)
def test_number_naming_a_wrong_unit_is_a_miss(question: Question, text: str) -> None:
    assert parse_answer(question, text, ES_EN_HT) is None


@pytest.mark.parametrize(
    ("question", "text", "expected"),
    [
        (WEEKLY_HOURS, "50", 50),
        (WEEKLY_HOURS, "50 horas", 50),
        (WEEKLY_HOURS, "50 horas a la semana", 50),
        (WEEKLY_HOURS, "50 hours a week", 50),
        (WEEKLY_HOURS, "senkant", 50),
        (WEEKLY_HOURS, "unas 60 horas, diarias no sé", 60),  # "diarias" is not "diario"
        (DAILY_HOURS, "10 horas al día", 10),
        (DAILY_HOURS, "10 hours a day", 10),
        (DAILY_HOURS, "10 è pa jou", 10),
        (DAILY_HOURS, "diez", 10),
    ],
)
def test_number_without_a_wrong_unit_is_read(
    question: Question, text: str, expected: float
) -> None:
    assert parse_answer(question, text, ES_EN_HT) == Answer(expected)


def test_wrong_units_count_in_every_language_of_the_question() -> None:
    spanish_only = ("es",)
    assert parse_answer(WEEKLY_HOURS, "10 jou", spanish_only) is None
    assert parse_answer(WEEKLY_HOURS, "10 a day", spanish_only) is None


def test_number_question_without_wrong_units_reads_any_unit() -> None:
    assert parse_answer(HOURS, "10 horas al día", ES_EN) == Answer(10)


# --- number words to 100 in every language ------------------------------------------------------

_ES_UNITS = "uno dos tres cuatro cinco seis siete ocho nueve".split()
ES_0_TO_100 = [
    *ES_0_TO_20,
    *"veintiuno veintidós veintitrés veinticuatro veinticinco veintiséis veintisiete "
    "veintiocho veintinueve".split(),
    *(
        name
        for ten in ("treinta", "cuarenta", "cincuenta", "sesenta", "setenta", "ochenta", "noventa")
        for name in (ten, *(f"{ten} y {unit}" for unit in _ES_UNITS))
    ),
    "cien",
]
_EN_UNITS = "one two three four five six seven eight nine".split()
EN_0_TO_100 = [
    *EN_0_TO_20[:20],
    *(
        name
        for ten in ("twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")
        for name in (ten, *(f"{ten}-{unit}" for unit in _EN_UNITS))
    ),
    "one hundred",
]
# Haitian Creole in its standard spelling.
HT_0_TO_100 = [
    *HT_0_TO_20[:20],
    *"ven venteyen vennde venntwa vennkat vennsenk vennsis vennsèt ventuit ventnèf".split(),
    *"trant tranteyen trannde tranntwa trannkat trannsenk trannsis trannsèt trantuit "
    "trantnèf".split(),
    *"karant karanteyen karannde karanntwa karannkat karannsenk karannsis karannsèt karantuit "
    "karantnèf".split(),
    *"senkant senkanteyen senkannde senkanntwa senkannkat senkannsenk senkannsis senkannsèt "
    "senkantuit senkantnèf".split(),
    *"swasant swasanteyen swasannde swasanntwa swasannkat swasannsenk swasannsis swasannsèt "
    "swasantuit swasantnèf".split(),
    *"swasanndis swasannonz swasanndouz swasanntrèz swasannkatòz swasannkenz swasannsèz "
    "swasanndisèt swasanndizuit swasanndiznèf".split(),
    *"katreven katreveneyen katrevende katreventwa katrevenkat katrevensenk katrevensis "
    "katrevensèt katrevenuit katrevennèf".split(),
    *"katrevendis katrevenonz katrevendouz katreventrèz katrevenkatòz katrevenkenz "
    "katrevensèz katrevendisèt katrevendizuit katrevendiznèf".split(),
    "san",
]


def test_number_word_tables_cover_zero_to_a_hundred() -> None:
    assert len(ES_0_TO_100) == len(EN_0_TO_100) == len(HT_0_TO_100) == 101


@pytest.mark.parametrize(("expected", "word"), list(enumerate(ES_0_TO_100)))
def test_parse_number_reads_spanish_words_to_a_hundred(expected: int, word: str) -> None:
    assert parse_number(word, ("es",)) == expected


@pytest.mark.parametrize(("expected", "word"), list(enumerate(EN_0_TO_100)))
def test_parse_number_reads_english_words_to_a_hundred(expected: int, word: str) -> None:
    assert parse_number(word, ("en",)) == expected


@pytest.mark.parametrize(("expected", "word"), list(enumerate(HT_0_TO_100)))
def test_parse_number_reads_haitian_words_to_a_hundred(expected: int, word: str) -> None:
    assert parse_number(word, ("ht",)) == expected
    if word not in ("en", "de"):  # also ordinary words: a number only on their own
        assert parse_number(f"{word} è", ES_HT) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("trant", 30),
        ("Trant!", 30),
        ("trant è", 30),
        ("trant senk", 35),  # written apart
        ("trant-senk", 35),
        ("trantsenk", 35),  # the t kept
        ("transenk", 35),  # the n single
        ("ven de", 22),
        ("trant en", 31),
        ("swasant dis", 70),
        ("swasann dis", 70),
        ("katreven douz", 92),
        ("katreven en", 81),
        ("karant wit", 48),
    ],
)
def test_parse_number_reads_haitian_spelling_variants(text: str, expected: int) -> None:
    assert parse_number(text, ES_HT) == expected


@pytest.mark.parametrize("text", ["trant karant", "ven trant", "katreven dis senk", "trant"])
def test_parse_number_haitian_misses_several_or_outside_haitian_surveys(text: str) -> None:
    languages = ES_EN if text == "trant" else ES_HT
    assert parse_number(text, languages) is None
