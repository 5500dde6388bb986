"""The gift lifecycle through the services: purchase, delivery, verification, redemption, expiry."""

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from accounts.models import Subscription, Transaction
from accounts.tests.factories import CustomerFactory, PaymentMethodFactory, SubscriptionFactory
from billing.services import order_create, order_pay, order_update
from emails.models import Email
from emails.services import send_due_emails
from gifts import services
from gifts.models import Gift
from gifts.verification import RedeemRefused, gift_verify
from offers.tests.factories import OfferFactory

pytestmark = pytest.mark.django_db


def test_a_paid_gift_order_is_delivered_and_redeemed_into_a_new_subscription(django_capture_on_commit_callbacks):
    gifter = CustomerFactory()
    PaymentMethodFactory(customer=gifter, token="tok_visa")
    offer = OfferFactory(period="3months")
    order = order_create(customer=gifter, offer=offer, buy_as_gift=True)
    order_update(
        order=order,
        recipient_email="Friend@Example.com",
        personal_note="<b>Happy</b> birthday",
        scheduled_at=timezone.now() - timedelta(days=1),
    )
    with django_capture_on_commit_callbacks(execute=True):
        result = order_pay(order=order)
    gift = result.gift
    assert gift.status == "scheduled" and gift.recipient_email == "friend@example.com"
    assert result.transaction.target_type == "giftId" and result.transaction.target_id == str(gift.pk)
    assert [m.subject for m in mail.outbox] == [f"Your gift receipt: {offer.title}"]

    assert services.deliver_due_gifts() == 1
    gift.refresh_from_db()
    assert gift.status == "unclaimed" and gift.sent_at
    delivery = mail.outbox[1]
    assert delivery.to == ["friend@example.com"] and gift.code in delivery.body
    assert f"giftCode={gift.code}" in delivery.body
    html = delivery.alternatives[0][0]
    assert "&lt;b&gt;Happy&lt;/b&gt;" in html and "<b>Happy</b>" not in html
    assert mail.outbox[2].to == [gifter.email]

    recipient = CustomerFactory(email="friend@example.com")
    verification = gift_verify(customer=recipient, code=gift.code.lower().replace("-", " "))
    assert verification.redeemable and verification.mode == "NEW"
    with django_capture_on_commit_callbacks(execute=True):
        redeemed = services.gift_redeem(customer=recipient, code=gift.code)
    assert redeemed.subscription.status == "active" and redeemed.subscription.customer == recipient
    assert not Transaction.objects.filter(customer=recipient).exists()
    assert mail.outbox[-1].subject == "Your gift has been redeemed"
    again = gift_verify(customer=recipient, code=gift.code)
    assert not again.redeemable and again.refusal == "REDEEMED"
    with pytest.raises(RedeemRefused):
        services.gift_redeem(customer=recipient, code=gift.code)
    assert Subscription.objects.filter(customer=recipient).count() == 1


def test_a_subscriber_of_a_same_tag_offer_gets_an_extension_and_gifts_stack():
    subscriber = CustomerFactory()
    now = timezone.now()
    held = SubscriptionFactory(
        customer=subscriber, offer=OfferFactory(tags=["premium"]), term_start=now, term_end=now + timedelta(days=10)
    )
    gift_offer = OfferFactory(tags=["premium"], period="month")
    first = services.gift_create(
        gifter=CustomerFactory(), offer=gift_offer, recipient_email="a@example.com", scheduled_at=now, now=now
    )
    second = services.gift_create(
        gifter=CustomerFactory(), offer=gift_offer, recipient_email="a@example.com", scheduled_at=now, now=now
    )
    assert gift_verify(customer=subscriber, code=first.code).mode == "EXTEND"
    services.gift_redeem(customer=subscriber, code=first.code)
    services.gift_redeem(customer=subscriber, code=second.code)
    held.refresh_from_db()
    assert held.term_end == now + timedelta(days=10) + gift_offer.period_delta + gift_offer.period_delta


def test_a_declined_card_creates_nothing():
    gifter = CustomerFactory()
    order = order_create(customer=gifter, offer=OfferFactory(), buy_as_gift=True)
    order_update(order=order, recipient_email="x@example.com")
    from billing.gateways import PaymentError

    with pytest.raises(PaymentError, match="declined"):
        order_pay(order=order, card_token="tok_chargeDeclined")
    assert not Gift.objects.exists() and not Transaction.objects.exists()
    order.refresh_from_db()
    assert order.status == "pending"


def test_unclaimed_gifts_expire_after_their_claim_expiry():
    now = timezone.now()
    gift = services.gift_create(
        gifter=CustomerFactory(),
        offer=OfferFactory(),
        recipient_email="a@example.com",
        scheduled_at=now,
        now=now,
        claim_expiry_date=now + timedelta(days=3),
    )
    services.deliver_due_gifts(now=now, send=False)
    assert services.expire_due_gifts(now=now + timedelta(days=2)) == 0
    assert services.expire_due_gifts(now=now + timedelta(days=3)) == 1
    gift.refresh_from_db()
    assert gift.status == "expired"
    assert list(gift.timeline.values_list("status", flat=True)) == ["scheduled", "unclaimed", "expired"]


def test_pending_emails_are_swept_when_their_task_was_lost():
    now = timezone.now()
    services.gift_create(
        gifter=CustomerFactory(),
        offer=OfferFactory(),
        recipient_email="a@example.com",
        scheduled_at=now + timedelta(days=1),
        now=now,
    )  # on_commit task never runs here
    assert Email.objects.get().status == "pending"
    assert send_due_emails() == 1
    assert Email.objects.get().status == "sent" and len(mail.outbox) == 1
