"""The Stripe gateway through the official `stripe` library against the fake Stripe API: charges are PaymentIntents
confirmed at once with the caller's idempotency key (a retry charges once), Stripe's test cards decline as Stripe
documents, off-session charges that need authentication say so, refunds are Stripe Refunds, saved cards hang off
one Stripe Customer per customer, and a card number is never accepted."""

import os
import subprocess
import sys
from decimal import Decimal

import pytest
from django.conf import settings

from accounts.tests.factories import CustomerFactory
from billing.gateways import PaymentError, get_gateway
from billing.models import StripeCustomer
from billing.stripe_gateway import AuthenticationRequired, StripeGateway, minor_units, stripe_csp

pytestmark = pytest.mark.django_db


def test_the_setting_picks_stripe_and_the_sandbox_stays_the_default(settings, fake_stripe):
    assert isinstance(get_gateway(), StripeGateway)
    settings.PAYMENT_GATEWAY = "billing.gateways.SandboxGateway"
    assert get_gateway().name == "sandbox"


def test_a_charge_is_a_confirmed_payment_intent_and_its_key_makes_a_retry_charge_once(fake_stripe):
    gateway = get_gateway()
    first = gateway.charge(token="pm_card_visa", amount=Decimal("19.99"), currency="EUR", idempotency_key="order-1-a")
    again = gateway.charge(token="pm_card_visa", amount=Decimal("19.99"), currency="EUR", idempotency_key="order-1-a")

    assert first.reference == again.reference and first.reference.startswith("pi_")
    intent = fake_stripe.intent(first.reference)
    assert (intent["status"], intent["amount"], intent["currency"]) == ("succeeded", 1999, "eur")
    created = [p for m, path, p in fake_stripe.requests if path == "/v1/payment_intents" and p["amount"] == "1999"]
    assert created[-1]["confirm"] == "true"
    assert len([i for i in fake_stripe.intents.values() if i["id"] == first.reference]) == 1


@pytest.mark.parametrize(
    ("card", "code"),
    [("pm_card_chargeDeclined", "card_declined"), ("pm_card_chargeDeclinedInsufficientFunds", "insufficient_funds")],
)
def test_declines_come_back_as_payment_errors(fake_stripe, card, code):
    with pytest.raises(PaymentError) as refused:
        get_gateway().charge(token=card, amount=Decimal("5.00"), currency="EUR", idempotency_key=f"k-{card}")
    assert refused.value.code == code


def test_an_off_session_charge_that_needs_authentication_names_its_payment_intent(fake_stripe):
    customer = CustomerFactory()
    card = get_gateway().exchange("pm_card_authenticationRequired", customer=customer)

    with pytest.raises(AuthenticationRequired) as refused:
        get_gateway().charge(
            token=card.token, amount=Decimal("9.99"), currency="EUR", idempotency_key="renewal:x", off_session=True
        )

    intent = fake_stripe.intent(refused.value.intent_id)
    assert intent["status"] == "requires_payment_method"
    assert intent["last_payment_error"]["code"] == "authentication_required"
    sent = next(p for m, path, p in fake_stripe.requests if path == "/v1/payment_intents" and p.get("off_session"))
    assert (sent["off_session"], sent["confirm"], sent["customer"]) == ("true", "true", intent["customer"])


def test_saved_cards_hang_off_one_stripe_customer_per_customer(fake_stripe):
    customer = CustomerFactory(email="casey@example.com")
    first = get_gateway().exchange("pm_card_visa", customer=customer)
    second = get_gateway().exchange("pm_card_mastercard", customer=customer)

    stripe_id = StripeCustomer.objects.get(customer=customer).stripe_id
    assert fake_stripe.payment_methods[first.token]["customer"] == stripe_id
    assert fake_stripe.payment_methods[second.token]["customer"] == stripe_id
    assert fake_stripe.customer(stripe_id)["email"] == "casey@example.com"
    assert (first.brand, first.last4, second.brand, second.last4) == ("Visa", "4242", "Mastercard", "4444")
    assert first.token.startswith("pm_") and first.token != "pm_card_visa"


