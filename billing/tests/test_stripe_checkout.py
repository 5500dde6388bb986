"""The web checkout with Stripe (PAYMENT_GATEWAY=stripe), against the fake Stripe API: the checkout form takes no
card; the payment page runs Stripe.js (its Payment Element) with a PaymentIntent for the order's total, and its
Content-Security-Policy allows Stripe's origins only there; the order is paid only once the server has seen the
PaymentIntent succeed, on the browser's return or by the webhook, whichever comes first, exactly once. A declined
card leaves the order payable; a card kept with consent pays again; the storefront and merchant APIs take Stripe
PaymentMethod ids and refuse card numbers."""

import re
from datetime import timedelta
from decimal import Decimal

import pytest
import time_machine
from django.db import IntegrityError
from django.urls import reverse
from django.utils import timezone

from accounts.models import PaymentMethod
from accounts.tests.factories import CustomerFactory
from billing import services, stripe_payments, tasks
from billing.gateways import get_gateway
from billing.models import Invoice, Order, Payment, StripeEvent
from billing.services import payment_method_from_token
from billing.tests.fake_stripe import FakeStripe
from billing.tests.stripe_fixtures import browser_authenticate, browser_confirm, post_event
from gifts.models import Gift
from gifts.tests.merchant import MerchantClient
from giftshop.tests.mediastore import client_for, data_of
from offers.models import Coupon
from offers.tests.factories import CouponFactory, OfferFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def offer():
    return OfferFactory(title="Premium yearly", period="year", price="99.99", currency="EUR", tags=["premium"])


def checkout_key(client, url):
    return re.search(r'name="checkout_key" value="([^"]+)"', client.get(url).content.decode()).group(1)


def gift_form(client, offer, **fields):
    url = reverse("billing:gift_checkout", args=[offer.long_id])
    return {
        "checkout_key": checkout_key(client, url),
        "email": "guest@example.com",
        "recipient_email": "friend@example.com",
        "recipient_email_again": "friend@example.com",
        "delivery_date": (timezone.now() + timedelta(days=2)).date().isoformat(),
        "delivery_time": "10:00",
        "time_zone": "Europe/Berlin",
        "personal_note": "Happy birthday!",
        "action": "pay",
        **fields,
    }


def start_gift_checkout(client, offer, **fields):
    """The checkout form posted: the browser is sent to the payment page. Returns (order, the page, its secret)."""
    response = client.post(reverse("billing:gift_checkout", args=[offer.long_id]), gift_form(client, offer, **fields))
    assert response.status_code == 302, response.content.decode()
    order = Order.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("billing:stripe_pay", args=[order.pk])
    page = client.get(response["Location"])
    secret = re.search(r'data-client-secret="([^"]+)"', page.content.decode()).group(1)
    return order, page, secret


def come_back(client, order, intent_id):
    """Stripe.js sends the browser to the return address."""
    return client.get(reverse("billing:stripe_return", args=[order.pk]), {"payment_intent": intent_id})


def test_the_checkout_form_takes_no_card_and_the_payment_page_runs_stripe_js_only_from_stripe(
    client, offer, fake_stripe
):
    form_page = client.get(reverse("billing:gift_checkout", args=[offer.long_id])).content.decode()
    assert 'name="card_number"' not in form_page and 'name="save_card"' in form_page

    order, page, secret = start_gift_checkout(client, offer)

    html = page.content.decode()
    payment = Payment.objects.get(order=order)
    intent = fake_stripe.intent(payment.reference)
    assert secret == intent["client_secret"]
    assert (intent["amount"], intent["currency"], intent["status"]) == (9999, "eur", "requires_payment_method")
    assert intent["automatic_payment_methods"]["enabled"] is True  # cards and the wallets the Element offers
    assert intent["metadata"] == {"giftshop_order": str(order.pk), "giftshop_payment": str(payment.pk)}
    assert f'<script src="{fake_stripe.url}/v3/"></script>' in html
    assert 'name="card' not in html and "<input" not in html.split('id="payment-form"')[1].split("</form>")[0]
    policy = dict(part.strip().split(" ", 1) for part in page["Content-Security-Policy"].split(";") if part.strip())
    assert policy["script-src"] == f"'self' {fake_stripe.url}"
    assert policy["connect-src"] == fake_stripe.url
    assert policy["frame-src"] == f"{fake_stripe.url} https://hooks.stripe.com"
    assert order.status == Order.Status.PENDING and not Gift.objects.exists()
    # The browser has not confirmed anything yet: coming back early pays nothing.
    assert come_back(client, order, payment.reference)["Location"] == reverse("billing:stripe_pay", args=[order.pk])
    assert Order.objects.get().status == Order.Status.PENDING


