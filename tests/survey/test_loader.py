from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from engage.survey.definition import Survey
from engage.survey.expression import Expression
from engage.survey.loader import (
    MAX_FILE_BYTES,
    MAX_TEXT_CHARS,
    Problem,
    find_survey_files,
    load_survey_file,
    load_surveys,
)
from engage.survey.phrases import Count, Phrase

COMPLETE = """\
# Working conditions, as in surveys/README.md
id: working-conditions
title: {es: Condiciones de trabajo, en: Working conditions}
languages: [es, en]
keywords: {es: [TRABAJO, Chamba], en: [WORK]}
repeat: false
whatsapp_template: {es: HX0123456789abcdef0123456789ABCDEF}
intro: {es: "Hola", en: "Hello"}
questions:
  - id: state
    type: choice
    text: {es: "¿En qué estado trabaja?", en: "Which state do you work in?"}
    profile: work_state
    choices:
      - {value: CA, label: {es: California, en: California}, match: {es: [cali]}}
      - {value: other, label: {es: Otro, en: Other}}
  - id: paid_on_time
    type: yes_no
    text: {es: "¿Le pagan a tiempo?", en: "Are you paid on time?"}
  - id: hours
    type: number
    min: 0
    max: 120
    bins: [0, 20, 40.5, 60, 80]
    text: {es: "¿Cuántas horas trabaja?", en: "How many hours do you work?"}
  - id: problems
    type: multi
    when: "paid_on_time == 'no' and work_state in ['CA']"
    text: {es: "¿Qué problemas?", en: "Which problems?"}
    choices:
      - {value: 1, label: {es: Pago tarde, en: Late pay}}
      - {value: "2", label: {es: Pago menor, en: Short pay}}
  - id: comments
    type: text
    optional: true
    text:
      es: no
      en: "Anything else?"
closing: {es: "Gracias", en: "Thank you"}
"""

# Questions given to `with_questions` start on line 6.
HEADER = """\
id: demo
title: {es: Demo, en: Demo}
languages: [es, en]
keywords: {es: [DEMO], en: [DEMOEN]}
questions:
"""


def with_questions(questions: str) -> str:
    return HEADER + textwrap.indent(textwrap.dedent(questions), "  ")


def write(tmp_path: Path, text: str, name: str = "survey.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def load(tmp_path: Path, text: str) -> tuple[Survey | None, list[Problem]]:
    return load_survey_file(write(tmp_path, text))


def errors(problems: list[Problem]) -> list[tuple[int, str]]:
    return [(p.line, p.message) for p in problems if not p.is_warning]


def assert_only_error(problems: list[Problem], line: int, fragment: str) -> None:
    found = errors(problems)
    assert len(found) == 1, found
    assert found[0][0] == line, found
    assert fragment in found[0][1], found


def assert_reports(problems: list[Problem], line: int, fragment: str) -> None:
    found = [(p.line, p.message) for p in problems]
    assert any(ln == line and fragment in message for ln, message in found), found


# --- a valid survey ----------------------------------------------------------------------------


def test_a_complete_survey_loads(tmp_path: Path) -> None:
    survey, problems = load(tmp_path, COMPLETE)
    assert problems == []
    assert survey is not None
    assert survey.id == "working-conditions"
    assert survey.languages == ("es", "en")
    assert survey.default_language == "es"
    assert survey.title == {"es": "Condiciones de trabajo", "en": "Working conditions"}
    assert survey.keywords == {"es": ("TRABAJO", "Chamba"), "en": ("WORK",)}
    assert survey.repeat is False
    assert survey.whatsapp_template == {"es": "HX0123456789abcdef0123456789ABCDEF"}
    assert survey.intro == {"es": "Hola", "en": "Hello"}
    assert survey.closing == {"es": "Gracias", "en": "Thank you"}
    assert [q.id for q in survey.questions] == [
        "state",
        "paid_on_time",
        "hours",
        "problems",
        "comments",
    ]
    state = survey.question("state")
    assert state.profile == "work_state"
    assert [c.value for c in state.choices] == ["CA", "other"]
    assert state.choices[0].match == {"es": ("cali",)}
    assert state.choices[1].label == {"es": "Otro", "en": "Other"}
    hours = survey.question("hours")
    assert (hours.min, hours.max, hours.bins) == (0, 120, (0, 20, 40.5, 60, 80))
    problems_question = survey.question("problems")
    assert [c.value for c in problems_question.choices] == ["1", "2"]
    assert isinstance(problems_question.when, Expression)
    assert problems_question.when_source == "paid_on_time == 'no' and work_state in ['CA']"
    assert problems_question.when.evaluate({"paid_on_time": "no", "work_state": "CA"})
    comments = survey.question("comments")
    assert comments.optional is True
    # YAML 1.2: `no` is text, not a boolean.
    assert comments.text == {"es": "no", "en": "Anything else?"}


def test_the_source_is_plain_json_data(tmp_path: Path) -> None:
    survey, _ = load(tmp_path, COMPLETE)
    assert survey is not None
    assert json.loads(json.dumps(survey.source)) == survey.source
    assert type(survey.source) is dict
    assert type(survey.source["questions"][0]) is dict
    assert type(survey.source["questions"][2]["bins"][2]) is float
    assert survey.source["questions"][4]["text"]["es"] == "no"


def test_the_version_ignores_comments_key_order_and_flow_style(tmp_path: Path) -> None:
    survey, _ = load(tmp_path, COMPLETE)
    assert survey is not None
    assert len(survey.version) == 16
    int(survey.version, 16)

    reshaped = (
        COMPLETE.replace("# Working conditions, as in surveys/README.md\n", "")
        .replace("id: working-conditions\ntitle:", "title:")
        .replace("repeat: false\n", "repeat: false  # asked once\nid: working-conditions\n")
        .replace(
            'intro: {es: "Hola", en: "Hello"}',
            "intro:\n  en: Hello   # English\n  es: 'Hola'",
        )
    )
    assert reshaped != COMPLETE
    again, problems = load_survey_file(write(tmp_path, reshaped, "reshaped.yaml"))
    assert problems == []
    assert again is not None
    assert again.version == survey.version


def test_the_version_changes_with_any_text(tmp_path: Path) -> None:
    survey, _ = load(tmp_path, COMPLETE)
    changed, _ = load_survey_file(
        write(tmp_path, COMPLETE.replace("Late pay", "Paid late"), "changed.yaml")
    )
    assert survey is not None and changed is not None
    assert changed.version != survey.version


def test_the_version_does_not_depend_on_the_file(tmp_path: Path) -> None:
    first, _ = load_survey_file(write(tmp_path, COMPLETE, "a.yaml"))
    second, _ = load_survey_file(write(tmp_path, COMPLETE, "b.yml"))
    assert first is not None and second is not None
    assert first.version == second.version
    assert first == second


# --- the file itself ---------------------------------------------------------------------------


def test_a_yaml_syntax_error_is_one_problem_with_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, "id: demo\ntitle: {es: Demo\nlanguages: [es]\nquestions: []\n")
    survey, problems = load_survey_file(path)
    assert survey is None
    assert len(problems) == 1
    assert problems[0].file == str(path)
    assert problems[0].line == 3
    assert problems[0].message.startswith("invalid YAML: ")


def test_a_duplicate_key_is_a_yaml_problem(tmp_path: Path) -> None:
    survey, problems = load(tmp_path, "id: demo\ntitle: {es: Demo}\nid: other\n")
    assert survey is None
    assert [(p.line, "duplicate key" in p.message) for p in problems] == [(3, True)]


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ("", 1, "the file is empty"),
        ("# nothing but a comment\n", 1, "the file is empty"),
        ("- id: demo\n- title: x\n", 1, "must be a mapping of fields"),
        (
            "just text\n",
            1,
            "must be a mapping of fields (id, title, ...), got the text 'just text'",
        ),
    ],
)
def test_the_top_level_must_be_a_mapping(
    tmp_path: Path, text: str, line: int, fragment: str
) -> None:
    survey, problems = load(tmp_path, text)
    assert survey is None
    assert len(problems) == 1
    assert_reports(problems, line, fragment)


