"""Every system text is translated in every shipped catalog, with the same placeholders."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from engage.survey.segments import count_segments
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


# The longest organisation name the segment budgets are promised for (docs/conversation.md §11).
ORG_25 = "Alianza Campesina del Sur"


def sms_texts(language: str, org: str = ORG_25) -> SystemTexts:
    return SystemTexts(ROOT / "locales", language, org).sms


@pytest.mark.parametrize("language", LANGUAGES)
def test_consent_fits_two_segments_and_help_three_in_gsm7_spelling(language):
    assert len(ORG_25) == 25
    t = sms_texts(language)
    consent, help_text = t.consent(), t.help()
    assert ORG_25 in consent and ORG_25 in help_text
    assert count_segments(consent).encoding == "GSM-7"
    assert count_segments(consent).segments <= 2, consent
    assert count_segments(help_text).encoding == "GSM-7"
    assert count_segments(help_text).segments <= 3, help_text


@pytest.mark.parametrize(
    ("language", "shown"),
    [
        ("es", ("SALTAR", "ALTO", "AYUDA", "1=Si 2=No", "confidencial", "nombre", "gobierno")),
        ("en", ("SKIP", "STOP", "HELP", "1=Yes 2=No", "confidential", "name", "government")),
        ("ht", ("SOTE", "SISPANN", "ED ", "1=Wi 2=Non", "konfidansy", "non ou", "gouv")),
    ],
)
def test_consent_says_who_asks_that_it_is_voluntary_and_how_to_skip_stop_and_get_help(
    language, shown
):
    consent = sms_texts(language).consent()
    for part in shown:
        assert part in consent, (language, part)


@pytest.mark.parametrize("language", LANGUAGES)
def test_help_gives_the_hotline_and_911_without_naming_trafficking(language):
    help_text = sms_texts(language, "Org").help()
    assert "1-888-373-7888" in help_text and "911" in help_text
    # The hotline's text line is English and Spanish only: Kreyol points to the phone line.
    assert ("233733" in help_text) == (language != "ht")
    assert not re.search(r"traf|trata", help_text, re.IGNORECASE)


@pytest.mark.parametrize("language", LANGUAGES)
def test_no_worker_text_says_anonymous_or_shows_a_keyword_outside_gsm7(language):
    path = ROOT / "locales" / language / "LC_MESSAGES" / "messages.po"
    with path.open("rb") as f:
        catalog = read_po(f)
    for entry in catalog:
        if entry.id:
            assert not re.search(r"an[oó]nim", entry.string, re.IGNORECASE), entry.string
            assert "ÈD" not in entry.string, entry.string


def test_sms_spelling_is_plain_gsm7_and_whatsapp_keeps_the_accents():
    texts = SystemTexts(ROOT / "locales", "es", "Org")
    assert "1=Sí 2=No" in texts.consent()
    assert "1=Si 2=No" in texts.sms.consent()
    assert count_segments(texts.sms.help()).encoding == "GSM-7"