def test_a_3d_secure_card_pays_once_whether_the_webhook_or_the_browser_tells_first(client, offer, fake_stripe):
    order, _, secret = start_gift_checkout(client, offer)
    assert browser_confirm(fake_stripe, secret, "pm_card_threeDSecure2Required")["status"] == "requires_action"
    assert Order.objects.get().status == Order.Status.PENDING
    authenticated = browser_authenticate(fake_stripe, secret)
    assert authenticated["status"] == "succeeded"

    event = fake_stripe.event_of("payment_intent.succeeded", authenticated["id"])
    assert post_event(client, event).status_code == 200  # the webhook first, before the browser is back
    assert post_event(client, event).status_code == 200  # and again: Stripe may deliver an event twice
    order.refresh_from_db()
    assert order.status == Order.Status.PAID
    assert come_back(client, order, authenticated["id"])["Location"] == reverse("billing:thanks", args=[order.pk])

    assert Gift.objects.count() == 1 and Invoice.objects.count() == 1
    paid = Payment.objects.get(status=Payment.Status.SUCCEEDED)
    assert paid.reference == authenticated["id"] and paid.gateway == "stripe"
    assert StripeEvent.objects.filter(event_id=event["id"]).count() == 1
    assert client.get(reverse("billing:thanks", args=[order.pk])).status_code == 200


def test_the_browser_returning_first_pays_it_and_the_late_webhook_changes_nothing(client, offer, fake_stripe):
    order, _, secret = start_gift_checkout(client, offer)
    paid = browser_confirm(fake_stripe, secret, "pm_card_visa")

    assert come_back(client, order, paid["id"])["Location"] == reverse("billing:thanks", args=[order.pk])
    assert post_event(client, fake_stripe.event_of("payment_intent.succeeded", paid["id"])).status_code == 200
    # An older event arriving last (out of order) cannot undo it: the webhook reads the PaymentIntent again.
    created = fake_stripe.event_of("payment_intent.created", paid["id"])
    assert post_event(client, created).status_code == 200

    assert Order.objects.get().status == Order.Status.PAID
    assert Gift.objects.count() == 1 and Payment.objects.filter(status=Payment.Status.SUCCEEDED).count() == 1


def test_a_declined_card_leaves_the_order_payable_with_another(client, offer, fake_stripe):
    order, _, secret = start_gift_checkout(client, offer)
    declined = browser_confirm(fake_stripe, secret, "pm_card_chargeDeclined")
    assert declined["error"]["code"] == "card_declined"
    failed = fake_stripe.event_of("payment_intent.payment_failed", declined["error"]["payment_intent"]["id"])
    assert post_event(client, failed).status_code == 200

    again = client.get(reverse("billing:stripe_pay", args=[order.pk]))
    assert "Your card was declined." in again.content.decode()
    assert Order.objects.get().status == Order.Status.PENDING and not Gift.objects.exists()

    paid = browser_confirm(fake_stripe, secret, "pm_card_visa")  # the same PaymentIntent, another card
    assert come_back(client, order, paid["id"]).status_code == 302
    assert Order.objects.get().status == Order.Status.PAID and Gift.objects.count() == 1


def test_a_failed_3d_secure_challenge_pays_nothing(client, offer, fake_stripe):
    order, _, secret = start_gift_checkout(client, offer)
    browser_confirm(fake_stripe, secret, "pm_card_threeDSecure2Required")
    failed = browser_authenticate(fake_stripe, secret, outcome="fail")

    assert failed["status"] == "requires_payment_method"
    response = come_back(client, order, failed["id"])
    assert response["Location"] == reverse("billing:stripe_pay", args=[order.pk])
    assert Order.objects.get().status == Order.Status.PENDING and not Gift.objects.exists()


def test_a_card_kept_with_consent_is_saved_on_the_stripe_customer_and_pays_the_next_order(
    client, customer, offer, fake_stripe
):
    client.force_login(customer)
    response = client.post(
        reverse("billing:checkout", args=[offer.long_id]),
        {"checkout_key": checkout_key(client, reverse("billing:checkout", args=[offer.long_id])),
         "saved_card": "", "save_card": "on", "action": "pay"},
    )  # fmt: skip
    order = Order.objects.get()
    secret = re.search(r'data-client-secret="([^"]+)"', client.get(response["Location"]).content.decode()).group(1)
    intent = fake_stripe.intent(secret.split("_secret_")[0])
    assert intent["setup_future_usage"] == "off_session" and intent["customer"]
    paid = browser_confirm(fake_stripe, secret, "pm_card_visa")
    come_back(client, order, paid["id"])

    card = PaymentMethod.objects.get(customer=customer)
    assert (card.gateway, card.token, card.label, card.is_default) == (
        "stripe",
        paid["payment_method"],
        "Visa •••• 4242",
        True,
    )
    assert fake_stripe.payment_methods[card.token]["customer"] == intent["customer"]
    assert Payment.objects.get(status=Payment.Status.SUCCEEDED).payment_method == card

    # The next purchase with the saved card: the payment page confirms it (the bank may still ask for 3-D Secure).
    second_offer = OfferFactory(price="5.00", currency="EUR", tags=["other"])
    url = reverse("billing:checkout", args=[second_offer.long_id])
    response = client.post(
        url, {"checkout_key": checkout_key(client, url), "saved_card": str(card.pk), "action": "pay"}
    )
    page = client.get(response["Location"]).content.decode()
    assert f'data-payment-method="{card.token}"' in page and "Visa •••• 4242" in page
    second = Order.objects.get(offer=second_offer)
    secret = re.search(r'data-client-secret="([^"]+)"', page).group(1)
    assert fake_stripe.intent(secret.split("_secret_")[0])["payment_method"] == card.token
    paid = browser_confirm(fake_stripe, secret, card.token)
    come_back(client, second, paid["id"])
    assert Order.objects.get(pk=second.pk).status == Order.Status.PAID


