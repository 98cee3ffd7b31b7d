"""The pages' own language (Spanish or English), from the `web` gettext catalogs."""

from __future__ import annotations

from typing import Protocol

from babel import Locale, UnknownLocaleError
from babel.numbers import format_decimal
from babel.support import NullTranslations, Translations
from flask import Flask, Response, g, request

from engage.survey.phrases import Count, Phrase

PAGE_LANGUAGES = ("es", "en")
DOMAIN = "web"


def page_language() -> str:
    """?lang= if given (and remembered in a cookie), else the cookie, else the browser's choice."""
    chosen = request.args.get("lang") or request.cookies.get("lang")
    if chosen in PAGE_LANGUAGES:
        return chosen
    return request.accept_languages.best_match(PAGE_LANGUAGES) or PAGE_LANGUAGES[0]


def translations() -> NullTranslations:
    if "translations" not in g:
        from flask import current_app

        g.page_language = page_language()
        g.translations = Translations.load(
            current_app.config["ENGAGE_LOCALES_DIR"], locales=[g.page_language], domain=DOMAIN
        )
    return g.translations


def gettext(message: str, **variables: object) -> str:
    text = translations().gettext(message)
    return text % variables if variables else text


def ngettext(singular: str, plural: str, n: int, **variables: object) -> str:
    text = translations().ngettext(singular, plural, n)
    return text % {"num": n, **variables}


def phrase_text(text: Phrase) -> str:
    """What the survey checks say (engage/survey/phrases.py), in the page's language: each
    template looked up in the catalog, the author's own words as written."""
    catalog = translations()
    locale = g.page_language

    def count(number: Count) -> str:
        return format_decimal(number.value, locale=locale)

    return text.render(catalog.gettext, count)


class _Problem(Protocol):
    @property
    def text(self) -> Phrase: ...


def problem_message(problem: _Problem) -> str:
    """A problem of a survey check (the loader's Problem, the editor's FieldProblem) as the
    page says it; its English `message` is what `engage surveys check` writes."""
    return phrase_text(problem.text)


def language_name(code: str) -> str:
    """A survey language as the page's language names it ("criollo haitiano (ht)"), where CLDR
    knows it; else its code (mix, zap)."""
    try:
        name = Locale.parse(code).get_display_name(page_language())
    except (UnknownLocaleError, ValueError, TypeError):
        return code
    return f"{name} ({code})" if name else code


def init_app(app: Flask) -> None:
    app.jinja_env.add_extension("jinja2.ext.i18n")
    # Templates get the bare look-ups: Jinja's "newstyle" gettext fills in the placeholders
    # itself, escaping each value (a file name, say). Handed our own gettext and ngettext, it
    # would fill them in twice, and a plural text with a name in it would fail. A method the
    # extension adds to the environment, which Environment's type cannot know.
    app.jinja_env.install_gettext_callables(  # type: ignore[attr-defined]
        lambda message: translations().gettext(message),
        lambda singular, plural, n: translations().ngettext(singular, plural, n),
        newstyle=True,
    )
    app.jinja_env.globals["problem_message"] = problem_message

    @app.context_processor
    def _language() -> dict[str, str]:
        translations()
        return {"page_language": g.page_language}

    @app.after_request
    def _remember(response: Response) -> Response:
        chosen = request.args.get("lang")
        if chosen in PAGE_LANGUAGES:
            response.set_cookie(
                "lang",
                chosen,
                max_age=365 * 24 * 3600,
                samesite="Lax",
                secure=app.config["SESSION_COOKIE_SECURE"],
                httponly=True,
            )
        return response
