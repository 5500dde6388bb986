"""The payment gateway interface and the built-in sandbox gateway.

A gateway turns card details into a reusable token, charges a token and refunds a charge. Every call carries
an idempotency key, so a retried request never charges twice. The sandbox behaves like a real gateway for the
documented test cards (README "Sandbox payments") and moves no money.
"""

import hashlib
import hmac
import secrets
import threading
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.utils.module_loading import import_string
from django.utils.translation import gettext_lazy as _


class PaymentError(Exception):
    """The gateway refused: `code` is machine-readable, `message` can be shown to the customer."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Card:
    token: str
    brand: str
    last4: str
    exp_month: int
    exp_year: int


@dataclass(frozen=True)
class Charge:
    reference: str
    amount: Decimal
    currency: str


# Test cards: number -> outcome. Tokens made from them keep the outcome (tok_sandbox_<outcome>_<random>).
SANDBOX_CARDS = {
    "4242424242424242": ("success", "Visa"),
    "5555555555554444": ("success", "Mastercard"),
    "4000000000000002": ("card_declined", "Visa"),
    "4000000000009995": ("insufficient_funds", "Visa"),
}
# Ready-made tokens, for API clients that skip tokenisation.
SANDBOX_TOKENS = {
    "tok_visa": ("success", "Visa", "4242"),
    "tok_mastercard": ("success", "Mastercard", "4444"),
    "tok_chargeDeclined": ("card_declined", "Visa", "0002"),
    "tok_chargeDeclinedInsufficientFunds": ("insufficient_funds", "Visa", "9995"),
}
DECLINE_MESSAGES = {
    "card_declined": _("Your card was declined. Try another card."),
    "insufficient_funds": _("Your card has insufficient funds. Try another card."),
    "invalid_token": _("This payment method cannot be used. Add the card again."),
}


class SandboxGateway:
    name = "sandbox"
    _charges = {}  # idempotency key -> Charge, per process: a retried call answers like the first
    _lock = threading.Lock()

    def tokenize(self, *, number, exp_month, exp_year, cvc=""):
        number = "".join(ch for ch in str(number) if ch.isdigit())
        if number not in SANDBOX_CARDS:
            raise PaymentError(
                "invalid_card",
                _("This card is not accepted here: use a sandbox test card such as 4242 4242 4242 4242."),
            )
        outcome, brand = SANDBOX_CARDS[number]
        return Card(f"tok_sandbox_{outcome}_{secrets.token_hex(8)}", brand, number[-4:], int(exp_month), int(exp_year))

    def exchange(self, token, *, customer=None):
        """A reusable card token for a one-time token a client got from the gateway (sandbox: tok_visa, …); a
        gateway that keeps cards per customer (Stripe) files it under `customer`."""
        if token not in SANDBOX_TOKENS:
            raise PaymentError("invalid_token", DECLINE_MESSAGES["invalid_token"])
        outcome, brand, last4 = SANDBOX_TOKENS[token]
        return Card(f"tok_sandbox_{outcome}_{secrets.token_hex(8)}", brand, last4, 12, 2030)

    def describe(self, token):
        """Brand and last four digits of a token, as a real gateway's token lookup gives them."""
        if token in SANDBOX_TOKENS:
            return SANDBOX_TOKENS[token][1], SANDBOX_TOKENS[token][2]
        return None

    def _outcome(self, token):
        if token in SANDBOX_TOKENS:
            return SANDBOX_TOKENS[token][0]
        if token.startswith("tok_sandbox_"):
            for outcome in ("success", "card_declined", "insufficient_funds"):
                if token.startswith(f"tok_sandbox_{outcome}_"):
                    return outcome
        return "invalid_token"

    def charge(self, *, token, amount, currency, idempotency_key, off_session=False):
        """`off_session`: no customer is there to authenticate (a renewal); the sandbox never asks for it."""
        with self._lock:
            if idempotency_key in self._charges:
                return self._charges[idempotency_key]
        outcome = self._outcome(token)
        if outcome != "success":
            raise PaymentError(outcome, DECLINE_MESSAGES[outcome])
        digest = hmac.new(settings.SECRET_KEY.encode(), idempotency_key.encode(), hashlib.sha256).hexdigest()
        charge = Charge(f"sbx_ch_{digest[:24]}", Decimal(amount), currency)
        with self._lock:
            return self._charges.setdefault(idempotency_key, charge)

    def refund(self, *, reference, amount, currency, idempotency_key):
        digest = hmac.new(settings.SECRET_KEY.encode(), idempotency_key.encode(), hashlib.sha256).hexdigest()
        return Charge(f"sbx_re_{digest[:24]}", Decimal(amount), currency)


def get_gateway():
    return import_string(getattr(settings, "PAYMENT_GATEWAY", "billing.gateways.SandboxGateway"))()