def test_a_file_that_is_not_utf8_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes("id: demo\ntitle: {es: Canción}\n".encode("latin-1"))
    survey, problems = load_survey_file(path)
    assert survey is None
    assert [(p.line, p.message) for p in problems] == [(2, "the file is not UTF-8 text")]


def test_a_missing_file_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "gone.yaml"
    survey, problems = load_survey_file(path)
    assert survey is None
    assert len(problems) == 1
    assert problems[0].file == str(path)
    assert problems[0].message.startswith("cannot read the file")


def test_the_file_name_is_the_path_as_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path, "id: demo\nfoo: 1\n")
    monkeypatch.chdir(tmp_path)
    _, problems = load_survey_file("survey.yaml")
    assert {p.file for p in problems} == {"survey.yaml"}
    assert str(problems[0]).startswith("survey.yaml:")


# --- limits ------------------------------------------------------------------------------------


def nested(depth: int, style: str) -> str:
    """A value holding `depth` collections, one inside the other, written in `style`."""
    if style == "flow sequence":
        return "[" * depth + "1" + "]" * depth
    if style == "flow mapping":
        return "{a: " * depth + "1" + "}" * depth
    if style == "block sequence":
        return "\n  " + "- " * depth + "1"  # `- - 1` is a list in a list, on one line
    return "".join("\n" + "  " * (level + 1) + "a:" for level in range(depth)) + " 1"


def errors_of(tmp_path: Path, text: str) -> list[tuple[int, str]]:
    survey, problems = load(tmp_path, text)
    assert survey is None
    return errors(problems)


def test_a_file_over_1_mb_is_refused_before_it_is_parsed(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    # Unbalanced brackets: parsed, this would be a YAML error, not the size.
    path.write_bytes(COMPLETE.encode() + b"[" * (MAX_FILE_BYTES + 1 - len(COMPLETE.encode())))
    assert path.stat().st_size == MAX_FILE_BYTES + 1
    survey, problems = load_survey_file(path)
    assert survey is None
    assert errors(problems) == [(1, "the file is larger than 1 MB: at most 1,000,000 bytes")]


def test_a_file_of_exactly_1_mb_loads(tmp_path: Path) -> None:
    padding = MAX_FILE_BYTES - len(COMPLETE.encode())
    path = tmp_path / "full.yaml"
    path.write_bytes(COMPLETE.encode() + b"#" * (padding - 1) + b"\n")
    assert path.stat().st_size == MAX_FILE_BYTES
    survey, problems = load_survey_file(path)
    assert problems == [] and survey is not None


def test_a_60_mb_intro_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "huge.yaml"
    with path.open("w", encoding="utf-8") as file:
        file.write(COMPLETE.replace('intro: {es: "Hola", en: "Hello"}', 'intro: {es: "'))
        for _ in range(60):
            file.write("a" * 1_000_000)
        file.write('", en: "Hello"}\n')
    survey, problems = load_survey_file(path)
    assert survey is None
    assert [p.message for p in problems] == [
        "the file is larger than 1 MB: at most 1,000,000 bytes"
    ]


STYLES = ["flow sequence", "flow mapping", "block sequence", "block mapping"]


@pytest.mark.parametrize("style", STYLES)
def test_nesting_deeper_than_50_levels_is_one_problem_at_its_line(
    tmp_path: Path, style: str
) -> None:
    # The top-level mapping is the first level, so the intro holds 49 more, or 50.
    at_limit = COMPLETE.replace('intro: {es: "Hola", en: "Hello"}', f"intro: {nested(49, style)}")
    assert "nested" not in str(errors_of(tmp_path, at_limit))
    too_deep = COMPLETE.replace('intro: {es: "Hola", en: "Hello"}', f"intro: {nested(50, style)}")
    [(line, message)] = errors_of(tmp_path, too_deep)
    assert message == "nested more than 50 levels deep"
    assert line == {"block sequence": 9, "block mapping": 8 + 50}.get(style, 8)


# A block mapping that deep is megabytes of indentation: the size limit stops it first.
@pytest.mark.parametrize("style", STYLES[:3])
def test_nesting_100000_levels_deep_is_a_problem_not_a_crash(tmp_path: Path, style: str) -> None:
    text = COMPLETE.replace('intro: {es: "Hola", en: "Hello"}', f"intro: {nested(100_000, style)}")
    [(_, message)] = errors_of(tmp_path, text)
    assert message == "nested more than 50 levels deep"


BOMB = "".join(f"x{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]\n" for i in range(1, 8))


@pytest.mark.parametrize(
    ("extra", "line", "message"),
    [
        ("x: &a [1, *a]\n", 40, "alias *a is inside its own anchor"),
        ("x: &a {b: [1, *a]}\n", 40, "alias *a is inside its own anchor"),
        (
            f"x: &a {nested(30, 'flow sequence')}\ny: {'[' * 30}*a{']' * 30}\n",
            41,
            "alias *a nests more than 50 levels deep",
        ),
        (
            "x0: &a0 [x, x, x, x, x, x, x, x, x, x]\n" + BOMB,
            45,
            "more than 1,000,000 values, counting what aliases repeat",
        ),
    ],
    ids=["recursive", "recursive in a mapping", "deep through an alias", "alias bomb"],
)
def test_aliases_count_as_what_they_repeat(
    tmp_path: Path, extra: str, line: int, message: str
) -> None:
    assert errors_of(tmp_path, COMPLETE + extra) == [(line, message)]


def test_an_alias_within_the_limits_is_fine(tmp_path: Path) -> None:
    text = COMPLETE.replace(
        'intro: {es: "Hola", en: "Hello"}', 'intro: &greeting {es: "Hola", en: "Hello"}'
    ).replace('closing: {es: "Gracias", en: "Thank you"}', "closing: *greeting")
    survey, problems = load(tmp_path, text)
    assert problems == [] and survey is not None
    assert survey.closing == {"es": "Hola", "en": "Hello"}


@pytest.mark.parametrize(
    ("old", "new", "line"),
    [
        ('intro: {es: "Hola"', 'intro: {es: "{text}"', 8),
        ("label: {es: California", "label: {es: {text}", 15),
        ("keywords: {es: [TRABAJO", "keywords: {es: [{text}", 5),
        ("      es: no\n", '      es: "{text}"\n', 37),
    ],
    ids=["intro", "label", "keyword", "block text"],
)
def test_a_text_longer_than_1600_characters_is_a_problem(
    tmp_path: Path, old: str, new: str, line: int
) -> None:
    assert old in COMPLETE
    fits = COMPLETE.replace(old, new.replace("{text}", "á" * MAX_TEXT_CHARS))
    assert not [m for _, m in errors(load(tmp_path, fits)[1]) if "characters" in m]
    too_long = COMPLETE.replace(old, new.replace("{text}", "á" * (MAX_TEXT_CHARS + 1)))
    assert (
        line,
        "text of 1,601 characters: at most 1,600 (the most one message can carry)",
    ) in errors_of(tmp_path, too_long)


# --- top-level fields --------------------------------------------------------------------------


def test_unknown_and_missing_fields(tmp_path: Path) -> None:
    survey, problems = load(
        tmp_path,
        """\
        # a comment first
        id: demo
        title: {es: Demo}
        colour: blue
        languages: [es]
        """,
    )
    assert survey is None
    assert errors(problems) == [
        (2, "missing field 'keywords'"),
        (2, "missing field 'questions'"),
        (4, "unknown field 'colour'"),
    ]


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("Working", "invalid survey id 'Working'"),
        ("work_conditions", "invalid survey id 'work_conditions'"),
        ("work--conditions", "invalid survey id 'work--conditions'"),
        ("-work", "invalid survey id '-work'"),
        ("work-", "invalid survey id 'work-'"),
        ("'tráfico'", "invalid survey id 'tráfico'"),
        ("12", "expected text for id, got a number (put it in quotes)"),
        ("true", "expected text for id, got a boolean"),
    ],
)
def test_survey_ids(tmp_path: Path, value: str, fragment: str) -> None:
    text = with_questions("- {id: q, type: text, text: {es: a, en: b}}\n").replace(
        "id: demo", f"id: {value}"
    )
    survey, problems = load(tmp_path, text)
    assert survey is None
    assert len(errors(problems)) == 1
    assert_reports(problems, 1, fragment)


