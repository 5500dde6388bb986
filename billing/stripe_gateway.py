"""The Stripe gateway (PAYMENT_GATEWAY=billing.stripe_gateway.StripeGateway), through the official `stripe` library.

Card data never reaches this server (PCI SAQ A): cards are collected in the browser by Stripe's Payment Element and
arrive here as PaymentMethod ids (`pm_…`); a raw card number is refused. A "token" in the gateway interface is a
PaymentMethod id. Charges are PaymentIntents confirmed at once (`confirm=true`; off session for renewals and
merchant-API charges, where no customer is there to authenticate); the web checkout's PaymentIntents are created
here and confirmed in the browser (billing/stripe_payments.py). Every POST carries an idempotency key.
"""

import contextlib
from dataclasses import dataclass
from decimal import Decimal
from urllib.parse import urlsplit

import stripe
from django.conf import settings
from django.utils.translation import gettext_lazy as _

from billing.gateways import Card, Charge, PaymentError
from billing.models import StripeCustomer

# Currencies Stripe counts in whole units (docs.stripe.com/currencies#zero-decimal).
ZERO_DECIMAL = {
    *("BIF", "CLP", "DJF", "GNF", "JPY", "KMF", "KRW", "MGA"),
    *("PYG", "RWF", "UGX", "VND", "VUV", "XAF", "XOF", "XPF"),
}
RAW_CARD_REFUSED = _(
    "Card numbers are not accepted here: this shop takes cards through Stripe. Pay on the checkout page, or send a "
    "Stripe PaymentMethod id (pm_…) made with Stripe.js."
)
DECLINE_MESSAGES = {
    "card_declined": _("Your card was declined. Try another card."),
    "insufficient_funds": _("Your card has insufficient funds. Try another card."),
    "authentication_required": _("Your bank asks you to confirm this payment."),
    "invalid_token": _("This payment method cannot be used. Add the card again."),
    "gateway_error": _("The payment could not be processed just now. Try again in a moment."),
}


class AuthenticationRequired(PaymentError):
    """The card's bank wants the cardholder to authenticate (3-D Secure / SCA) before it pays: `intent_id` is the
    PaymentIntent the customer can confirm in the browser."""

    def __init__(self, intent_id, message=DECLINE_MESSAGES["authentication_required"]):
        super().__init__("authentication_required", message)
        self.intent_id = intent_id


def minor_units(amount, currency):
    return int(Decimal(amount) * (1 if currency.upper() in ZERO_DECIMAL else 100))


def major_units(amount, currency):
    return Decimal(amount) / (1 if currency.upper() in ZERO_DECIMAL else 100)


def client():
    """A StripeClient on the configured key and API address (Stripe's own unless STRIPE_API_BASE says otherwise)."""
    if not settings.STRIPE_SECRET_KEY:
        raise PaymentError("gateway_error", "Stripe is not configured (STRIPE_SECRET_KEY).")
    return stripe.StripeClient(
        settings.STRIPE_SECRET_KEY,
        base_addresses={"api": settings.STRIPE_API_BASE},
        max_network_retries=2,  # with the same idempotency key, so a retry never charges twice
    )


def stripe_csp():
    """The Content-Security-Policy additions of a page that runs Stripe.js: its script from Stripe.js's own
    origin, its frames (the Payment Element, 3-D Secure) from Stripe's, its calls to Stripe's API. Nothing else."""
    script = [origin(settings.STRIPE_JS_URL)]
    if script == ["https://js.stripe.com"]:
        script.append("https://*.js.stripe.com")  # Stripe.js's own frames and scripts, as Stripe's CSP guide lists
    return {
        "script-src": script,
        "frame-src": [*script, "https://hooks.stripe.com"],
        "connect-src": [origin(settings.STRIPE_API_BASE)],
    }


def origin(url):
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def decline(error: stripe.StripeError):
    """Our PaymentError for one of Stripe's errors."""
    if isinstance(error, stripe.CardError):
        body = (error.json_body or {}).get("error", {}) if isinstance(error.json_body, dict) else {}
        if error.code == "authentication_required":
            intent = body.get("payment_intent") or {}
            return AuthenticationRequired(intent.get("id", ""))
        code = "insufficient_funds" if body.get("decline_code") == "insufficient_funds" else "card_declined"
        return PaymentError(code, DECLINE_MESSAGES[code])
    if isinstance(error, stripe.InvalidRequestError) and error.code == "resource_missing":
        return PaymentError("invalid_token", DECLINE_MESSAGES["invalid_token"])
    return PaymentError("gateway_error", DECLINE_MESSAGES["gateway_error"])


