"""The gift admin's cancel action (billing's, since it refunds): it goes through the gift sales' cancellation,
reports each gift's outcome with its refund, and leaves one admin log entry and one gift event."""

import uuid

import pytest

from accounts.models import Subscription
from billing import gift_sales
from billing.models import Invoice, Payment
from gifts.models import GiftStatus, GiftTimeline
from gifts.tests.factories import make_gift
from gifts.tests.gift_admin import act, log_entries, shown
from gifts.tests.merchant import gifter_with_card
from giftshop.models import Event
from offers.tests.factories import OfferFactory

pytestmark = pytest.mark.django_db


def test_cancelling_a_merchant_gift_in_the_admin_refunds_the_gifter(
    staff_client, support_user, django_capture_on_commit_callbacks
):
    bought = gift_sales.gift_purchase(
        gifter=gifter_with_card(),
        offer=OfferFactory(),
        receiver=None,
        recipient_email="friend@example.com",
        idempotency_key=uuid.uuid4().hex,
    )
    gift = bought.gift
    with django_capture_on_commit_callbacks(execute=True):
        response = act(staff_client, "cancel", [gift])

    gift.refresh_from_db()
    assert gift.status == GiftStatus.CANCELLED
    invoice = Invoice.objects.get(pk=gift.invoice_id)
    refund = Payment.objects.get(kind=Payment.Kind.REFUND, invoice_id=gift.invoice_id)
    assert refund.status == Payment.Status.SUCCEEDED and invoice.amount_refunded == invoice.total
    assert Subscription.objects.get(pk=bought.subscription.pk).status == Subscription.Status.CANCELLED
    assert shown(response) == [f"Gift {gift.pk}: cancelled; {refund.amount} {refund.currency} refunded to the gifter."]
    assert [entry.change_message for entry in log_entries(gift)] == ["Cancelled the gift (refunding the gifter)."]
    assert Event.objects.filter(gift=gift, event_type="gift_cancelled").count() == 1
    assert GiftTimeline.objects.get(gift=gift, status=GiftStatus.CANCELLED).actor == f"admin:{support_user.email}"


def test_cancelling_a_storefront_gift_in_the_admin_cancels_it_once(staff_client, django_capture_on_commit_callbacks):
    gift = make_gift()
    with django_capture_on_commit_callbacks(execute=True):
        first = act(staff_client, "cancel", [gift])
        second = act(staff_client, "cancel", [gift])

    gift.refresh_from_db()
    assert gift.status == GiftStatus.CANCELLED
    assert shown(first) == [f"Gift {gift.pk}: cancelled; there was no payment to refund."]
    assert shown(second) == [
        f"Gift {gift.pk}: not done. The gift is cancelled; only scheduled or unclaimed gifts can be cancelled."
    ]
    assert log_entries(gift).count() == 1
    assert Event.objects.filter(gift=gift, event_type="gift_cancelled").count() == 1