@pytest.mark.parametrize("value", ["demo", "working-conditions-2024", "h2a", "'2024'"])
def test_good_survey_ids(tmp_path: Path, value: str) -> None:
    text = with_questions("- {id: q, type: text, text: {es: a, en: b}}\n").replace(
        "id: demo", f"id: {value}"
    )
    survey, problems = load(tmp_path, text)
    assert problems == []
    assert survey is not None


@pytest.mark.parametrize(
    ("languages", "fragment"),
    [
        ("[]", "languages must be a non-empty list"),
        ("es", "languages must be a non-empty list of codes, e.g. [es, en], got the text 'es'"),
        ("[es, EN]", "invalid language code 'EN'"),
        ("[es, e]", "invalid language code 'e'"),
        ("[es, spanish]", "invalid language code 'spanish'"),
        ("[es, 12]", "invalid language code 'a number'"),
        ("[es, en, es]", "duplicate language 'es'"),
    ],
)
def test_languages(tmp_path: Path, languages: str, fragment: str) -> None:
    text = with_questions("- {id: q, type: text, text: {es: a, en: b}}\n").replace(
        "languages: [es, en]", f"languages: {languages}"
    )
    survey, problems = load(tmp_path, text)
    assert survey is None
    assert_reports(problems, 3, fragment)


def test_three_letter_languages_are_fine(tmp_path: Path) -> None:
    survey, problems = load(
        tmp_path,
        """\
        id: demo
        title: {mix: Demo, es: Demo}
        languages: [mix, es]
        keywords: {mix: [DEMOMIX], es: [DEMO]}
        questions:
          - {id: q, type: yes_no, text: {mix: a, es: b}}
        """,
    )
    assert problems == []
    assert survey is not None
    assert survey.default_language == "mix"


def test_a_language_problem_does_not_flood_every_text(tmp_path: Path) -> None:
    text = with_questions("- {id: q, type: text, text: {es: a, en: b}}\n").replace(
        "languages: [es, en]", "languages: [es, English]"
    )
    survey, problems = load(tmp_path, text)
    assert survey is None
    assert errors(problems) == [
        (3, "invalid language code 'English': use 2 or 3 lowercase letters")
    ]


# --- translations ------------------------------------------------------------------------------

TRANSLATED = """\
id: demo
title: {es: Demo, en: Demo}
languages: [es, en]
keywords: {es: [DEMO], en: [DEMOEN]}
intro: {es: Hola, en: Hello}
questions:
  - id: q
    type: choice
    text:
      es: "¿Sí?"
      en: "Yes?"
    choices:
      - value: a
        label: {es: Uno, en: One}
        match: {es: [uno], en: [one]}
      - {value: b, label: {es: Dos, en: Two}}
closing: {es: Gracias, en: Thanks}
"""


@pytest.mark.parametrize(
    ("old", "new", "line", "message"),
    [
        (
            "title: {es: Demo, en: Demo}",
            "title: {es: Demo}",
            2,
            "missing translation 'en' for title",
        ),
        ("intro: {es: Hola, en: Hello}", "intro: {en: Hello}", 5, "missing translation 'es'"),
        ("closing: {es: Gracias, en: Thanks}", "closing: {es: Gracias}", 17, "for closing"),
        (
            '      en: "Yes?"\n',
            "",
            9,
            "missing translation 'en' for text of question 'q'",
        ),
        (
            "label: {es: Uno, en: One}",
            "label: {es: Uno}",
            14,
            "missing translation 'en' for label of choice 1 of question 'q'",
        ),
        (
            "{value: b, label: {es: Dos, en: Two}}",
            "{value: b, label: {en: Two}}",
            16,
            "missing translation 'es' for label of choice 2 of question 'q'",
        ),
        (
            "title: {es: Demo, en: Demo}",
            "title: {es: Demo, en: Demo, fr: Démo}",
            2,
            "unknown language 'fr' in title",
        ),
        (
            "intro: {es: Hola, en: Hello}",
            "intro: {es: Hola, en: Hello, ht: Bonjou}",
            5,
            "unknown language 'ht' in intro",
        ),
        (
            "closing: {es: Gracias, en: Thanks}",
            "closing: {es: Gracias, en: Thanks, fr: Merci}",
            17,
            "unknown language 'fr' in closing",
        ),
        (
            '      en: "Yes?"\n',
            '      en: "Yes?"\n      fr: "Oui?"\n',
            12,
            "unknown language 'fr' in text",
        ),
        (
            "label: {es: Uno, en: One}",
            "label: {es: Uno, en: One, pt: Um}",
            14,
            "unknown language 'pt' in label",
        ),
        (
            "match: {es: [uno], en: [one]}",
            "match: {es: [uno], fr: [un]}",
            15,
            "unknown language 'fr' in match",
        ),
        (
            "keywords: {es: [DEMO], en: [DEMOEN]}",
            "keywords: {es: [DEMO], en: [DEMOEN], fr: [DEMOFR]}",
            4,
            "unknown language 'fr' in keywords",
        ),
        (
            "keywords: {es: [DEMO], en: [DEMOEN]}\n",
            "keywords: {es: [DEMO], en: [DEMOEN]}\n"
            "whatsapp_template: {fr: HX0123456789abcdef0123456789abcdef}\n",
            5,
            "unknown language 'fr' in whatsapp_template",
        ),
    ],
)
def test_translations(tmp_path: Path, old: str, new: str, line: int, message: str) -> None:
    survey, problems = load(tmp_path, TRANSLATED)
    assert problems == [] and survey is not None
    assert old in TRANSLATED
    survey, problems = load(tmp_path, TRANSLATED.replace(old, new))
    assert survey is None
    assert len(errors(problems)) == 1, problems
    assert_reports(problems, line, message)


def test_a_block_mapping_missing_a_translation_points_at_its_key(tmp_path: Path) -> None:
    survey, problems = load(
        tmp_path,
        with_questions(
            """\
            - id: q
              type: text
              text:
                es: Hola
            """
        ),
    )
    assert survey is None
    assert errors(problems) == [(8, "missing translation 'en' for text of question 'q'")]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("true", "expected text for title (en), got a boolean (put it in quotes)"),
        ("False", "expected text for title (en), got a boolean"),
        ("12", "expected text for title (en), got a number (put it in quotes)"),
        ("1.5", "expected text for title (en), got a number"),
        ("2024-05-01", "expected text for title (en), got a date (put it in quotes)"),
        ("~", "expected text for title (en), got nothing"),
        ("''", "empty text for title (en)"),
        ("'   '", "empty text for title (en)"),
        ("[a, b]", "expected text for title (en), got a list"),
        ("{x: y}", "expected text for title (en), got a mapping"),
    ],
)
def test_text_must_be_text(tmp_path: Path, value: str, message: str) -> None:
    text = with_questions("- {id: q, type: text, text: {es: a, en: b}}\n").replace(
        "title: {es: Demo, en: Demo}", f"title:\n  es: Demo\n  en: {value}"
    )
    survey, problems = load(tmp_path, text)
    assert survey is None
    assert_only_error(problems, 4, message)


@pytest.mark.parametrize("value", ["no", "yes", "on", "off", "'true'", "'12'", "y", "n"])
def test_yaml_12_words_stay_text(tmp_path: Path, value: str) -> None:
    text = with_questions("- {id: q, type: text, text: {es: a, en: b}}\n").replace(
        "title: {es: Demo, en: Demo}", f"title: {{es: Demo, en: {value}}}"
    )
    survey, problems = load(tmp_path, text)
    assert problems == []
    assert survey is not None
    assert survey.title["en"] == value.strip("'")


