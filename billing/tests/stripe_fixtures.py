"""Stripe in the tests: the fake Stripe API on loopback (billing/tests/fake_stripe.py) with the settings that point
the shop at it, and what a browser running Stripe.js would send it (`browser_confirm`, `browser_authenticate`)."""

import json
import urllib.parse
import urllib.request

import pytest

from billing.tests.fake_stripe import PUBLISHABLE_KEY, FakeStripe, sign


@pytest.fixture(scope="session")
def stripe_server():
    with FakeStripe() as server:
        yield server


@pytest.fixture
def fake_stripe(stripe_server, settings):
    """The fake, with the shop's settings pointing at it (PAYMENT_GATEWAY=stripe); no webhook URL unless a test
    sets one."""
    for name, value in stripe_server.settings().items():
        setattr(settings, name, value)
    stripe_server.webhook_url = None
    stripe_server.webhook_copies = 1
    stripe_server.down = False
    stripe_server.webhook_answers.clear()
    stripe_server.on_delivered = None
    yield stripe_server
    stripe_server.webhook_url = None
    stripe_server.down = False
    stripe_server.on_delivered = None


def _browser(fake, path, **params):
    data = urllib.parse.urlencode({"key": PUBLISHABLE_KEY, **params}).encode()
    try:
        with urllib.request.urlopen(urllib.request.Request(fake.url + path, data=data, method="POST")) as answer:  # noqa: S310
            return json.load(answer)
    except urllib.error.HTTPError as error:  # a decline: Stripe.js hands its error to the page
        return json.load(error)


def browser_confirm(fake, client_secret, payment_method):
    """What Stripe.js's confirmPayment sends Stripe: the PaymentIntent as it stands after."""
    pi = client_secret.split("_secret_")[0]
    return _browser(
        fake, f"/v1/payment_intents/{pi}/confirm", client_secret=client_secret, payment_method=payment_method
    )


def browser_authenticate(fake, client_secret, outcome="complete"):
    """The cardholder completes (or fails) Stripe's 3-D Secure test page."""
    pi = client_secret.split("_secret_")[0]
    return _browser(fake, f"/_test/3ds/{pi}", client_secret=client_secret, outcome=outcome)


def post_event(client, event, *, secret=None, signature=None):
    """Delivers a Stripe event to the shop's webhook, signed as Stripe signs it."""
    payload = json.dumps(event)
    header = signature or (sign(payload) if secret is None else sign(payload, secret))
    return client.post(
        "/payments/stripe/webhook/", data=payload, content_type="application/json", HTTP_STRIPE_SIGNATURE=header
    )
