"""The gift admin's cancel action (billing's, since it refunds): it asks first, goes through the gift sales'
cancellation, reports each gift's outcome with its refund, leaves one admin log entry and one gift event, and tells
the gifter by email (with the refund, never the code)."""

import uuid

import pytest
from django.core import mail

from accounts.models import Subscription
from billing import gift_sales
from billing.models import Invoice, Payment
from emails.models import Email
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
        response = act(staff_client, "cancel", [gift], apply="yes")

    gift.refresh_from_db()
    assert gift.status == GiftStatus.CANCELLED
    invoice = Invoice.objects.get(pk=gift.invoice_id)
    refund = Payment.objects.get(kind=Payment.Kind.REFUND, invoice_id=gift.invoice_id)
    assert refund.status == Payment.Status.SUCCEEDED and invoice.amount_refunded == invoice.total
    assert Subscription.objects.get(pk=bought.subscription.pk).status == Subscription.Status.CANCELLED
    assert shown(response) == [f"Gift {gift.pk}: cancelled; ${refund.amount} refunded to the gifter."]
    assert [entry.change_message for entry in log_entries(gift)] == ["Cancelled the gift (refunding the gifter)."]
    assert Event.objects.filter(gift=gift, event_type="gift_cancelled").count() == 1
    assert GiftTimeline.objects.get(gift=gift, status=GiftStatus.CANCELLED).actor == f"admin:{support_user.email}"


def test_cancelling_a_storefront_gift_in_the_admin_cancels_it_once(staff_client, django_capture_on_commit_callbacks):
    gift = make_gift()
    with django_capture_on_commit_callbacks(execute=True):
        first = act(staff_client, "cancel", [gift], apply="yes")
        second = act(staff_client, "cancel", [gift], apply="yes")

    gift.refresh_from_db()
    assert gift.status == GiftStatus.CANCELLED
    assert shown(first) == [f"Gift {gift.pk}: cancelled; there was no payment to refund."]
    assert shown(second) == [
        f"Gift {gift.pk}: not done. The gift is cancelled; "
        "only scheduled or unclaimed or declined gifts can be cancelled."
    ]
    assert log_entries(gift).count() == 1
    assert Event.objects.filter(gift=gift, event_type="gift_cancelled").count() == 1


def cancel_notices():
    return [message for message in mail.outbox if message.subject == "Your gift has been cancelled"]


def every_part(message):
    return message.body + "".join(content for content, _type in message.alternatives)


def test_it_asks_before_cancelling_and_refunding(staff_client, django_capture_on_commit_callbacks):
    gift = make_gift(recipient_email="friend@example.com")
    with django_capture_on_commit_callbacks(execute=True):
        page = act(staff_client, "cancel", [gift], follow=False)

    body = page.content.decode()
    assert page.status_code == 200
    assert "Yes, cancel and refund" in body and "friend@example.com" in body and "cannot be undone" in body
    gift.refresh_from_db()
    assert gift.status == GiftStatus.SCHEDULED
    assert not log_entries(gift).exists() and cancel_notices() == []


def test_it_emails_the_gifter_once_that_the_gift_is_cancelled_and_refunded(
    staff_client, django_capture_on_commit_callbacks
):
    gifter = gifter_with_card()
    bought = gift_sales.gift_purchase(
        gifter=gifter,
        offer=OfferFactory(title="Gift Yearly", price="49.99", currency="EUR"),
        receiver=None,
        recipient_email="friend@example.com",
        idempotency_key=uuid.uuid4().hex,
    )
    gift = bought.gift
    with django_capture_on_commit_callbacks(execute=True):
        act(staff_client, "cancel", [gift], apply="yes")
        act(staff_client, "cancel", [gift], apply="yes")  # refused: no second email

    [notice] = cancel_notices()
    assert notice.to == [gifter.email]
    assert "Gift Yearly to friend@example.com has been cancelled" in notice.body
    assert "We are refunding the €49.99 you paid" in notice.body
    assert "€49.99" in notice.alternatives[0][0]
    assert gift.code not in every_part(notice) and gift.code.replace("-", "") not in every_part(notice)
    assert Email.objects.get(gift=gift, kind=Email.Kind.GIFT_CANCELLED).key == f"gift:{gift.pk}:cancelled"


def test_it_tells_the_gifter_of_a_gift_without_payment_that_there_is_nothing_to_refund(
    staff_client, django_capture_on_commit_callbacks
):
    gift = make_gift()
    with django_capture_on_commit_callbacks(execute=True):
        act(staff_client, "cancel", [gift], apply="yes")

    [notice] = cancel_notices()
    assert "nothing to refund" in notice.body and "will not be delivered" in notice.body