def test_texts_must_be_a_mapping_per_language(tmp_path: Path) -> None:
    text = with_questions("- {id: q, type: text, text: Hola}\n").replace(
        "title: {es: Demo, en: Demo}", "title: Demo"
    )
    survey, problems = load(tmp_path, text)
    assert survey is None
    assert errors(problems) == [
        (2, "title must give a text per language, e.g. {es: ..., en: ...}, got the text 'Demo'"),
        (
            6,
            "text of question 'q' must give a text per language, e.g. {es: ..., en: ...}, "
            "got the text 'Hola'",
        ),
    ]


# --- keywords, templates, repeat ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("keywords", "line", "message"),
    [
        ("{es: [DEMO]}", 4, "no keyword for 'en'"),
        ("{es: [DEMO], en: []}", 4, "no keyword for 'en'"),
        ("{es: [DEMO], en: DEMOEN}", 4, "keywords (en) must be a list, e.g. [WORD], got the text"),
        ("[DEMO]", 4, "keywords must give a list of words per language"),
        ("{es: [DEMO], en: [Ayuda]}", 4, "keyword 'Ayuda' is the system keyword AYUDA"),
        ("{es: [DEMO], en: [stop!]}", 4, "keyword 'stop!' is the system keyword STOP"),
        ("{es: [DEMO], en: [Idioma]}", 4, "keyword 'Idioma' is the system keyword IDIOMA"),
        ("{es: [DEMO], en: [saltar]}", 4, "keyword 'saltar' is the system keyword SALTAR"),
        ("{es: [DEMO], en: [ed]}", 4, "keyword 'ed' is the system keyword ED"),
        ("{es: [DEMO], en: ['7']}", 4, "keyword '7' is a number: numbers answer questions"),
        ("{es: [DEMO], en: ['12.']}", 4, "keyword '12.' is a number"),
        ("{es: [DEMO], en: [7]}", 4, "expected text for keywords (en), got a number"),
        ("{es: [DEMO], en: ['?!']}", 4, "keyword '?!' has no letters or digits"),
        ("{es: [DEMO], en: [demo]}", 4, "duplicate keyword 'demo' (first at line 4)"),
    ],
)
def test_keywords(tmp_path: Path, keywords: str, line: int, message: str) -> None:
    text = with_questions("- {id: q, type: text, text: {es: a, en: b}}\n").replace(
        "keywords: {es: [DEMO], en: [DEMOEN]}", f"keywords: {keywords}"
    )
    survey, problems = load(tmp_path, text)
    assert survey is None
    assert len(errors(problems)) == 1, problems
    assert_reports(problems, line, message)


def test_keyword_lines_are_the_lines_of_the_items(tmp_path: Path) -> None:
    text = with_questions("- {id: q, type: text, text: {es: a, en: b}}\n").replace(
        "keywords: {es: [DEMO], en: [DEMOEN]}",
        "keywords:\n  es:\n    - DEMO\n    - AYUDA\n  en: [DEMOEN]",
    )
    survey, problems = load(tmp_path, text)
    assert survey is None
    assert errors(problems) == [(7, "keyword 'AYUDA' is the system keyword AYUDA")]


def test_opt_in_words_are_fine_as_keywords_and_labels(tmp_path: Path) -> None:
    text = with_questions(
        """\
        - id: q
          type: choice
          text: {es: a, en: b}
          choices:
            - {value: yes, label: {es: Sí, en: "Yes"}, match: {en: [start]}}
            - {value: nope, label: {es: Alta, en: Low}}
        """
    ).replace("en: [DEMOEN]", "en: [DEMOEN, INICIO]")
    survey, problems = load(tmp_path, text)
    assert problems == []
    assert survey is not None


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("HX123", "whatsapp_template (es) 'HX123' is not a Content SID"),
        ("MG0123456789abcdef0123456789abcdef", "is not a Content SID"),
        ("HX0123456789abcdef0123456789abcdeg", "is not a Content SID"),
        ("HX0123456789abcdef0123456789abcdef0", "is not a Content SID"),
        ("12", "expected text for whatsapp_template (es), got a number"),
    ],
)
def test_whatsapp_templates(tmp_path: Path, template: str, message: str) -> None:
    text = with_questions("- {id: q, type: text, text: {es: a, en: b}}\n").replace(
        "questions:", f"whatsapp_template:\n  es: {template}\nquestions:"
    )
    survey, problems = load(tmp_path, text)
    assert survey is None
    assert len(errors(problems)) == 1
    assert_reports(problems, 6, message)


def test_whatsapp_templates_may_cover_some_languages(tmp_path: Path) -> None:
    text = with_questions("- {id: q, type: text, text: {es: a, en: b}}\n").replace(
        "questions:", "whatsapp_template: {en: HXabcdef0123456789abcdef0123456789}\nquestions:"
    )
    survey, problems = load(tmp_path, text)
    assert problems == []
    assert survey is not None
    assert survey.whatsapp_template == {"en": "HXabcdef0123456789abcdef0123456789"}


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("no", "repeat must be true or false, got the text 'no'"),
        ("yes", "repeat must be true or false, got the text 'yes'"),
        ("1", "repeat must be true or false, got a number"),
        ("~", "repeat must be true or false, got nothing"),
    ],
)
def test_repeat_must_be_a_boolean(tmp_path: Path, value: str, message: str) -> None:
    text = with_questions("- {id: q, type: text, text: {es: a, en: b}}\n").replace(
        "questions:", f"repeat: {value}\nquestions:"
    )
    survey, problems = load(tmp_path, text)
    assert survey is None
    assert errors(problems) == [(5, message)]


@pytest.mark.parametrize(("value", "expected"), [("true", True), ("false", False), ("True", True)])
def test_repeat_booleans(tmp_path: Path, value: str, expected: bool) -> None:
    text = with_questions("- {id: q, type: text, text: {es: a, en: b}}\n").replace(
        "questions:", f"repeat: {value}\nquestions:"
    )
    survey, problems = load(tmp_path, text)
    assert problems == []
    assert survey is not None
    assert survey.repeat is expected


# --- questions ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("questions", "line", "message"),
    [
        ("questions: []", 5, "questions must list at least one question"),
        ("questions: {id: q}", 5, "questions must be a list of questions, got a mapping"),
        ("questions:\n  - just text", 6, "question 1 must be a mapping (id, type, text, ...)"),
    ],
)
def test_questions_must_be_a_list_of_mappings(
    tmp_path: Path, questions: str, line: int, message: str
) -> None:
    survey, problems = load(tmp_path, HEADER.replace("questions:\n", questions + "\n"))
    assert survey is None
    assert_only_error(problems, line, message)


