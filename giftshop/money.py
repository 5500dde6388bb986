"""Money is a Decimal with its currency beside it; this is the one place amounts are rounded."""

from decimal import ROUND_HALF_UP, Decimal

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
