"""System texts a worker reads (consent, help, hints, menus, confirmations), from gettext catalogs.

Catalogs are looked up as a chain: the contact's language, then Spanish. A language without a
catalog or CLDR data (Mixteco, Zapoteco, …) therefore reads Spanish system texts.
"""

from __future__ import annotations

from functools import cached_property, lru_cache
from pathlib import Path

from babel import Locale, UnknownLocaleError
from babel.numbers import format_decimal
from babel.support import NullTranslations, Translations

from engage.survey.segments import to_gsm7

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
    """Every system text in one language. Methods return finished text, placeholders filled.

    With `gsm7`, every text comes in plain GSM-7 spelling (á→a, È→E), as system texts are sent
    on SMS: one accent would make the whole message UCS-2 and more than double its cost.
    """

    def __init__(
        self, locales_dir: str | Path, language: str, org_name: str, gsm7: bool = False
    ) -> None:
        self.language = language
        self.locales_dir = locales_dir
        self.is_gsm7 = gsm7
        self.org = to_gsm7(org_name) if gsm7 else org_name
        self._org_name = org_name
        self._translations = _load(str(locales_dir), language)
        self._locale = formatting_locale(language)

    @cached_property
    def sms(self) -> SystemTexts:
        """The same texts in plain GSM-7 spelling, as they are sent on SMS."""
        if self.is_gsm7:
            return self
        return SystemTexts(self.locales_dir, self.language, self._org_name, gsm7=True)

    def gettext(self, message: str) -> str:
        text = self._translations.gettext(message)
        return to_gsm7(text) if self.is_gsm7 else text

    def number(self, value: float) -> str:
        """A number written the way this language writes it."""
        return format_decimal(value, locale=self._locale, group_separator=False)

    # Consent and help follow the conversation rules (docs/conversation.md §2, §4); both are
    # measured against their segment budgets in tests (2 and 3 in GSM-7 spelling, with a
    # 25-character organisation: docs/conversation.md §11).
    def consent(self) -> str:
        _ = self.gettext
        return _(
            "%(org)s asks about your work. It is voluntary and confidential. We never ask your "
            "name. We are not the government or your employer. SKIP skips a question, STOP stops "
            "all messages, HELP for help. Messages may cost per your plan. Join? 1=Yes 2=No"
        ) % {"org": self.org}

    def consent_hint(self) -> str:
        _ = self.gettext
        return _("Reply 1 to take part or 2 not to.")

    def help(self) -> str:
        _ = self.gettext
        return _(
            "%(org)s asks farmworkers about their work. We are not the government or your "
            "employer. STOP stops all messages. A free, confidential help line, 24 hours, many "
            "languages, not the police or immigration: call 1-888-373-7888 or text 233733. In "
            "an emergency, call 911."
        ) % {"org": self.org}

    def consent_declined(self) -> str:
        _ = self.gettext
        return _("Understood, thank you. We will not ask you anything.")

    def invitation(self, title: str) -> str:
        _ = self.gettext
        title = to_gsm7(title) if self.is_gsm7 else title
        return _("%(title)s: a short survey. Reply 1 to start.") % {"title": title}

    def reminder_to_start(self, title: str) -> str:
        """A campaign's reminder to one who has not answered its invitation."""
        _ = self.gettext
        title = to_gsm7(title) if self.is_gsm7 else title
        return _(
            "Reminder: %(title)s, a short survey. Reply 1 to start. STOP for no more messages."
        ) % {"title": title}

    def reminder_to_go_on(self, title: str) -> str:
        """A campaign's reminder to one who started its survey and has not finished it."""
        _ = self.gettext
        title = to_gsm7(title) if self.is_gsm7 else title
        return _(
            "Reminder: %(title)s is not finished. Answer the last question to go on. STOP for no "
            "more messages."
        ) % {"title": title}

    def may_delete(self) -> str:
        _ = self.gettext
        return _("You may delete these messages from your phone.")

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

    def erase_confirm(self) -> str:
        _ = self.gettext
        return _(
            "Erase your messages and your number from our records? Reply 1 to erase. Any other "
            "reply cancels."
        )

    def erased(self) -> str:
        _ = self.gettext
        return _(
            "Your messages and your number are erased. You may delete these messages from your "
            "phone too."
        )

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

    def hint_wrong_unit(self) -> str:
        """For a number reply in another unit ("10 horas al día" to a question about days)."""
        _ = self.gettext
        return _("Please answer with one number, counted as the question asks.")
