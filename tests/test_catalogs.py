"""Every system text is translated in every shipped catalog, with the same placeholders."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po
from babel.support import Translations
from babel.util import pathmatch

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


def check_phrases() -> dict[str, set[str]]:
    """What the survey checks can say on the survey pages: every template written as
    `Phrase("...")` in the code (engage/survey/phrases.py), by the file it is in."""
    found = extract_from_dir(
        str(ROOT / "engage"), method_map=[("**.py", "python")], keywords={"Phrase": None}
    )
    by_file: dict[str, set[str]] = {}
    for file, _line, message, _comments, _context in found:
        by_file.setdefault(f"engage/{file}", set()).add(message)
    return by_file


def test_every_file_with_check_phrases_is_extracted_for_the_page_catalog():
    with (ROOT / "babel-web.cfg").open() as f:
        method_map, _options = parse_mapping_cfg(f)
    patterns = [pattern for pattern, method in method_map if method == "python"]
    by_file = check_phrases()
    assert {"engage/survey/loader.py", "engage/survey/expression.py"} <= set(by_file)
    for file in by_file:
        assert any(pathmatch(pattern, file) for pattern in patterns), f"babel-web.cfg: {file}"
    assert "-k Phrase" in (ROOT / "Makefile").read_text()


def test_every_check_phrase_is_in_spanish_in_the_page_catalog():
    """A problem on a Spanish page is all Spanish: each template, and each phrase inside it
    ("text of question 'q1'", "a list"), differs from the English in the compiled catalog, with
    the same placeholders; the English catalog has each as it is."""
    templates = set().union(*check_phrases().values())
    assert len(templates) >= 100
    assert "missing translation '%(language)s' for %(where)s" in templates
    compiled = Translations.load(ROOT / "locales", locales=["es"], domain="web")
    catalogs = {}
    for language in ("es", "en"):
        with (ROOT / "locales" / language / "LC_MESSAGES" / "web.po").open("rb") as f:
            catalogs[language] = read_po(f)
    missing = sorted(t for t in templates if compiled.gettext(t) == t)
    assert not missing, "not in Spanish in the compiled web catalog:\n" + "\n".join(missing)
    for template in templates:
        spanish, english = catalogs["es"].get(template), catalogs["en"].get(template)
        assert spanish is not None and not spanish.fuzzy, template
        assert set(PLACEHOLDER.findall(spanish.string)) == set(PLACEHOLDER.findall(template))
        assert english is not None and english.string == template, template


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