# Each case is the question list after HEADER, so its first line is line 6.
QUESTION_CASES = [
    (
        "unknown field",
        """\
        - id: q
          type: text
          text: {es: a, en: b}
          hint: {es: a, en: b}
        """,
        9,
        "unknown field 'hint'",
    ),
    (
        "missing id",
        """\
        - type: text
          text: {es: a, en: b}
        """,
        6,
        "missing field 'id'",
    ),
    (
        "missing type",
        """\
        - id: q
          text: {es: a, en: b}
        """,
        6,
        "missing field 'type'",
    ),
    (
        "missing text",
        """\
        - {id: q, type: yes_no}
        """,
        6,
        "missing field 'text'",
    ),
    (
        "bad id",
        """\
        - id: paid-on-time
          type: yes_no
          text: {es: a, en: b}
        """,
        6,
        "invalid question id 'paid-on-time'",
    ),
    (
        "uppercase id",
        """\
        - {id: Q1, type: yes_no, text: {es: a, en: b}}
        """,
        6,
        "invalid question id 'Q1'",
    ),
    (
        "number id",
        """\
        - {id: 1, type: yes_no, text: {es: a, en: b}}
        """,
        6,
        "expected text for id of question 1, got a number (put it in quotes)",
    ),
    (
        "duplicate id",
        """\
        - id: q
          type: yes_no
          text: {es: a, en: b}
        - id: r
          type: yes_no
          text: {es: a, en: b}
        - type: yes_no
          id: q
          text: {es: a, en: b}
        """,
        13,
        "duplicate question id 'q' (first at line 6)",
    ),
    (
        "unknown type",
        """\
        - id: q
          type: radio
          text: {es: a, en: b}
        """,
        7,
        "unknown question type 'radio' (use choice, multi, yes_no, number, text)",
    ),
    (
        "choice without choices",
        """\
        - id: q
          type: choice
          text: {es: a, en: b}
        """,
        6,
        "missing field 'choices'",
    ),
    (
        "multi with one choice",
        """\
        - id: q
          type: multi
          text: {es: a, en: b}
          choices:
            - {value: a, label: {es: a, en: a}}
        """,
        9,
        "question 'q' needs at least 2 choices",
    ),
    (
        "choices not a list",
        """\
        - id: q
          type: multi
          text: {es: a, en: b}
          choices: {value: a}
        """,
        9,
        "choices of question 'q' must be a list, got a mapping",
    ),
    (
        "choices on yes_no",
        """\
        - id: q
          type: yes_no
          text: {es: a, en: b}
          choices:
            - {value: a, label: {es: a, en: a}}
            - {value: b, label: {es: b, en: b}}
        """,
        9,
        "choices are only for choice and multi questions",
    ),
    (
        "choices on number",
        """\
        - id: q
          type: number
          text: {es: a, en: b}
          choices: []
        """,
        9,
        "choices are only for choice and multi questions",
    ),
    (
        "choice not a mapping",
        """\
        - id: q
          type: choice
          text: {es: a, en: b}
          choices:
            - {value: a, label: {es: a, en: a}}
            - b
        """,
        11,
        "choice 2 of question 'q' must be a mapping (value, label), got the text 'b'",
    ),
    (
        "unknown choice field",
        """\
        - id: q
          type: choice
          text: {es: a, en: b}
          choices:
            - {value: a, label: {es: a, en: a}}
            - value: b
              label: {es: b, en: b}
              hint: x
        """,
        13,
        "unknown field 'hint'",
    ),
    (
        "choice without a value",
        """\
        - id: q
          type: choice
          text: {es: a, en: b}
          choices:
            - {value: a, label: {es: a, en: a}}
            - {label: {es: b, en: b}}
        """,
        11,
        "missing field 'value'",
    ),
    (
        "choice without a label",
        """\
        - id: q
          type: choice
          text: {es: a, en: b}
          choices:
            - {value: a}
            - {value: b, label: {es: b, en: b}}
        """,
        10,
        "missing field 'label'",
    ),
    (
        "duplicate choice value",
        """\
        - id: q
          type: choice
          text: {es: a, en: b}
          choices:
            - {value: a, label: {es: a, en: a}}
            - {value: b, label: {es: b, en: b}}
            - {value: a, label: {es: c, en: c}}
        """,
        12,
        "duplicate choice value 'a' (first at line 10)",
    ),
    (
        "numeric value off its position",
        """\
        - id: q
          type: choice
          text: {es: a, en: b}
          choices:
            - {value: 2, label: {es: a, en: a}}
            - {value: b, label: {es: b, en: b}}
        """,
        10,
        "choice value '2' is a number different from its position 1",
    ),
    (
        "quoted numeric value off its position",
        """\
        - id: q
          type: choice
          text: {es: a, en: b}
          choices:
            - {value: '1', label: {es: a, en: a}}
            - {value: '3', label: {es: b, en: b}}
        """,
        11,
        "choice value '3' is a number different from its position 2",
    ),
    (
        "zero value",
        """\
        - id: q
          type: choice
          text: {es: a, en: b}
          choices:
            - {value: 0, label: {es: a, en: a}}
            - {value: b, label: {es: b, en: b}}
        """,
        10,
        "choice value '0' is a number different from its position 1",
    ),
    (
        "boolean value",
        """\
        - id: q
          type: choice
          text: {es: a, en: b}
          choices:
            - {value: true, label: {es: a, en: a}}
            - {value: b, label: {es: b, en: b}}
        """,
        10,
        "value of choice 1 of question 'q' must be text or a whole number, got a boolean",
    ),
    (
        "fractional value",
        """\
        - id: q
          type: choice
          text: {es: a, en: b}
          choices:
            - {value: 1.5, label: {es: a, en: a}}
            - {value: b, label: {es: b, en: b}}
        """,
        10,
        "must be text or a whole number, got a number",
    ),
    (
        "system keyword label",
        """\
        - id: q
          type: choice
          text: {es: a, en: b}
          choices:
            - value: high
              label:
                es: Alto
                en: High
            - {value: low, label: {es: Bajo, en: Low}}
        """,
        12,
        "choice label 'Alto' is the system keyword ALTO",
    ),
    (
        "system keyword value",
        """\
        - id: q
          type: choice
          text: {es: a, en: b}
          choices:
            - {value: a, label: {es: a, en: a}}
            - {value: Skip, label: {es: b, en: b}}
        """,
        11,
        "choice value 'Skip' is the system keyword SKIP",
    ),
    (
        "system keyword match word",
        """\
        - id: q
          type: choice
          text: {es: a, en: b}
          choices:
            - value: a
              label: {es: a, en: a}
              match:
                es: [uno, "Ayúda"]
            - {value: b, label: {es: b, en: b}}
        """,
        13,
        "match word 'Ayúda' is the system keyword AYUDA",
    ),
    (
        "numeric match word off its position",
        """\
        - id: q
          type: choice
          text: {es: a, en: b}
          choices:
            - {value: a, label: {es: a, en: a}}
            - {value: b, label: {es: b, en: b}, match: {es: ['1']}}
        """,
        11,
        "match word '1' is a number different from its position 2",
    ),
    (
        "match not a mapping",
        """\
        - id: q
          type: choice
          text: {es: a, en: b}
          choices:
            - {value: a, label: {es: a, en: a}, match: [uno]}
            - {value: b, label: {es: b, en: b}}
        """,
        10,
        "match of choice 1 of question 'q' must give a list of words per language",
    ),
    (
        "match words not a list",
        """\
        - id: q
          type: choice
          text: {es: a, en: b}
          choices:
            - value: a
              label: {es: a, en: a}
              match:
                es: uno
            - {value: b, label: {es: b, en: b}}
        """,
        13,
        "match of choice 1 of question 'q' (es) must be a list",
    ),
    (
        "match word not text",
        """\
        - id: q
          type: choice
          text: {es: a, en: b}
          choices:
            - value: a
              label: {es: a, en: a}
              match:
                es:
                  - uno
                  - true
            - {value: b, label: {es: b, en: b}}
        """,
        15,
        "expected text for match of choice 1 of question 'q' (es), got a boolean",
    ),
    (
        "min on a text question",
        """\
        - id: q
          type: text
          text: {es: a, en: b}
          min: 1
        """,
        9,
        "min is only for number questions",
    ),
    (
        "bins on a choice question",
        """\
        - id: q
          type: choice
          text: {es: a, en: b}
          bins: [1, 2]
          choices:
            - {value: a, label: {es: a, en: a}}
            - {value: b, label: {es: b, en: b}}
        """,
        9,
        "bins is only for number questions",
    ),
    (
        "min not a number",
        """\
        - id: q
          type: number
          text: {es: a, en: b}
          min: '0'
        """,
        9,
        "min of question 'q' must be a number, got the text '0'",
    ),
    (
        "max a boolean",
        """\
        - id: q
          type: number
          text: {es: a, en: b}
          max: true
        """,
        9,
        "max of question 'q' must be a number, got a boolean",
    ),
    (
        "max infinite",
        """\
        - id: q
          type: number
          text: {es: a, en: b}
          max: .inf
        """,
        9,
        "max of question 'q' must be a number, got a number",
    ),
    (
        "min above max",
        """\
        - id: q
          type: number
          text: {es: a, en: b}
          min: 10
          max: 5
        """,
        10,
        "min 10 is greater than max 5",
    ),
    (
        "bins not increasing",
        """\
        - id: q
          type: number
          text: {es: a, en: b}
          bins:
            - 0
            - 20
            - 20
        """,
        12,
        "bins must increase: 20 after 20",
    ),
    (
        "bin below min",
        """\
        - id: q
          type: number
          text: {es: a, en: b}
          min: 5
          bins: [0, 10]
        """,
        10,
        "bin 0 is below min 5",
    ),
    (
        "bin above max",
        """\
        - id: q
          type: number
          text: {es: a, en: b}
          max: 100
          bins: [0, 50, 100.5]
        """,
        10,
        "bin 100.5 is above max 100",
    ),
    (
        "bins not numbers",
        """\
        - id: q
          type: number
          text: {es: a, en: b}
          bins: [0, ten]
        """,
        9,
        "bins of question 'q' must be numbers, got the text 'ten'",
    ),
    (
        "bins not a list",
        """\
        - id: q
          type: number
          text: {es: a, en: b}
          bins: 10
        """,
        9,
        "bins of question 'q' must be a list of numbers, got a number",
    ),
    (
        "bad profile key",
        """\
        - id: q
          type: yes_no
          text: {es: a, en: b}
          profile: Home-State
        """,
        9,
        "invalid profile key 'Home-State'",
    ),
    (
        "profile on a text question (its words would name a group)",
        """\
        - id: q
          type: text
          text: {es: a, en: b}
          profile: employer
        """,
        9,
        "profile on a text question: only choice, multi and yes_no answers may be saved",
    ),
    (
        "profile on a number question",
        """\
        - id: q
          type: number
          text: {es: a, en: b}
          profile: age
        """,
        9,
        "profile on a number question: only choice, multi and yes_no answers may be saved",
    ),
    (
        "profile key starting with a digit",
        """\
        - id: q
          type: yes_no
          text: {es: a, en: b}
          profile: 1state
        """,
        9,
        "invalid profile key '1state'",
    ),
    (
        "optional not a boolean",
        """\
        - id: q
          type: text
          text: {es: a, en: b}
          optional: yes
        """,
        9,
        "optional of question 'q' must be true or false, got the text 'yes'",
    ),
]


