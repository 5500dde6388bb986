"""Stripe's webhooks: only events signed with the endpoint's secret are taken (as stripe.Webhook.construct_event
checks them), each is processed once (its id stored), a failure is answered 500 so that Stripe delivers it again;
refunds go through Stripe Refunds and disputes are recorded on the order, both shown in the admin."""

import json
import uuid

import pytest
from django.core import mail
from django.urls import reverse

from accounts.tests.factories import CustomerFactory
from billing import gift_sales
from billing.models import Dispute, Order, Payment, StripeEvent
from billing.services import payment_method_from_token
from billing.tests.fake_stripe import sign
from billing.tests.stripe_fixtures import browser_confirm, post_event
from billing.tests.test_stripe_checkout import come_back, start_gift_checkout
from gifts.models import Gift, GiftStatus
from gifts.tests.gift_admin import act, shown
from offers.tests.factories import OfferFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def offer():
    return OfferFactory(title="Premium yearly", period="year", price="99.99", currency="EUR", tags=["premium"])


def paid_order(client, offer, fake_stripe):
    order, _, secret = start_gift_checkout(client, offer)
    paid = browser_confirm(fake_stripe, secret, "pm_card_visa")
    return order, paid


def test_an_event_not_signed_with_the_secret_is_refused(client, offer, fake_stripe):
    _, _, secret = start_gift_checkout(client, offer)
    paid = browser_confirm(fake_stripe, secret, "pm_card_visa")
    event = fake_stripe.event_of("payment_intent.succeeded", paid["id"])

    assert post_event(client, event, secret="whsec_someone_else").status_code == 400
    assert post_event(client, event, signature="t=1,v1=00").status_code == 400  # forged, and too old
    payload = json.dumps(event)
    stale = sign(payload, timestamp=1_000_000)
    assert client.post("/payments/stripe/webhook/", data=payload, content_type="application/json",
                       HTTP_STRIPE_SIGNATURE=stale).status_code == 400  # fmt: skip
    assert client.post("/payments/stripe/webhook/", data=payload, content_type="application/json").status_code == 400
    assert Order.objects.get().status == Order.Status.PENDING and not StripeEvent.objects.exists()
    assert post_event(client, event).status_code == 200
    assert Order.objects.get().status == Order.Status.PAID


def test_a_failure_is_answered_500_and_the_redelivery_is_processed(client, offer, fake_stripe):
    _, paid = paid_order(client, offer, fake_stripe)
    event = fake_stripe.event_of("payment_intent.succeeded", paid["id"])

    fake_stripe.down = True  # the shop cannot read the PaymentIntent back
    assert post_event(client, event).status_code == 500
    assert not StripeEvent.objects.exists() and Order.objects.get().status == Order.Status.PENDING
    fake_stripe.down = False
    assert post_event(client, event).status_code == 200
    assert StripeEvent.objects.get().event_id == event["id"] and Order.objects.get().status == Order.Status.PAID


def test_a_dispute_is_recorded_on_the_order_once_and_shown_in_the_admin(client, offer, fake_stripe, staff_client):
    order, paid = paid_order(client, offer, fake_stripe)
    come_back(client, order, paid["id"])

    created = fake_stripe.dispute(paid["id"])
    assert post_event(client, created).status_code == 200
    assert post_event(client, created).status_code == 200

    dispute = Dispute.objects.get()
    assert (dispute.order, dispute.payment.reference, dispute.status, dispute.reason) == (
        order, paid["id"], "needs_response", "fraudulent"
    )  # fmt: skip
    assert str(dispute.amount) == "99.99" and dispute.currency == "EUR" and dispute.evidence_due_by
    # A later update, then an older one delivered late: the newer state stays.
    updated = {**created, "id": "evt_updated", "type": "charge.dispute.updated", "created": created["created"] + 60}
    updated["data"] = {"object": {**created["data"]["object"], "status": "under_review"}}
    older = {**created, "id": "evt_older", "type": "charge.dispute.updated", "created": created["created"] + 30}
    older["data"] = {"object": {**created["data"]["object"], "status": "warning_needs_response"}}
    post_event(client, updated)
    post_event(client, older)
    assert Dispute.objects.get().status == "under_review"

    page = staff_client.get(reverse("admin:billing_order_change", args=[order.pk])).content.decode()
    assert dispute.stripe_id in page and "fraudulent" in page
    listing = staff_client.get(reverse("admin:billing_dispute_changelist")).content.decode()
    assert dispute.stripe_id in listing
    events = staff_client.get(reverse("admin:billing_stripeevent_changelist")).content.decode()
    assert created["id"] in events and "charge.dispute.created" in events


def test_cancelling_a_stripe_paid_gift_in_the_admin_refunds_it_through_stripe(
    client, offer, fake_stripe, staff_client, django_capture_on_commit_callbacks
):
    order, paid = paid_order(client, offer, fake_stripe)
    come_back(client, order, paid["id"])
    gift = Gift.objects.get()

    with django_capture_on_commit_callbacks(execute=True):
        response = act(staff_client, "cancel", [gift], apply="yes")

    refund = Payment.objects.get(kind=Payment.Kind.REFUND)
    assert refund.status == Payment.Status.SUCCEEDED and refund.reference.startswith("re_")
    at_stripe = fake_stripe.refunds[refund.reference]
    assert (at_stripe["payment_intent"], at_stripe["amount"], at_stripe["status"]) == (paid["id"], 9999, "succeeded")
    assert Gift.objects.get().status == GiftStatus.CANCELLED
    assert shown(response) == [f"Gift {gift.pk}: cancelled; €99.99 refunded to the gifter."]
    page = staff_client.get(reverse("admin:billing_order_change", args=[order.pk])).content.decode()
    assert refund.reference in page and "Refund" in page
    assert any("cancelled" in message.subject.lower() for message in mail.outbox)


def test_a_merchant_api_gift_charges_the_gifters_stripe_card_off_session_and_its_cancel_refunds_it(fake_stripe):
    gifter = CustomerFactory(email="gifter@example.com")
    card = payment_method_from_token(customer=gifter, token="pm_card_visa")
    bought = gift_sales.gift_purchase(
        gifter=gifter,
        offer=OfferFactory(price="25.00", currency="EUR"),
        receiver=None,
        recipient_email="friend@example.com",
        idempotency_key=uuid.uuid4().hex,
    )
    charge = Payment.objects.get(kind=Payment.Kind.CHARGE)
    intent = fake_stripe.intent(charge.reference)
    assert (intent["status"], intent["amount"], intent["payment_method"]) == ("succeeded", 2500, card.token)

    gift_sales.gift_cancel(gift_id=bought.gift.pk, actor="test")

    refund = Payment.objects.get(kind=Payment.Kind.REFUND)
    assert fake_stripe.refunds[refund.reference]["payment_intent"] == charge.reference
