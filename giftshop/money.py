"""Money is a Decimal with its currency beside it; this is the one place amounts are rounded, and the one place they
are written for a reader (`money`, also the template filter of the same name)."""

from decimal import ROUND_HALF_UP, Decimal

from babel.core import UnknownLocaleError
from babel.numbers import format_currency
from django.conf import settings
from django.utils import translation

CENT = Decimal("0.01")
# ISO 4217 currencies with no minor unit (Chargebee sends amounts in minor units, so this matters).
ZERO_DECIMAL_CURRENCIES = frozenset(
    {"BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "VND", "VUV", "XAF", "XOF", "XPF"}
)


def quantize(amount) -> Decimal:
    """Rounds to cents, half up, as invoices are printed."""
    return Decimal(amount).quantize(CENT, rounding=ROUND_HALF_UP)


def to_minor_units(amount: Decimal, currency: str) -> int:
    if currency.upper() in ZERO_DECIMAL_CURRENCIES:
        return int(Decimal(amount).quantize(Decimal(1), rounding=ROUND_HALF_UP))
    return int(quantize(amount) * 100)


def money(amount, currency, language=None):
    """An amount as a reader of `language` (the active one by default) writes it, by CLDR's rules (Babel), not ours:
    "€1,234.56" in English, "1.234,56 €" in German, "1 234,56 €" in French; the currency's own decimals (¥1,235).
    "" for no amount; an unknown currency code is shown as its code."""
    if amount is None or amount == "":
        return ""
    locale = translation.to_locale(language or translation.get_language() or settings.LANGUAGE_CODE)
    try:
        return format_currency(Decimal(amount), currency.upper(), locale=locale)
    except UnknownLocaleError:
        return format_currency(Decimal(amount), currency.upper(), locale=translation.to_locale(settings.LANGUAGE_CODE))