@dataclass(frozen=True)
class Intent:
    """What the shop needs of a PaymentIntent."""

    id: str
    status: str
    amount: Decimal
    currency: str
    client_secret: str
    payment_method: str
    customer: str
    metadata: dict
    error_message: str
    saves_card: bool  # setup_future_usage: the customer agreed to keep the card

    @classmethod
    def of(cls, pi):
        pi = plain(pi)
        error = pi.get("last_payment_error") or {}
        currency = pi["currency"].upper()
        method = pi.get("payment_method")
        return cls(
            id=pi["id"],
            status=pi["status"],
            amount=major_units(pi["amount"], currency),
            currency=currency,
            client_secret=pi.get("client_secret") or "",
            payment_method=(method if isinstance(method, str) else (method or {}).get("id")) or "",
            customer=pi.get("customer") or "",
            metadata=dict(pi.get("metadata") or {}),
            error_message=error.get("message") or "",
            saves_card=bool(pi.get("setup_future_usage")),
        )


class StripeGateway:
    name = "stripe"

    def __init__(self):
        self.stripe = client()

    # --- the gateway interface (billing/gateways.py) -----------------------------------------------------------

    def tokenize(self, *, number, exp_month, exp_year, cvc=""):
        raise PaymentError("raw_card_refused", RAW_CARD_REFUSED)

    def exchange(self, token, *, customer=None):
        """A saved card for a PaymentMethod id made by Stripe.js: attached to the customer's Stripe Customer, so it
        can pay again off session."""
        if not str(token).startswith("pm_"):
            raise PaymentError("invalid_token", RAW_CARD_REFUSED)
        try:
            pm = plain(self.stripe.v1.payment_methods.retrieve(token))
            if customer is not None and pm.get("customer") != (owner := self.customer_id(customer)):
                if pm.get("customer"):  # another customer's card is no one else's to save
                    raise PaymentError("invalid_token", DECLINE_MESSAGES["invalid_token"])
                pm = self.stripe.v1.payment_methods.attach(token, {"customer": owner})
        except stripe.StripeError as error:
            raise decline(error) from None
        return card_of(pm)

    def describe(self, token):
        try:
            card = card_of(self.stripe.v1.payment_methods.retrieve(token))
        except (stripe.StripeError, PaymentError):
            return None
        return card.brand, card.last4

    def charge(self, *, token, amount, currency, idempotency_key, off_session=False, metadata=None):
        """A PaymentIntent for `token`, confirmed at once. Off session (a renewal): a bank that wants the cardholder
        raises AuthenticationRequired; on session with no browser (an API client) the same."""
        params = {
            "amount": minor_units(amount, currency),
            "currency": currency.lower(),
            "payment_method": token,
            "confirm": True,
            "automatic_payment_methods": {"enabled": True, "allow_redirects": "never"},
            "metadata": metadata or {},
        }
        try:
            customer = plain(self.stripe.v1.payment_methods.retrieve(token)).get("customer")
            if customer:
                params["customer"] = customer
            if off_session:
                params["off_session"] = True
            pi = self.stripe.v1.payment_intents.create(params, {"idempotency_key": idempotency_key})
        except stripe.StripeError as error:
            raise decline(error) from None
        if pi["status"] == "requires_action":
            raise AuthenticationRequired(pi["id"])
        if pi["status"] != "succeeded":
            raise PaymentError("card_declined", DECLINE_MESSAGES["card_declined"])
        return Charge(pi["id"], Decimal(amount), currency)

    def refund(self, *, reference, amount, currency, idempotency_key):
        """A Stripe Refund of the PaymentIntent `reference`."""
        try:
            refund = self.stripe.v1.refunds.create(
                {"payment_intent": reference, "amount": minor_units(amount, currency)},
                {"idempotency_key": idempotency_key},
            )
        except stripe.StripeError as error:
            raise PaymentError("refund_failed", f"Stripe refused the refund: {error.user_message or error}") from None
        return Charge(refund["id"], Decimal(amount), currency)

    def forget(self, token):
        """A removed card is detached from its Stripe Customer: it can never be charged again."""
        with contextlib.suppress(stripe.InvalidRequestError):  # already detached or unknown
            self.stripe.v1.payment_methods.detach(token)

    def customer_forget(self, stripe_id):
        """An erased customer's Customer at Stripe is deleted, with the name and address it holds and the cards
        attached to it; one Stripe no longer knows is gone already."""
        with contextlib.suppress(stripe.InvalidRequestError):
            self.stripe.v1.customers.delete(stripe_id)

    # --- the browser's PaymentIntents (billing/stripe_payments.py) ---------------------------------------------

    def customer_id(self, customer):
        """The customer's Stripe Customer, made the first time (one per customer: the idempotency key makes a
        retried or concurrent first call find the same one)."""
        known = StripeCustomer.objects.filter(customer=customer).values_list("stripe_id", flat=True).first()
        if known:
            return known
        try:
            made = self.stripe.v1.customers.create(
                {
                    "email": customer.email,
                    "name": customer.get_full_name(),
                    "metadata": {"giftshop_customer": str(customer.pk)},
                },
                {"idempotency_key": f"giftshop-customer-{customer.pk}"},
            )
        except stripe.StripeError as error:
            raise decline(error) from None
        row, _created = StripeCustomer.objects.get_or_create(customer=customer, defaults={"stripe_id": made["id"]})
        return row.stripe_id

    def intent_create(self, *, amount, currency, idempotency_key, customer_id=None, payment_method=None, save=False,
                      metadata=None):  # fmt: skip
        """A PaymentIntent for the browser to confirm (Payment Element): cards and the wallets the Element offers
        (automatic payment methods). `save`: the customer agreed to keep the card for renewals and later
        purchases (setup_future_usage=off_session)."""
        params = {
            "amount": minor_units(amount, currency),
            "currency": currency.lower(),
            "automatic_payment_methods": {"enabled": True},
            "metadata": metadata or {},
        }
        if customer_id:
            params["customer"] = customer_id
        if payment_method:
            params["payment_method"] = payment_method
        if save and customer_id:
            params["setup_future_usage"] = "off_session"
        try:
            return Intent.of(self.stripe.v1.payment_intents.create(params, {"idempotency_key": idempotency_key}))
        except stripe.StripeError as error:
            raise decline(error) from None

    def intent_get(self, intent_id):
        try:
            return Intent.of(self.stripe.v1.payment_intents.retrieve(intent_id))
        except stripe.StripeError as error:
            raise decline(error) from None

    def intent_cancel(self, intent_id):
        """Cancels a PaymentIntent not yet paid; returns it as it stands after (it may have succeeded meanwhile)."""
        try:
            return Intent.of(self.stripe.v1.payment_intents.cancel(intent_id))
        except stripe.InvalidRequestError:  # succeeded or canceled already
            return self.intent_get(intent_id)
        except stripe.StripeError as error:
            raise decline(error) from None

    def card(self, token):
        try:
            return card_of(self.stripe.v1.payment_methods.retrieve(token))
        except stripe.StripeError as error:
            raise decline(error) from None

    def verify_event(self, payload, signature):
        """The event Stripe sent, once its signature checks out (stripe.Webhook.construct_event); raises
        ValueError or stripe.SignatureVerificationError otherwise."""
        return stripe.Webhook.construct_event(payload, signature, settings.STRIPE_WEBHOOK_SECRET)


def plain(obj):
    """A Stripe API object as a plain dict (StripeObject is not a dict)."""
    return obj.to_dict() if hasattr(obj, "to_dict") else obj


def card_of(pm):
    pm = plain(pm)
    card = pm.get("card") or {}
    if pm.get("type") != "card" or not card:
        raise PaymentError("invalid_token", _("Only cards can be saved."))
    return Card(
        token=pm["id"],
        brand=str(card.get("brand", "card")).replace("_", " ").title().replace("Amex", "American Express"),
        last4=card.get("last4", "0000"),
        exp_month=int(card.get("exp_month", 12)),
        exp_year=int(card.get("exp_year", 2030)),
    )