@pytest.mark.parametrize(
    ("questions", "line", "message"),
    [case[1:] for case in QUESTION_CASES],
    ids=[case[0] for case in QUESTION_CASES],
)
def test_question_checks(tmp_path: Path, questions: str, line: int, message: str) -> None:
    survey, problems = load(tmp_path, with_questions(questions))
    assert survey is None
    assert_only_error(problems, line, message)


def test_a_number_question_with_a_range(tmp_path: Path) -> None:
    survey, problems = load(
        tmp_path,
        with_questions(
            """\
            - id: hours
              type: number
              text: {es: a, en: b}
              min: -5
              max: 7.5
              bins: [-5, 0, 7.5]
            """
        ),
    )
    assert problems == []
    assert survey is not None
    hours = survey.question("hours")
    assert (hours.min, hours.max, hours.bins) == (-5, 7.5, (-5, 0, 7.5))


# --- exclusive and wrong_units -----------------------------------------------------------------


def test_an_exclusive_choice_of_a_multi_question_loads(tmp_path: Path) -> None:
    survey, problems = load(
        tmp_path,
        with_questions(
            """\
            - id: housing
              type: multi
              text: {es: a, en: b}
              choices:
                - {value: crowded, label: {es: Mucha gente, en: Crowded}}
                - {value: none, label: {es: Ninguno, en: None}, exclusive: true}
                - {value: other, label: {es: Otro, en: Other}, exclusive: false}
            """
        ),
    )
    assert problems == []
    assert survey is not None
    choices = survey.question("housing").choices
    assert [c.exclusive for c in choices] == [False, True, False]


def test_a_number_question_with_wrong_units_loads(tmp_path: Path) -> None:
    survey, problems = load(
        tmp_path,
        with_questions(
            """\
            - id: hours
              type: number
              text: {es: a, en: b}
              wrong_units: {es: [semana, semanal], en: [week, weekly]}
            """
        ),
    )
    assert problems == []
    assert survey is not None
    assert survey.question("hours").wrong_units == {
        "es": ("semana", "semanal"),
        "en": ("week", "weekly"),
    }


def test_exclusive_and_wrong_units_survive_a_stored_version(tmp_path: Path) -> None:
    from engage.survey.definition import survey_from_source

    survey, problems = load(
        tmp_path,
        with_questions(
            """\
            - id: hours
              type: number
              text: {es: a, en: b}
              wrong_units: {en: [day]}
            - id: housing
              type: multi
              text: {es: a, en: b}
              choices:
                - {value: a, label: {es: a, en: a}}
                - {value: none, label: {es: b, en: b}, exclusive: true}
            """
        ),
    )
    assert problems == [] and survey is not None
    stored = survey_from_source(json.loads(json.dumps(survey.source)), survey.version)
    assert stored.question("hours").wrong_units == {"en": ("day",)}
    assert stored.question("housing").choices[1].exclusive is True
    assert stored == survey


def test_exclusive_and_wrong_units_change_the_version(tmp_path: Path) -> None:
    questions = """\
        - id: hours
          type: number
          text: {es: a, en: b}
        - id: housing
          type: multi
          text: {es: a, en: b}
          choices:
            - {value: a, label: {es: a, en: a}}
            - {value: none, label: {es: b, en: b}}
        """
    plain, _ = load(tmp_path, with_questions(questions))
    exclusive, _ = load(
        tmp_path, with_questions(questions.replace("b}}\n", "b}, exclusive: true}\n"))
    )
    units, _ = load(
        tmp_path,
        with_questions(
            questions.replace(
                "b}\n        - id: housing",
                "b}\n          wrong_units: {en: [day]}\n        - id: housing",
            )
        ),
    )
    assert plain is not None and exclusive is not None and units is not None
    assert len({plain.version, exclusive.version, units.version}) == 3


EXCLUSIVE_AND_UNIT_CASES = [
    (
        "exclusive on a choice question",
        """\
        - id: q
          type: choice
          text: {es: a, en: b}
          choices:
            - {value: a, label: {es: a, en: a}}
            - value: none
              label: {es: b, en: b}
              exclusive: true
        """,
        13,
        "exclusive is only for choices of multi questions",
    ),
    (
        "exclusive not a boolean",
        """\
        - id: q
          type: multi
          text: {es: a, en: b}
          choices:
            - {value: a, label: {es: a, en: a}}
            - value: none
              label: {es: b, en: b}
              exclusive: yes
        """,
        13,
        "exclusive of choice 2 of question 'q' must be true or false, got the text 'yes'",
    ),
    (
        "exclusive a number",
        """\
        - id: q
          type: multi
          text: {es: a, en: b}
          choices:
            - {value: a, label: {es: a, en: a}, exclusive: 1}
            - {value: b, label: {es: b, en: b}}
        """,
        10,
        "exclusive of choice 1 of question 'q' must be true or false, got a number",
    ),
    (
        "wrong_units on a text question",
        """\
        - id: q
          type: text
          text: {es: a, en: b}
          wrong_units: {es: [semana]}
        """,
        9,
        "wrong_units is only for number questions",
    ),
    (
        "wrong_units on a multi question",
        """\
        - id: q
          type: multi
          wrong_units: {es: [semana]}
          text: {es: a, en: b}
          choices:
            - {value: a, label: {es: a, en: a}}
            - {value: b, label: {es: b, en: b}}
        """,
        8,
        "wrong_units is only for number questions",
    ),
    (
        "wrong_units a list",
        """\
        - id: q
          type: number
          text: {es: a, en: b}
          wrong_units: [semana, week]
        """,
        9,
        "wrong_units of question 'q' must give a list of words per language",
    ),
    (
        "wrong_units of a language not in the survey",
        """\
        - id: q
          type: number
          text: {es: a, en: b}
          wrong_units:
            es: [semana]
            ht: [semèn]
        """,
        11,
        "unknown language 'ht' in wrong_units of question 'q'",
    ),
    (
        "wrong_units a word instead of a list",
        """\
        - id: q
          type: number
          text: {es: a, en: b}
          wrong_units:
            es: semana
        """,
        10,
        "wrong_units of question 'q' (es) must be a list",
    ),
    (
        "a wrong unit that is not text",
        """\
        - id: q
          type: number
          text: {es: a, en: b}
          wrong_units:
            en:
              - week
              - 7
        """,
        12,
        "expected text for wrong_units of question 'q' (en), got a number",
    ),
    (
        "a wrong unit without letters",
        """\
        - id: q
          type: number
          text: {es: a, en: b}
          wrong_units:
            en:
              - week
              - "7"
        """,
        12,
        "wrong unit '7' of question 'q' has no letters",
    ),
]


