"""Every system text is translated in every shipped catalog, with the same placeholders."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from engage.survey.texts import SystemTexts

ROOT = Path(__file__).resolve().parent.parent
LANGUAGES = ["es", "en", "ht"]
PLACEHOLDER = re.compile(r"%\((\w+)\)s")


def source_messages() -> set[str]:
    """What workers read: the `messages` domain, from the survey domain's code."""
    found = extract_from_dir(
        str(ROOT / "engage" / "survey"),
        method_map=[("**.py", "python")],
        keywords={"_": None, "gettext": None},
    )
    return {message for _file, _line, message, _comments, _context in found}


def page_messages() -> set[str | tuple[str, ...]]:
    """What staff and the policy team read: the `web` domain, from views and templates."""
    found = extract_from_dir(
        str(ROOT / "engage"),
        method_map=[("web/**.py", "python"), ("templates/**.html", "jinja2")],
        options_map={"templates/**.html": {"extensions": "jinja2.ext.i18n"}},
        keywords={"_": None, "gettext": None, "ngettext": (1, 2)},
    )
    return {message for _file, _line, message, _comments, _context in found}


@pytest.mark.parametrize("language", ["es", "en"])
def test_page_catalog_translates_every_page_text(language):
    path = ROOT / "locales" / language / "LC_MESSAGES" / "web.po"
    with path.open("rb") as f:
        catalog = read_po(f)
    messages = page_messages()
    assert "Sign in" in messages and ("%(num)s version", "%(num)s versions") in messages
    for message in messages:
        key = message[0] if isinstance(message, tuple) else message
        entry = catalog.get(key)
        assert entry is not None and entry.string, f"{path}: missing {message!r}"
        strings = entry.string if isinstance(entry.string, tuple) else (entry.string,)
        assert all(strings), f"{path}: untranslated {message!r}"


def test_extraction_finds_the_system_texts():
    messages = source_messages()
    assert len(messages) >= 20
    assert "Please answer by text." in messages


@pytest.mark.parametrize("language", LANGUAGES)
def test_catalog_translates_every_message_with_the_same_placeholders(language):
    path = ROOT / "locales" / language / "LC_MESSAGES" / "messages.po"
    with path.open("rb") as f:
        catalog = read_po(f)
    for message in sorted(source_messages()):
        entry = catalog.get(message)
        assert entry is not None, f"{path}: missing {message!r}"
        assert entry.string, f"{path}: untranslated {message!r}"
        assert not entry.fuzzy, f"{path}: fuzzy {message!r}"
        assert set(PLACEHOLDER.findall(entry.string)) == set(PLACEHOLDER.findall(message))


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        ("es", "Le escribiremos en español."),
        ("en", "We will write to you in English."),
        ("ht", "N ap ekri w an kreyòl."),
        ("mix", "Le escribiremos en español."),
        ("zap", "Le escribiremos en español."),
    ],
)
def test_compiled_catalogs_chain_to_spanish(language, expected):
    assert SystemTexts(ROOT / "locales", language, "Org").language_set() == expected


def test_consent_names_the_organisation_and_fits_three_segments():
    from engage.survey.segments import count_segments

    for language in LANGUAGES:
        consent = SystemTexts(ROOT / "locales", language, "Centro Campesino").consent()
        assert "Centro Campesino" in consent
        assert count_segments(consent).segments <= 3, language


def test_help_gives_the_hotline_in_every_language():
    for language in LANGUAGES:
        help_text = SystemTexts(ROOT / "locales", language, "Org").help()
        assert "1-888-373-7888" in help_text and "233733" in help_text
