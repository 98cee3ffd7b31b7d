"""System texts a worker reads (consent, help, hints, menus, confirmations), from gettext catalogs.

Catalogs are looked up as a chain: the contact's language, then Spanish. A language without a
catalog or CLDR data (Mixteco, Zapoteco, …) therefore reads Spanish system texts.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from babel import Locale, UnknownLocaleError
from babel.numbers import format_decimal
from babel.support import NullTranslations, Translations

FALLBACK_LANGUAGE = "es"
DOMAIN = "messages"


@lru_cache(maxsize=64)
def _load(locales_dir: str, language: str) -> NullTranslations:
    chain = [language] if language == FALLBACK_LANGUAGE else [language, FALLBACK_LANGUAGE]
    return Translations.load(locales_dir, locales=chain, domain=DOMAIN)


def formatting_locale(language: str) -> str:
    """The CLDR locale used to format numbers for a language (Spanish when CLDR has none)."""
    try:
        Locale.parse(language)
    except (UnknownLocaleError, ValueError):
        return FALLBACK_LANGUAGE
    return language


class SystemTexts:
    """Every system text in one language. Methods return finished text, placeholders filled."""

    def __init__(self, locales_dir: str | Path, language: str, org_name: str) -> None:
        self.language = language
        self.org = org_name
        self._translations = _load(str(locales_dir), language)
        self._locale = formatting_locale(language)

    def gettext(self, message: str) -> str:
        return self._translations.gettext(message)

    def number(self, value: float) -> str:
        """A number written the way this language writes it."""
        return format_decimal(value, locale=self._locale, group_separator=False)

    # Consent and help follow docs: a short consent that names HELP; the detail is in help.
    def consent(self) -> str:
        _ = self.gettext
        return _(
            "Hi, this is %(org)s. An anonymous survey about farm work. We don't ask your name. "
            "SKIP skips a question, STOP to quit, HELP for more information. Join? 1=Yes 2=No"
        ) % {"org": self.org}

    def help(self) -> str:
        _ = self.gettext
        return _(
            "%(org)s: your answers are combined with those of many people; we never publish "
            "data about one person or one farm. We are not the government or your employer. "
            "If you are in danger, call 1-888-373-7888 (24 hours, many languages) or text "
            "233733. STOP to quit. Message rates may apply."
        ) % {"org": self.org}

    def consent_declined(self) -> str:
        _ = self.gettext
        return _("Understood, thank you. We will not ask you anything.")

    def invitation(self, title: str) -> str:
        _ = self.gettext
        return _("%(title)s: a short anonymous survey. Reply 1 to start.") % {"title": title}

    def language_menu_header(self) -> str:
        _ = self.gettext
        return _("Reply with the number of your language:")

    def language_set(self) -> str:
        _ = self.gettext
        return _("We will write to you in English.")

    def no_conversation(self, keywords: list[str]) -> str:
        _ = self.gettext
        if not keywords:
            return _("There is no survey right now. HELP for information, STOP to quit.")
        return _("To answer a survey, send %(keywords)s. HELP for information, STOP to quit.") % {
            "keywords": ", ".join(keywords)
        }

    def opted_out(self) -> str:
        _ = self.gettext
        return _("You will get no more messages from us. Send START to come back.")

    def opted_in(self) -> str:
        _ = self.gettext
        return _("You will get our messages again. HELP for information, STOP to quit.")

    def already_answered(self) -> str:
        _ = self.gettext
        return _("You already answered this survey. Thank you!")

    def answer_by_text(self) -> str:
        _ = self.gettext
        return _("Please answer by text.")

    def yes_no_choices(self) -> str:
        _ = self.gettext
        return _("1 Yes 2 No")

    def skip_prompt(self) -> str:
        _ = self.gettext
        return _("(SKIP to skip)")

    def several_allowed(self) -> str:
        _ = self.gettext
        return _("You may send several numbers.")

    def hint_choice(self, count: int) -> str:
        _ = self.gettext
        return _("Please answer with a number from 1 to %(count)s.") % {"count": count}

    def hint_multi(self) -> str:
        _ = self.gettext
        return _("Please answer with one or more numbers, for example: 1 3")

    def hint_yes_no(self) -> str:
        _ = self.gettext
        return _("Please answer 1 for yes or 2 for no.")

    def hint_number(self, low: float | None, high: float | None) -> str:
        _ = self.gettext
        if low is None or high is None:
            return _("Please answer with a number.")
        return _("Please answer with a number from %(min)s to %(max)s.") % {
            "min": self.number(low),
            "max": self.number(high),
        }
