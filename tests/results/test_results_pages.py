"""The results pages speak the reader's language and name groups by their labels; downloads
keep the survey's default language and the codes (their columns are a contract)."""

from __future__ import annotations

import csv
import html
import io
import re

import pytest

from engage.results.writers import BOM
from tests.results.conftest import seed_population

PASSWORD = "correct horse battery staple"
SURVEY = "/results/working-conditions"


def page(client, path: str) -> str:
    response = client.get(path)
    assert response.status_code == 200, path
    return html.unescape(response.get_data(as_text=True))


def section(text: str, question_id: str) -> str:
    start = text.index(f'<section class="question" id="q-{question_id}"')
    return text[start : text.index("</section>", start)]


def headings(text: str, question_id: str) -> list[str]:
    return re.findall(r'<h3 class="group" id="[^"]+">([^<]*)</h3>', section(text, question_id))


def row_labels(text: str, question_id: str) -> list[str]:
    return re.findall(r'<th scope="row"[^>]*>([^<]*)</th>', section(text, question_id))


@pytest.mark.parametrize(
    ("lang", "shown", "not_shown"),
    [
        pytest.param(
            "en",
            ["Working conditions", "Which state do you work in now?", "Download"],
            ["Condiciones de trabajo", "¿En qué estado trabaja ahora?", "Descargar"],
            id="en",
        ),
        pytest.param(
            "es",
            ["Condiciones de trabajo", "¿En qué estado trabaja ahora?", "Descargar"],
            ["Working conditions", "Which state do you work in now?", "Download:"],
            id="es",
        ),
    ],
)
def test_question_texts_and_labels_are_in_the_page_language(
    app, seed, policy, lang, shown, not_shown
):
    seed_population(seed)
    text = page(policy, f"{SURVEY}?lang={lang}")
    for expected in shown:
        assert expected in text, expected
    for unexpected in not_shown:
        assert unexpected not in text, unexpected
    assert re.search(r"<h1>([^<]*)</h1>", text).group(1) == shown[0]
    crops = row_labels(text, "main_crop")
    answers = row_labels(text, "first_season")
    if lang == "en":
        assert crops[:2] == ["Berries", "Oranges, citrus"] and answers == ["Yes", "No"]
    else:
        assert crops[:2] == ["Fresa, arándano o mora", "Naranja o limón"]
        assert answers == ["Sí", "No"]


@pytest.mark.parametrize(
    ("lang", "expected", "attribute"),
    [
        pytest.param(
            "es",
            [
                "Todas las personas",
                "California",
                "Florida",
                "Otro o desconocido (grupos de menos de 11)",
            ],
            "¿En qué estado trabaja ahora?",
            id="es",
        ),
        pytest.param(
            "en",
            ["Everyone", "California", "Florida", "Other or unknown (groups of fewer than 11)"],
            "Which state do you work in now?",
            id="en",
        ),
    ],
)
def test_groups_are_named_by_their_labels_not_their_codes(
    app, seed, policy, lang, expected, attribute
):
    seed_population(seed)
    text = page(policy, f"{SURVEY}?by=state&lang={lang}")
    assert headings(text, "first_season") == expected
    assert headings(text, "hours_per_day") == expected
    assert ">CA<" not in text and ">_other<" not in text
    # The breakdown choice names the question that asks the attribute, not the profile key.
    chosen = re.search(r'<option value="state"[^>]*selected>([^<]*)</option>', text)
    assert chosen is not None and chosen.group(1) == attribute
    assert re.search(r'<option value="crop"[^>]*>([^<]*)</option>', text).group(1) != "crop"
    # Medians name their groups the same way.
    medians = section(text, "hours_per_day")
    assert "California: " in medians and "CA: " not in medians


def test_two_attributes_are_named_part_by_part(app, seed, policy):
    seed_population(seed)
    text = page(policy, f"{SURVEY}?by=state&by=crop&lang=es")
    found = headings(text, "first_season")
    assert found[0] == "Todas las personas"
    assert "todos · Uva" in found
    assert "California · todos" in found
    assert "California · Fresa, arándano o mora" in found
    assert "Florida · Naranja o limón" in found
    assert not [h for h in found if re.search(r"\b(CA|FL|berries|citrus|_all|_other)\b", h)]


def test_downloads_keep_codes_and_the_default_language(app, seed, policy):
    seed_population(seed)
    page(policy, f"{SURVEY}?lang=en")  # the page's language is remembered: downloads ignore it
    response = policy.get(f"{SURVEY}/export.csv?by=state&lang=en")
    assert response.status_code == 200
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True)[len(BOM) :])))
    state = [r for r in rows if r["question_id"] == "state"]
    assert {r["question"] for r in state} == {"¿En qué estado trabaja ahora?"}
    assert {r["state"] for r in state} == {"_all", "CA", "FL", "_other"}
    assert {r["label"] for r in state if r["value"] == "CA"} == {"California"}
    first_season = [r for r in rows if r["question_id"] == "first_season" and r["value"] == "yes"]
    assert {r["label"] for r in first_season} == {"Sí"}


def test_a_survey_without_the_page_language_shows_its_default_language(app, policy):
    text = page(policy, "/results/mixteco-test?lang=en")
    assert '<h1 lang="es">Prueba</h1>' in text
    assert "¿Todo bien?" in section(text, "ok")
    assert "Download" in text  # the page itself is still in English
    text = page(policy, "/results/mixteco-test?lang=es")
    assert "<h1>Prueba</h1>" in text


@pytest.mark.parametrize(
    ("lang", "title"), [("en", "Working conditions"), ("es", "Condiciones de trabajo")]
)
def test_the_survey_list_shows_titles_in_the_page_language(app, policy, lang, title):
    text = page(policy, f"/results?lang={lang}")
    assert f'<a href="{SURVEY}">{title}</a>' in text
