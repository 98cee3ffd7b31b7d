"""Safety word lists: their format, and how a phrase is found inside a message."""

from __future__ import annotations

from pathlib import Path

import pytest

from engage.survey.safety import (
    DISTRESS,
    SafetyListError,
    SafetyWords,
    is_distress_keyword,
    parse_safety_list,
)

LOCALES = Path(__file__).resolve().parents[2] / "locales"
TOPICS = {
    "documents",
    "threats",
    "deportation",
    "not_free_to_leave",
    "locked_in",
    "not_paid",
    "debt",
    "beaten",
    "sexual_harassment",
    DISTRESS,
}


@pytest.fixture(scope="module")
def lists() -> SafetyWords:
    return SafetyWords(LOCALES)


def test_the_format_has_topics_phrases_and_comments():
    text = "# notes\n[documents]\nMe quitaron el PASAPORTE  # a comment\n\n[debt]\nDeuda\n"
    assert parse_safety_list(text) == (
        ("me quitaron el pasaporte", "documents"),
        ("deuda", "debt"),
    )


@pytest.mark.parametrize("text", ["deuda\n", "[bad topic]\nx\n"])
def test_a_list_that_cannot_be_read_says_where(text):
    with pytest.raises(SafetyListError, match=r"safety.txt:\d"):
        parse_safety_list(text)


@pytest.mark.parametrize("language", ["es", "en", "ht"])
def test_every_shipped_list_covers_every_topic(lists, language):
    assert {topic for _phrase, topic in lists.phrases(language)} >= TOPICS


@pytest.mark.parametrize(
    ("text", "languages", "topic"),
    [
        ("¡¡Me quitaron el PASAPORTE!!", ["es"], "documents"),
        ("el patron tiene mi pasaporte y no me lo da", ["es"], "documents"),
        ("No me dejan salir del rancho", ["es"], "not_free_to_leave"),
        ("me amenazan con la migra", ["es"], "threats"),
        ("dicen que me van a deportar", ["es"], "deportation"),
        ("no me pagan desde hace 3 semanas", ["es"], "not_paid"),
        ("tengo una deuda con el contratista", ["es"], "debt"),
        ("el mayordomo me pega", ["es"], None),  # only what the list says
        ("el mayordomo me pegó", ["es"], "beaten"),
        ("auxilio, me pegan", ["es"], "beaten"),  # a precise topic before distress
        ("auxilio", ["es"], DISTRESS),
        ("They took my passport.", ["es", "en"], "documents"),
        ("they wont let me leave", ["es", "en"], "not_free_to_leave"),
        ("I owe the recruiter", ["es", "en"], "debt"),
        ("Yo pran paspò m", ["ht", "es", "en"], "documents"),
        ("yo pa peye mwen depi 2 semèn", ["ht", "es", "en"], "not_paid"),
        ("ANMWE", ["ht"], DISTRESS),
        ("Yo pran paspò m", ["es", "en"], None),  # Kreyòl words need the Kreyòl list
        ("tengo una deudora", ["es"], None),  # whole words only
        ("undebt", ["en"], None),
        ("", ["es"], None),
        ("2", ["es", "en", "ht"], None),
    ],
)
def test_a_phrase_is_found_inside_text_folded_on_word_boundaries(lists, text, languages, topic):
    match = lists.find(text, languages)
    assert (match.topic if match else None) == topic


def test_a_language_without_a_list_has_no_phrases(lists):
    assert lists.phrases("mix") == ()
    assert lists.find("me quitaron el pasaporte", ["mix", "es"]).language == "es"


@pytest.mark.parametrize(("text", "expected"), [("Ayúdenme!", True), ("ayuda", False)])
def test_distress_keywords(text, expected):
    assert is_distress_keyword(text) is expected