@pytest.mark.parametrize(
    ("questions", "line", "message"),
    [case[1:] for case in EXCLUSIVE_AND_UNIT_CASES],
    ids=[case[0] for case in EXCLUSIVE_AND_UNIT_CASES],
)
def test_exclusive_and_wrong_units_checks(
    tmp_path: Path, questions: str, line: int, message: str
) -> None:
    survey, problems = load(tmp_path, with_questions(questions))
    assert survey is None
    assert_only_error(problems, line, message)
    assert all(str(p).startswith(f"{tmp_path / 'survey.yaml'}:") for p in problems)


# --- when --------------------------------------------------------------------------------------

WHEN_QUESTIONS = """\
- id: state
  type: choice
  profile: home_state
  text: {es: a, en: b}
  choices:
    - {value: CA, label: {es: a, en: a}}
    - {value: TX, label: {es: b, en: b}}
- id: paid
  type: yes_no
  text: {es: a, en: b}
- id: hours
  type: number
  text: {es: a, en: b}
  when: "WHEN"
- id: later
  type: yes_no
  profile: later_key
  text: {es: a, en: b}
"""


@pytest.mark.parametrize(
    "when",
    [
        "paid == 'no'",
        "state in ['CA', 'TX'] and not paid == 'yes'",
        "home_state == 'CA'",
        "(paid == 'no' or state != 'TX')",
    ],
)
def test_good_whens(tmp_path: Path, when: str) -> None:
    survey, problems = load(tmp_path, with_questions(WHEN_QUESTIONS.replace("WHEN", when)))
    assert problems == []
    assert survey is not None
    assert survey.question("hours").when_source == when


@pytest.mark.parametrize(
    ("when", "message"),
    [
        ("paid == 'no' and later == 'x'", "when names 'later', a later question"),
        ("later_key == 'x'", "when names 'later_key', a later question"),
        ("hours > 3", "when names 'hours', this question itself"),
        ("wages == 'x'", "when names unknown question 'wages'"),
        ("__import__('os')", "bad when: expected a comparison after '__import__' at column 1"),
        ("paid == 'no'))", "bad when: unexpected ')' at column 13"),
        ("paid = 'no'", "bad when: unexpected '=' at column 6"),
        ("", "bad when: empty condition"),
    ],
)
def test_bad_whens(tmp_path: Path, when: str, message: str) -> None:
    survey, problems = load(tmp_path, with_questions(WHEN_QUESTIONS.replace("WHEN", when)))
    assert survey is None
    assert_only_error(problems, 19, message)


def test_when_must_be_text(tmp_path: Path) -> None:
    questions = WHEN_QUESTIONS.replace('when: "WHEN"', "when: true")
    survey, problems = load(tmp_path, with_questions(questions))
    assert survey is None
    assert errors(problems) == [
        (
            19,
            "when of question 'hours' must be a quoted condition, e.g. \"paid == 'no'\", "
            "got a boolean",
        ),
    ]


def test_every_unknown_name_is_reported(tmp_path: Path) -> None:
    questions = WHEN_QUESTIONS.replace("WHEN", "b == 1 or a == 2")
    survey, problems = load(tmp_path, with_questions(questions))
    assert survey is None
    assert errors(problems) == [
        (19, "when names unknown question 'a'"),
        (19, "when names unknown question 'b'"),
    ]


def test_comparing_with_a_value_a_question_never_stores_is_a_warning(tmp_path: Path) -> None:
    questions = WHEN_QUESTIONS.replace("WHEN", "paid == 'No' or state in ['CA', 'WA']")
    survey, problems = load(tmp_path, with_questions(questions))
    assert survey is not None
    assert [(p.line, p.message, p.is_warning) for p in problems] == [
        (19, "when compares 'paid' with 'No', which is not one of its values (yes, no)", True),
        (19, "when compares 'state' with 'WA', which is not one of its values (CA, TX)", True),
    ]


def test_a_profile_key_saved_twice_is_a_warning(tmp_path: Path) -> None:
    questions = WHEN_QUESTIONS.replace("WHEN", "paid == 'no'").replace(
        "profile: later_key", "profile: home_state"
    )
    survey, problems = load(tmp_path, with_questions(questions))
    assert survey is not None
    assert [(p.line, p.is_warning) for p in problems] == [(22, True)]
    assert "profile 'home_state' is also saved by question 'state' (line 8)" in problems[0].message


# --- collecting everything ---------------------------------------------------------------------


def test_all_problems_are_collected_in_line_order(tmp_path: Path) -> None:
    survey, problems = load(
        tmp_path,
        """\
        id: Bad
        title: {es: Hola, fr: Salut}
        languages: [es, en]
        keywords: {es: [AYUDA], en: [WORK]}
        repeat: no
        questions:
          - id: q1
            type: choice
            text: {es: true, en: "x"}
            choices:
              - {value: 2, label: {es: Alto, en: High}}
          - id: q1
            type: yes_no
            text: {es: a, en: b}
            when: "nope == 1"
        colour: red
        """,
    )
    assert survey is None
    assert errors(problems) == [
        (
            1,
            "invalid survey id 'Bad': use lowercase letters, digits and single hyphens, "
            "e.g. working-conditions",
        ),
        (2, "unknown language 'fr' in title"),
        (2, "missing translation 'en' for title"),
        (4, "keyword 'AYUDA' is the system keyword AYUDA"),
        (5, "repeat must be true or false, got the text 'no'"),
        (9, "expected text for text of question 'q1' (es), got a boolean (put it in quotes)"),
        (10, "question 'q1' needs at least 2 choices"),
        (11, "choice value '2' is a number different from its position 1"),
        (11, "choice label 'Alto' is the system keyword ALTO"),
        (12, "duplicate question id 'q1' (first at line 7)"),
        (15, "when names unknown question 'nope'"),
        (16, "unknown field 'colour'"),
    ]


def test_problem_text() -> None:
    assert str(Problem("surveys/a.yaml", 3, "unknown field 'x'")) == (
        "surveys/a.yaml:3: unknown field 'x'"
    )
    assert str(Problem("a.yaml", 7, "too long", is_warning=True)) == "a.yaml:7: warning: too long"
    # Made from its message alone, a problem is its own template.
    assert Problem("a.yaml", 7, "too long").text == Phrase("too long")


