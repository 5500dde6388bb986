"""Which language a page or an email is read in (issue 17), and the customer's stored `locale` ("de_DE") as one of
the site's languages ("de").

Pages: the visitor's explicit choice (Django's language cookie, set by the switcher) wins, then a signed-in
customer's stored language (CustomerLanguageMiddleware, below), then the browser's Accept-Language
(LocaleMiddleware), then English. URLs carry no language prefix: see settings.LANGUAGES for why."""

from babel.core import get_global
from django.conf import settings
from django.utils import translation


def language_of(locale):
    """The site language for a stored locale or language tag ("de_DE", "de-AT", "pl" → "de", "de", "pl"); the
    site's default for an empty or unknown one ("ja_JP" while Japanese is not offered)."""
    code = (locale or "").strip().replace("_", "-").lower()
    if code:
        try:
            return translation.get_supported_language_variant(code)
        except LookupError:
            pass
    return settings.LANGUAGE_CODE


def locale_for(language, current=""):
    """The locale stored for a customer who chose `language`: their current one when it already reads as that
    language (a Swiss "de_CH" stays), else the language's most likely locale from CLDR ("de" → "de_DE"), the form
    the storefront API answers (MediaStore's `locale`)."""
    if current and language_of(current) == language:
        return current
    likely = get_global("likely_subtags").get(language.split("-")[0], "")
    parts = likely.split("_")
    return f"{parts[0]}_{parts[-1]}" if len(parts) >= 2 and parts[-1].isupper() else language


class CustomerLanguageMiddleware:
    """After LocaleMiddleware and AuthenticationMiddleware: a signed-in customer who has not chosen a language on
    this browser (no language cookie) reads the site in the language stored on their account, not the browser's."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        if (
            settings.LANGUAGE_COOKIE_NAME not in request.COOKIES
            and user is not None
            and user.is_authenticated
            and getattr(user, "locale", "")
        ):
            language = language_of(user.locale)
            translation.activate(language)
            request.LANGUAGE_CODE = language
        return self.get_response(request)
