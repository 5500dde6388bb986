"""Renewals with Stripe: the saved card is charged off session (`off_session=true`, `confirm=true`, on the
customer's Stripe Customer); a bank that wants the cardholder to authenticate declines it, and the customer is
emailed a link where they pass 3-D Secure and the term is booked once; the retry schedule goes on meanwhile, and a
payment authenticated too late is refunded."""

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core import mail
from django.utils import timezone

from accounts.models import Subscription, Transaction
from accounts.tests.factories import CustomerFactory, SubscriptionFactory
from billing.models import Payment
from billing.renewals import renew_due_subscriptions
from billing.services import payment_method_from_token
from billing.tests.stripe_fixtures import browser_authenticate, browser_confirm, post_event
from offers.tests.factories import OfferFactory

pytestmark = pytest.mark.django_db


def due_subscription(card):
    customer = CustomerFactory(email="subscriber@example.com")
    method = payment_method_from_token(customer=customer, token=card)
    now = timezone.now()
    subscription = SubscriptionFactory(
        customer=customer,
        offer=OfferFactory(title="Monthly", period="month", price=Decimal("9.99"), currency="EUR"),
        term_start=now - timedelta(days=31),
        term_end=now - timedelta(hours=1),
        auto_renew=True,
    )
    return subscription, method


def test_a_renewal_charges_the_saved_card_off_session(fake_stripe):
    subscription, method = due_subscription("pm_card_visa")
    old_end = subscription.term_end

    assert renew_due_subscriptions() == 1

    subscription.refresh_from_db()
    assert subscription.term_start == old_end and subscription.term_end > timezone.now()
    payment = Payment.objects.get(status=Payment.Status.SUCCEEDED)
    intent = fake_stripe.intent(payment.reference)
    assert (intent["status"], intent["amount"], intent["payment_method"]) == ("succeeded", 999, method.token)
    assert intent["customer"] == subscription.customer.stripe_customer.stripe_id
    sent = next(
        p
        for m, path, p in fake_stripe.requests
        if path == "/v1/payment_intents" and p.get("payment_method") == method.token
    )
    assert (sent["off_session"], sent["confirm"]) == ("true", "true")
    assert Transaction.objects.get(kind=Transaction.Kind.RENEWAL).payment_reference == payment.reference


def test_an_authentication_decline_emails_a_link_where_3d_secure_books_the_term_once(
    client, fake_stripe, django_capture_on_commit_callbacks
):
    subscription, method = due_subscription("pm_card_authenticationRequired")
    old_end = subscription.term_end

    with django_capture_on_commit_callbacks(execute=True):
        renew_due_subscriptions()

    subscription.refresh_from_db()
    assert subscription.term_end == old_end and subscription.status == Subscription.Status.ACTIVE
    assert (subscription.renewal_attempts, subscription.next_renewal_attempt_at) == (1, old_end + timedelta(days=1))
    declined = Payment.objects.get()
    assert (declined.status, declined.failure_code) == (Payment.Status.FAILED, "authentication_required")
    assert fake_stripe.intent(declined.reference)["last_payment_error"]["code"] == "authentication_required"
    [email] = mail.outbox
    assert email.to == ["subscriber@example.com"] and "Confirm the renewal payment for Monthly" in email.subject
    assert "€9.99" in email.body
    link = re.search(r"https?://\S+/payments/confirm/\S+/", email.body).group(0)
    path = link.split("://", 1)[1].split("/", 1)[1]

    page = client.get(f"/{path}")
    html = page.content.decode()
    assert f'data-payment-method="{method.token}"' in html and fake_stripe.url in page["Content-Security-Policy"]
    secret = re.search(r'data-client-secret="([^"]+)"', html).group(1)
    assert browser_confirm(fake_stripe, secret, method.token)["status"] == "requires_action"
    assert browser_authenticate(fake_stripe, secret)["status"] == "succeeded"
    event = fake_stripe.event_of("payment_intent.succeeded", declined.reference)
    assert post_event(client, event).status_code == 200
    done = client.get(f"/{path}done/")

    assert "Payment confirmed" in done.content.decode()
    subscription.refresh_from_db()
    assert subscription.term_start == old_end and subscription.term_end > timezone.now()
    assert subscription.renewal_attempts == 0 and subscription.next_renewal_attempt_at is None
    paid = Payment.objects.get()
    assert paid.status == Payment.Status.SUCCEEDED and paid.invoice is not None
    assert Transaction.objects.filter(kind=Transaction.Kind.RENEWAL).count() == 1
    # The retry that was due finds nothing to do.
    assert renew_due_subscriptions(now=old_end + timedelta(days=1, minutes=1)) == 0
    assert Payment.objects.count() == 1


def test_the_retry_schedule_goes_on_and_each_decline_asks_again(fake_stripe, django_capture_on_commit_callbacks):
    subscription, _ = due_subscription("pm_card_authenticationRequired")
    old_end = subscription.term_end
    with django_capture_on_commit_callbacks(execute=True):
        renew_due_subscriptions()
        renew_due_subscriptions(now=old_end + timedelta(days=1, minutes=1))

    subscription.refresh_from_db()
    assert subscription.renewal_attempts == 2 and subscription.next_renewal_attempt_at == old_end + timedelta(days=3)
    assert len(mail.outbox) == 2
    assert Payment.objects.filter(status=Payment.Status.FAILED, failure_code="authentication_required").count() == 2


def test_a_renewal_authenticated_after_the_subscription_ended_is_refunded(
    client, fake_stripe, django_capture_on_commit_callbacks
):
    subscription, method = due_subscription("pm_card_authenticationRequired")
    with django_capture_on_commit_callbacks(execute=True):
        renew_due_subscriptions()
    Subscription.objects.filter(pk=subscription.pk).update(status=Subscription.Status.EXPIRED)
    path = re.search(r"https?://\S+?(/payments/confirm/\S+/)", mail.outbox[0].body).group(1)
    secret = re.search(r'data-client-secret="([^"]+)"', client.get(path).content.decode()).group(1)
    browser_confirm(fake_stripe, secret, method.token)
    browser_authenticate(fake_stripe, secret)

    client.get(f"{path}done/")

    refund = Payment.objects.get(kind=Payment.Kind.REFUND)
    assert refund.status == Payment.Status.SUCCEEDED
    assert fake_stripe.refunds[refund.reference]["amount"] == 999
    assert Subscription.objects.get(pk=subscription.pk).status == Subscription.Status.EXPIRED


def test_a_tampered_link_shows_nothing(client, fake_stripe):
    assert client.get("/payments/confirm/not-a-token/").status_code == 404
