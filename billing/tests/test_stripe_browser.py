"""A gift bought with Stripe in a real browser (Debian's Chromium under Playwright) against the live server and
the fake Stripe API, with the Stripe.js stand-in the fake serves in place of js.stripe.com: the card needs 3-D
Secure, the stand-in's challenge is completed, Stripe's webhook (delivered twice, before the browser is back) pays
the order once, and the thank-you page shows it. The page loads nothing but the shop and "Stripe"
(Content-Security-Policy: no violation). And a renewal the bank declined for authentication, confirmed from the
emailed link with the card on file."""

import re
from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone
from playwright.sync_api import expect

from accounts.tests.factories import CustomerFactory, SubscriptionFactory
from billing.models import Order, Payment, StripeEvent
from billing.renewals import renew_due_subscriptions
from billing.services import payment_method_from_token
from gifts.models import Gift
from offers.tests.factories import OfferFactory

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_a_guest_gives_a_gift_with_a_card_that_needs_3d_secure(chromium, live_server, fake_stripe, screenshots):
    offer = OfferFactory(title="Premium Streaming", price="99.99", currency="EUR", period="year")
    fake_stripe.webhook_url = f"{live_server.url}/payments/stripe/webhook/"
    fake_stripe.webhook_copies = 2  # Stripe may deliver an event more than once
    paid_when_delivered = []
    fake_stripe.on_delivered = lambda event: (
        event["type"] == "payment_intent.succeeded" and paid_when_delivered.append(Order.objects.get().status)
    )
    context = chromium.new_context(base_url=live_server.url, locale="en-GB", timezone_id="Europe/Berlin")
    context.set_default_timeout(15_000)
    page = context.new_page()
    violations = []
    page.on("console", lambda message: "Content Security Policy" in message.text and violations.append(message.text))
    try:
        page.goto(f"/checkout/{offer.long_id}/gift/")
        page.get_by_label("Your email").fill("sam.buyer@example.com")
        page.get_by_label("Recipient's email", exact=True).fill("robin@example.com")
        page.get_by_label("Recipient's email again").fill("robin@example.com")
        page.get_by_label("Delivery date").fill((timezone.now() + timedelta(days=3)).date().isoformat())
        page.get_by_label("Delivery time").fill("10:30")
        expect(page.get_by_label("Card number")).to_have_count(0)  # the card goes to Stripe, on the next page
        page.get_by_role("button", name=re.compile(r"^Pay ")).click()

        expect(page.get_by_role("heading", level=1)).to_have_text(
            "Pay for Premium Streaming (a gift for robin@example.com)"
        )
        page.get_by_label("Card").select_option("pm_card_threeDSecure2Required")
        screenshots(page, "payment-element")
        page.get_by_role("button", name="Pay €99.99").click()
        challenge = page.get_by_role("dialog", name="3D Secure 2 Test Page")
        expect(challenge).to_be_visible()
        assert Order.objects.get().status == Order.Status.PENDING  # nothing is paid before the bank says so
        screenshots(page, "3d-secure")
        challenge.get_by_role("button", name="Complete").click()

        expect(page.get_by_role("heading", level=1)).to_have_text("Thank you!")
        expect(page.locator("main")).to_contain_text("robin@example.com")
        screenshots(page, "thanks")
    finally:
        context.close()

    order = Order.objects.get()
    assert order.status == Order.Status.PAID
    assert paid_when_delivered == [Order.Status.PAID, Order.Status.PAID]  # the webhook paid it, before the browser
    assert fake_stripe.webhook_answers.count(200) == len(fake_stripe.webhook_answers)
    assert Gift.objects.count() == 1 and Gift.objects.get().recipient_email == "robin@example.com"
    charge = Payment.objects.get(kind=Payment.Kind.CHARGE, status=Payment.Status.SUCCEEDED)
    intent = fake_stripe.intent(charge.reference)
    assert intent["status"] == "succeeded" and intent["amount"] == 9999
    succeeded = fake_stripe.event_of("payment_intent.succeeded", charge.reference)
    assert StripeEvent.objects.filter(event_id=succeeded["id"]).count() == 1
    assert violations == []


def test_a_customer_confirms_a_renewal_their_bank_declined_for_authentication(
    chromium, live_server, fake_stripe, settings
):
    settings.SITE_URL = live_server.url
    customer = CustomerFactory(email="subscriber@example.com")
    card = payment_method_from_token(customer=customer, token="pm_card_authenticationRequired")
    now = timezone.now()
    subscription = SubscriptionFactory(
        customer=customer,
        offer=OfferFactory(title="Monthly", period="month", price="9.99", currency="EUR"),
        term_start=now - timedelta(days=31),
        term_end=now - timedelta(hours=1),
        auto_renew=True,
    )
    renew_due_subscriptions()  # off session: declined, the customer is emailed
    link = re.search(r"http://\S+/payments/confirm/\S+/", mail.outbox[-1].body).group(0)

    context = chromium.new_context(locale="en-GB")
    context.set_default_timeout(15_000)
    page = context.new_page()
    try:
        page.goto(link)
        expect(page.locator("main")).to_contain_text(f"€9.99 with your {card.label}")
        page.get_by_role("button", name="Confirm the payment of €9.99").click()
        page.get_by_role("dialog", name="3D Secure 2 Test Page").get_by_role("button", name="Complete").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Payment confirmed")
    finally:
        context.close()

    subscription.refresh_from_db()
    assert subscription.term_end > timezone.now() and subscription.renewal_attempts == 0
    assert Payment.objects.get(kind=Payment.Kind.CHARGE).status == Payment.Status.SUCCEEDED