def test_each_problem_carries_its_template_and_values_for_other_languages(tmp_path: Path) -> None:
    _survey, problems = load(
        tmp_path,
        """\
        id: a
        title: {es: Hola}
        languages: [es, en]
        keywords: {es: [HOLA], en: [HELLO]}
        questions:
          - {id: q1, type: yes_no, text: {es: a, en: b}, when: "q1 = 'x'"}
        """,
    )
    assert [p.message for p in problems] == [
        "missing translation 'en' for title",
        "bad when: unexpected '=' at column 4: use '==' to compare",
    ]
    assert all(p.message == str(p.text) for p in problems)
    missing, bad_when = problems
    assert missing.template == "missing translation '%(language)s' for %(where)s"
    assert missing.params == {"language": "en", "where": Phrase("title")}
    assert bad_when.template == "bad when: %(error)s"
    assert bad_when.params["error"] == Phrase(
        "unexpected '=' at column %(column)s: use '==' to compare", column=4
    )
    # Said in another language: every template looked up, the author's words left as written.
    marked = missing.text.render(lambda template: f"[{template}]", str)
    assert marked == "[missing translation 'en' for [title]]"
    big = Phrase("at most %(max)s bytes", max=Count(MAX_FILE_BYTES))
    assert str(big) == "at most 1,000,000 bytes"
    assert big.render(str, lambda count: f"{count.value:_}") == "at most 1_000_000 bytes"


# --- several files -----------------------------------------------------------------------------


def survey_file(tmp_path: Path, name: str, survey_id: str, keywords: str) -> Path:
    text = (
        f"id: {survey_id}\n"
        "title: {es: Demo, en: Demo}\n"
        "languages: [es, en]\n"
        f"keywords: {keywords}\n"
        "questions:\n"
        "  - {id: q, type: yes_no, text: {es: a, en: b}}\n"
    )
    return write(tmp_path, text, name)


def test_load_surveys_returns_every_good_survey(tmp_path: Path) -> None:
    a = survey_file(tmp_path, "a.yaml", "alpha", "{es: [ALFA], en: [ALPHA]}")
    b = survey_file(tmp_path, "b.yaml", "beta", "{es: [BETA], en: [BETAEN]}")
    surveys, problems = load_surveys([a, b])
    assert problems == []
    assert [s.id for s in surveys] == ["alpha", "beta"]


def test_a_duplicate_survey_id_across_files(tmp_path: Path) -> None:
    a = survey_file(tmp_path, "a.yaml", "alpha", "{es: [ALFA], en: [ALPHA]}")
    b = survey_file(tmp_path, "b.yaml", "alpha", "{es: [BETA], en: [BETAEN]}")
    surveys, problems = load_surveys([a, b])
    assert [s.id for s in surveys] == ["alpha"]
    assert [str(p) for p in problems] == [f"{b}:1: duplicate survey id 'alpha' (first in {a}:1)"]


@pytest.mark.parametrize("clash", ["ALFA", "alfa", "Alfá", "¡alfa!"])
def test_a_keyword_used_by_another_survey(tmp_path: Path, clash: str) -> None:
    a = survey_file(tmp_path, "a.yaml", "alpha", "{es: [ALFA], en: [ALPHA]}")
    b = survey_file(tmp_path, "b.yaml", "beta", f"{{es: [BETA], en: ['{clash}']}}")
    c = survey_file(tmp_path, "c.yaml", "gamma", "{es: [GAMMA], en: [GAMMAEN]}")
    surveys, problems = load_surveys([a, b, c])
    assert [s.id for s in surveys] == ["alpha", "gamma"]
    assert [(p.file, p.line, p.message) for p in problems] == [
        (str(b), 4, f"keyword '{clash}' is used by survey 'alpha' ({a}:4)")
    ]


def test_cross_file_checks_still_run_for_a_file_with_other_errors(tmp_path: Path) -> None:
    a = survey_file(tmp_path, "a.yaml", "alpha", "{es: [ALFA], en: [ALPHA]}")
    b = write(
        tmp_path,
        "id: alpha\ntitle: {es: Demo}\nlanguages: [es]\nkeywords: {es: [ALFA]}\nquestions: []\n",
        "b.yaml",
    )
    surveys, problems = load_surveys([a, b])
    assert [s.id for s in surveys] == ["alpha"]
    assert [(p.line, p.message) for p in problems] == [
        (1, f"duplicate survey id 'alpha' (first in {a}:1)"),
        (4, f"keyword 'ALFA' is used by survey 'alpha' ({a}:4)"),
        (5, "questions must list at least one question"),
    ]


def test_load_surveys_keeps_file_problems_and_file_names(tmp_path: Path) -> None:
    good = survey_file(tmp_path, "good.yaml", "alpha", "{es: [ALFA], en: [ALPHA]}")
    bad = write(tmp_path, "id: beta\ncolour: red\n", "bad.yaml")
    surveys, problems = load_surveys([good, bad])
    assert [s.id for s in surveys] == ["alpha"]
    assert {p.file for p in problems} == {str(bad)}
    assert "unknown field 'colour'" in [p.message for p in problems]


def test_find_survey_files(tmp_path: Path) -> None:
    for name in ("b.yml", "a.yaml", "c.yaml", "notes.txt", "d.json", ".hidden.yaml"):
        (tmp_path / name).write_text("id: x\n", encoding="utf-8")
    (tmp_path / "dir.yaml").mkdir()
    assert find_survey_files(tmp_path) == [
        tmp_path / "a.yaml",
        tmp_path / "b.yml",
        tmp_path / "c.yaml",
    ]
    assert find_survey_files(str(tmp_path)) == find_survey_files(tmp_path)


# --- sms_spelling and max_age_days -------------------------------------------------------------


@pytest.mark.parametrize("value", ["plain", "as_written"])
def test_sms_spelling_is_read(tmp_path: Path, value: str) -> None:
    survey, problems = load(tmp_path, COMPLETE.replace("repeat: false", f"sms_spelling: {value}"))
    assert survey is not None, problems
    assert survey.sms_spelling == value
    assert survey.is_plain_on_sms == (value == "plain")


def test_sms_spelling_defaults_to_as_written(tmp_path: Path) -> None:
    survey, _ = load(tmp_path, COMPLETE)
    assert survey is not None and survey.sms_spelling == "as_written"


@pytest.mark.parametrize("value", ["ascii", "true", "1", "Plain"])
def test_sms_spelling_must_be_plain_or_as_written(tmp_path: Path, value: str) -> None:
    _, problems = load(tmp_path, COMPLETE.replace("repeat: false", f"sms_spelling: {value}"))
    assert_only_error(problems, 6, "sms_spelling must be one of as_written, plain")


def test_max_age_days_is_read_with_a_profile(tmp_path: Path) -> None:
    text = COMPLETE.replace(
        "    profile: work_state\n", "    profile: work_state\n    max_age_days: 30\n"
    )
    survey, problems = load(tmp_path, text)
    assert survey is not None, problems
    assert survey.question("state").max_age_days == 30
    assert survey.question("paid_on_time").max_age_days is None


def test_max_age_days_without_profile_is_an_error_at_its_line(tmp_path: Path) -> None:
    _, problems = load(
        tmp_path,
        with_questions("""\
        - id: paid
          type: yes_no
          max_age_days: 30
          text: {es: "¿Pagado?", en: "Paid?"}
        """),
    )
    assert_only_error(problems, 8, "max_age_days of question 'paid' without profile")


@pytest.mark.parametrize("value", ["0", "-3", "1.5", "'30'", "true", "[30]"])
def test_max_age_days_must_be_a_positive_whole_number(tmp_path: Path, value: str) -> None:
    _, problems = load(
        tmp_path,
        with_questions(f"""\
        - id: paid
          type: yes_no
          profile: paid
          max_age_days: {value}
          text: {{es: "¿Pagado?", en: "Paid?"}}
        """),
    )
    assert_only_error(problems, 9, "must be a whole number of days, 1 or more")


def test_sms_spelling_and_max_age_survive_the_stored_definition(tmp_path: Path) -> None:
    from engage.survey.definition import survey_from_source

    text = COMPLETE.replace("repeat: false", "sms_spelling: plain").replace(
        "    profile: work_state\n", "    profile: work_state\n    max_age_days: 30\n"
    )
    survey, problems = load(tmp_path, text)
    assert survey is not None, problems
    rebuilt = survey_from_source(json.loads(json.dumps(survey.source)), survey.version)
    assert rebuilt.sms_spelling == "plain"
    assert rebuilt.question("state").max_age_days == 30