def test_a_removed_card_is_detached_at_stripe(client, customer, fake_stripe, django_capture_on_commit_callbacks):
    card = payment_method_from_token(customer=customer, token="pm_card_visa")
    client.force_login(customer)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("accounts:payment_method_remove", args=[card.pk]))
    assert not PaymentMethod.objects.exists()
    assert fake_stripe.payment_methods[card.token]["customer"] is None


def test_the_account_refuses_a_card_number_when_the_gateway_is_stripe(client, customer, fake_stripe):
    client.force_login(customer)
    response = client.post(
        reverse("accounts:payment_methods"), {"card_number": "4242 4242 4242 4242", "exp_month": 12, "exp_year": 2030}
    )
    assert "Card numbers are not accepted here" in response.content.decode()
    assert not PaymentMethod.objects.exists()


def test_the_sandbox_checkout_loads_nothing_from_stripe(client, offer):
    page = client.get(reverse("billing:gift_checkout", args=[offer.long_id]))
    assert 'name="card_number"' in page.content.decode() and "stripe" not in page.content.decode().lower()
    assert "stripe" not in page["Content-Security-Policy"]
    assert client.post("/payments/stripe/webhook/", data="{}", content_type="application/json").status_code == 404


def test_the_storefront_api_pays_with_a_stripe_payment_method(offer, fake_stripe):
    customer = CustomerFactory(email="api@example.com")
    api = client_for(customer)
    order = data_of(api.post("/mediastore/orders", {"offerId": offer.short_id}, format="json"))["order"]

    refused = api.post(
        "/mediastore/payments", {"orderId": order["id"], "cardToken": "pm_card_chargeDeclined"}, format="json"
    )
    paid = data_of(
        api.post("/mediastore/payments", {"orderId": order["id"], "cardToken": "pm_card_visa"}, format="json")
    )

    assert refused.status_code >= 400 and refused.json()["errors"]
    assert paid["payment"]["paymentGateway"] == "stripe"
    assert fake_stripe.intent(paid["payment"]["externalPaymentId"])["status"] == "succeeded"
    assert Order.objects.get().status == Order.Status.PAID


def test_the_merchant_api_saves_a_stripe_payment_method_and_refuses_card_numbers(fake_stripe):
    merchant = MerchantClient()
    customer = CustomerFactory(email="merchant-customer@example.com")

    refused = merchant.post(
        "payment_sources/create_card", {"customer_id": customer.pk, "card[number]": "4242424242424242"}
    )
    saved = merchant.post(
        "payment_sources/create_using_token", {"customer_id": customer.pk, "token_id": "pm_card_visa"}
    )

    assert refused.status_code == 400 and "Card numbers are not accepted here" in refused.json()["message"]
    assert saved.status_code == 200, saved.json()
    card = PaymentMethod.objects.get(customer=customer)
    assert card.gateway == "stripe" and card.token.startswith("pm_") and card.last4 == "4242"
    assert fake_stripe.payment_methods[card.token]["customer"] == customer.stripe_customer.stripe_id


def test_amounts_differ_from_the_payment_are_never_settled(client, offer, fake_stripe):
    order, _, secret = start_gift_checkout(client, offer)
    fake_stripe.intent(secret.split("_secret_")[0])["amount"] = 100  # not what the shop asked for
    paid = browser_confirm(fake_stripe, secret, "pm_card_visa")
    come_back(client, order, paid["id"])
    assert Order.objects.get().status == Order.Status.PENDING
    assert Decimal(Payment.objects.get().amount) == Decimal("99.99")


def test_the_fake_is_a_fake_on_loopback():
    with FakeStripe() as fake:
        assert fake.url.startswith("http://127.0.0.1:")


