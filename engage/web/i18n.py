"""The pages' own language (Spanish or English), from the `web` gettext catalogs."""

from __future__ import annotations

from babel import Locale, UnknownLocaleError
from babel.support import NullTranslations, Translations
from flask import Flask, Response, g, request

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