def test_a_refund_is_a_stripe_refund_of_the_payment_intent(fake_stripe):
    gateway = get_gateway()
    paid = gateway.charge(token="pm_card_visa", amount=Decimal("12.50"), currency="EUR", idempotency_key="r-1")

    refund = gateway.refund(
        reference=paid.reference, amount=Decimal("12.50"), currency="EUR", idempotency_key="refund:1"
    )
    again = gateway.refund(
        reference=paid.reference, amount=Decimal("12.50"), currency="EUR", idempotency_key="refund:1"
    )

    assert refund.reference == again.reference and refund.reference.startswith("re_")
    assert fake_stripe.refunds[refund.reference]["payment_intent"] == paid.reference
    assert fake_stripe.refunds[refund.reference]["amount"] == 1250
    with pytest.raises(PaymentError):  # nothing left to refund: Stripe refuses, and so do we
        gateway.refund(reference=paid.reference, amount=Decimal("12.50"), currency="EUR", idempotency_key="refund:2")


def test_a_card_number_is_refused_with_a_clear_error(fake_stripe):
    with pytest.raises(PaymentError) as refused:
        get_gateway().tokenize(number="4242424242424242", exp_month=12, exp_year=2030)
    assert refused.value.code == "raw_card_refused"
    assert "Stripe" in refused.value.message


def test_amounts_are_in_the_currencys_minor_units():
    assert minor_units(Decimal("19.99"), "EUR") == 1999
    assert minor_units(Decimal("1500"), "JPY") == 1500


def start_django(env_overrides, tmp_path, show="settings.PAYMENT_GATEWAY"):
    """Django started in a fresh process with production's environment and `env_overrides`; prints `show`."""
    unset = {"SECRET_KEY", "ALLOWED_HOSTS", "EMAIL_BACKEND", "DEBUG", "GIFT_CODE_SECRET", "DATABASE_URL", "REDIS_URL"}
    env = {k: v for k, v in os.environ.items() if k not in unset and not k.startswith(("STRIPE_", "PAYMENT_"))}
    env.update({"GIFTSHOP_DATA_DIR": str(tmp_path), **env_overrides})
    code = f"import django; django.setup(); from django.conf import settings; print({show})"
    return subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=settings.BASE_DIR, capture_output=True, text=True, timeout=60
    )


PRODUCTION = {"SECRET_KEY": "s" * 50, "ALLOWED_HOSTS": "example.com", "EMAIL_BACKEND": "x", "GIFT_CODE_SECRET": "g"}


def test_production_on_stripe_refuses_to_start_without_its_keys(tmp_path):
    keys = {"STRIPE_SECRET_KEY": "sk_live_x", "STRIPE_PUBLISHABLE_KEY": "pk_live_x", "STRIPE_WEBHOOK_SECRET": "whsec_x"}
    for missing in keys:
        given = {name: value for name, value in keys.items() if name != missing}
        result = start_django({**PRODUCTION, "PAYMENT_GATEWAY": "stripe", **given}, tmp_path)
        assert result.returncode != 0 and f"{missing} is not set" in result.stderr

    shown = "settings.PAYMENT_GATEWAY, settings.STRIPE_API_BASE, settings.STRIPE_JS_URL"
    on_stripe = start_django({**PRODUCTION, "PAYMENT_GATEWAY": "stripe", **keys}, tmp_path, show=shown)
    by_default = start_django(PRODUCTION, tmp_path, show="settings.PAYMENT_GATEWAY")
    assert on_stripe.stdout.split() == [
        "billing.stripe_gateway.StripeGateway", "https://api.stripe.com", "https://js.stripe.com/v3/"
    ]  # fmt: skip
    assert by_default.stdout.strip() == "billing.gateways.SandboxGateway"


def test_the_pages_running_stripe_js_allow_stripes_origins_and_no_other(settings):
    settings.STRIPE_JS_URL, settings.STRIPE_API_BASE = "https://js.stripe.com/v3/", "https://api.stripe.com"
    assert stripe_csp() == {
        "script-src": ["https://js.stripe.com", "https://*.js.stripe.com"],
        "frame-src": ["https://js.stripe.com", "https://*.js.stripe.com", "https://hooks.stripe.com"],
        "connect-src": ["https://api.stripe.com"],
    }