def test_a_second_payment_that_succeeds_for_a_paid_order_is_refunded_not_completed_twice(client, offer, fake_stripe):
    order, _, secret = start_gift_checkout(client, offer)
    first = browser_confirm(fake_stripe, secret, "pm_card_visa")
    come_back(client, order, first["id"])
    # A second PaymentIntent for the same order succeeded too (two tabs, a race): Stripe took the money twice.
    second = get_gateway().charge(token="pm_card_visa", amount=Decimal("99.99"), currency="EUR", idempotency_key="2nd")
    stray = Payment.objects.create(
        customer=order.customer, order=order, amount=Decimal("99.99"), currency="EUR", gateway="stripe",
        idempotency_key="order-stray", reference=second.reference,
    )  # fmt: skip

    with pytest.raises(IntegrityError):
        stripe_payments.settle(get_gateway().intent_get(second.reference))

    stray.refresh_from_db()
    assert (stray.status, stray.failure_code) == (Payment.Status.FAILED, "not_completed")
    refund = Payment.objects.get(kind=Payment.Kind.REFUND)
    assert fake_stripe.refunds[refund.reference]["payment_intent"] == second.reference
    assert Gift.objects.count() == 1 and Invoice.objects.count() == 1
    # Stripe's webhook for it, delivered now and again, changes nothing more.
    assert post_event(client, fake_stripe.event_of("payment_intent.succeeded", second.reference)).status_code == 200
    assert Payment.objects.filter(kind=Payment.Kind.REFUND).count() == 1


def test_payments_left_unconfirmed_past_the_orders_life_are_released_with_their_coupon(client, offer, fake_stripe):
    coupon = CouponFactory(code="ONCE", max_redemptions=1)
    left, _, _ = start_gift_checkout(client, offer, coupon="ONCE")
    assert Coupon.objects.get(pk=coupon.pk).redemptions == 1
    client.cookies.clear()
    paid_late, _, secret = start_gift_checkout_again(client, offer)
    succeeded = browser_confirm(fake_stripe, secret, "pm_card_visa")  # the browser never came back, no webhook

    later = timezone.now() + timedelta(hours=25)
    assert tasks.renew_due_subscriptions() == 0  # not yet: the orders are still alive
    assert Payment.objects.filter(status=Payment.Status.PENDING).count() == 2
    with time_machine.travel(later):
        tasks.renew_due_subscriptions()

    released = Payment.objects.get(order=left)
    assert (released.status, released.failure_code) == (Payment.Status.FAILED, "abandoned")
    assert fake_stripe.intent(released.reference)["status"] == "canceled"
    assert Coupon.objects.get(pk=coupon.pk).redemptions == 0
    assert Order.objects.get(pk=paid_late.pk).status == Order.Status.PAID
    assert Payment.objects.get(order=paid_late).reference == succeeded["id"]


def start_gift_checkout_again(client, offer):
    """Another visitor's gift checkout (start_gift_checkout expects the only order)."""
    before = set(Order.objects.values_list("pk", flat=True))
    form = gift_form(client, offer, email="other@example.com")
    response = client.post(reverse("billing:gift_checkout", args=[offer.long_id]), form)
    order = Order.objects.exclude(pk__in=before).get()
    page = client.get(response["Location"])
    return order, page, re.search(r'data-client-secret="([^"]+)"', page.content.decode()).group(1)


def test_a_payment_given_up_that_succeeds_after_all_is_refunded(client, offer, fake_stripe):
    order, _, secret = start_gift_checkout(client, offer)
    given_up = Payment.objects.get()
    services.payment_abandon(payment=given_up, code="replaced", message="A new payment attempt replaced it.")
    paid = browser_confirm(fake_stripe, secret, "pm_card_visa")  # a tab left open confirms it anyway

    assert post_event(client, fake_stripe.event_of("payment_intent.succeeded", paid["id"])).status_code == 200
    assert come_back(client, order, paid["id"]).status_code == 302

    refund = Payment.objects.get(kind=Payment.Kind.REFUND)
    assert refund.status == Payment.Status.SUCCEEDED
    assert fake_stripe.refunds[refund.reference]["payment_intent"] == paid["id"]
    assert Order.objects.get().status == Order.Status.PENDING and not Gift.objects.exists()


def test_an_order_with_nothing_to_pay_needs_no_payment_page(client, offer, fake_stripe):
    CouponFactory(code="FREE", percent_off=Decimal("100"))
    response = client.post(
        reverse("billing:gift_checkout", args=[offer.long_id]), gift_form(client, offer, coupon="FREE")
    )

    order = Order.objects.get()
    assert response["Location"] == reverse("billing:thanks", args=[order.pk])
    assert order.status == Order.Status.PAID and Gift.objects.count() == 1
    assert Payment.objects.get().gateway == "stripe" and not Payment.objects.get().reference.startswith("pi_")
