"""Who may redeem a gift, and what redeeming does: the refusals, EXTEND versus NEW, auto-claim on delivery, and the
claim expiry (its boundary, and its race with the expiry sweep: CEL-14)."""

import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.core import mail
from django.db import connection
from django.utils import timezone

from accounts.models import Customer, Subscription, Transaction
from accounts.tests.factories import PaymentMethodFactory, SubscriptionFactory
from billing.services import order_create, order_pay, order_update
from gifts import services
from gifts.models import GiftStatus
from gifts.tests.factories import GiftFactory, GuestFactory, make_gift
from gifts.verification import RedeemRefused, RefusalReason, gift_verify
from offers.tests.factories import OfferFactory

RECIPIENT = "friend@example.com"
NOW = datetime(2026, 4, 15, 12, 0, tzinfo=UTC)


def unclaimed_gift(**fields):
    return GiftFactory(status=GiftStatus.UNCLAIMED, recipient_email=RECIPIENT, **fields)


def refusal(customer, gift, *, now=None):
    """The RedeemRefused raised by redeeming `gift`; checks that the gift was left as it was."""
    gift.refresh_from_db()
    status_before = gift.status
    with pytest.raises(RedeemRefused) as refused:
        services.gift_redeem(customer=customer, code=gift.code, now=now)
    gift.refresh_from_db()
    assert gift.status == status_before and gift.subscription_id is None
    return refused.value


@pytest.fixture
def recipient(db):
    return GuestFactory(email=RECIPIENT)


# --- refusals -------------------------------------------------------------------------------------------------


def test_it_refuses_a_gift_whose_offer_is_no_longer_active(recipient):
    gift = unclaimed_gift(offer=OfferFactory(active=False))

    assert gift_verify(customer=recipient, code=gift.code).refusal == RefusalReason.INACTIVE_OFFER
    refused = refusal(recipient, gift)
    assert (refused.code, refused.status) == ("INACTIVE_OFFER", 409)
    assert not recipient.subscriptions.exists()


def test_it_refuses_a_cancelled_gift(recipient):
    gift = unclaimed_gift()
    now = timezone.now()
    assert services.gift_transition(gift_ids=[gift.pk], to=GiftStatus.CANCELLED, now=now, cancelled_at=now) == [gift.pk]
    gift.refresh_from_db()

    refused = refusal(recipient, gift)
    assert (refused.code, refused.status) == ("CANCELLED", 409)
    assert not recipient.subscriptions.exists()


def test_it_refuses_to_guess_which_of_two_matching_subscriptions_to_extend(recipient):
    held = [SubscriptionFactory(customer=recipient, offer=OfferFactory(tags=["premium"])) for _ in range(2)]
    gift = unclaimed_gift(offer=OfferFactory(tags=["premium"]))

    refused = refusal(recipient, gift)
    assert (refused.code, refused.status) == ("MORE_THAN_ONE_MATCHING_SUBSCRIPTION", 409)
    for subscription in held:
        term_end = subscription.term_end
        subscription.refresh_from_db()
        assert subscription.term_end == term_end
    assert recipient.subscriptions.count() == 2


def test_it_refuses_while_a_renewal_payment_of_the_matching_subscription_is_in_progress(recipient):
    held = SubscriptionFactory(
        customer=recipient, offer=OfferFactory(tags=["premium"]), renewal_started_at=timezone.now()
    )
    gift = unclaimed_gift(offer=OfferFactory(tags=["premium"]))

    refused = refusal(recipient, gift)
    assert (refused.code, refused.status) == ("RECURRING_PROCESS_ALREADY_STARTED", 409)
    term_end = held.term_end
    held.refresh_from_db()
    assert held.term_end == term_end


# --- EXTEND or NEW --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("held_tags", "gift_tags", "mode"),
    [
        (["news", "sports"], ["sports", "news"], "EXTEND"),
        (["premium"], ["premium"], "EXTEND"),
        (["news"], ["news", "sports"], "NEW"),
        (["news", "sports"], ["news"], "NEW"),
        (["news"], ["sports"], "NEW"),
    ],
)
def test_it_extends_a_subscription_with_the_same_set_of_tags_in_any_order_and_otherwise_starts_a_new_one(
    recipient, held_tags, gift_tags, mode
):
    held = SubscriptionFactory(customer=recipient, offer=OfferFactory(tags=held_tags))
    gift_offer = OfferFactory(tags=gift_tags, period="3months")
    gift = unclaimed_gift(offer=gift_offer)
    held_until = held.term_end

    redeemed = services.gift_redeem(customer=recipient, code=gift.code, now=timezone.now())

    held.refresh_from_db()
    assert redeemed.mode == mode == redeemed.gift.redeem_mode
    if mode == "EXTEND":
        assert redeemed.subscription.pk == held.pk
        assert held.term_end == held_until + gift_offer.period_delta
        assert recipient.subscriptions.count() == 1
    else:
        assert redeemed.subscription.pk != held.pk and redeemed.subscription.offer == gift_offer
        assert held.term_end == held_until
        assert recipient.subscriptions.count() == 2


def test_it_starts_a_new_subscription_when_the_same_tag_subscription_has_ended(recipient):
    now = timezone.now()
    SubscriptionFactory(customer=recipient, term_start=now - timedelta(days=60), term_end=now - timedelta(days=30))
    SubscriptionFactory(customer=recipient, status="cancelled", cancelled_at=now)
    gift = unclaimed_gift()

    assert services.gift_redeem(customer=recipient, code=gift.code, now=now).mode == "NEW"


def test_it_records_no_transaction_for_the_recipient_of_a_paid_gift(recipient, django_capture_on_commit_callbacks):
    gifter = GuestFactory()
    PaymentMethodFactory(customer=gifter, token="tok_visa")
    order = order_create(customer=gifter, offer=OfferFactory(), buy_as_gift=True)
    order_update(order=order, recipient_email=RECIPIENT)
    with django_capture_on_commit_callbacks(execute=True):
        gift = order_pay(order=order).gift
    services.deliver_due_gifts()

    services.gift_redeem(customer=recipient, code=gift.code)

    assert Transaction.objects.filter(customer=gifter).count() == 1
    assert not Transaction.objects.filter(customer=recipient).exists()
    assert recipient.subscriptions.get().origin == Subscription.Origin.GIFT


# --- auto-claim -----------------------------------------------------------------------------------------------


def test_it_claims_an_auto_claim_gift_on_delivery_for_a_new_customer_with_the_recipient_email(db):
    gift = make_gift(auto_claim=True, recipient_email=RECIPIENT)
    assert not Customer.objects.filter(email=RECIPIENT).exists()

    assert services.deliver_due_gifts() == 1

    gift.refresh_from_db()
    receiver = Customer.objects.get(email=RECIPIENT)
    assert gift.status == GiftStatus.CLAIMED and gift.receiver == receiver and gift.sent_at and gift.claimed_at
    assert gift.subscription.customer == receiver and gift.subscription.status == Subscription.Status.ACTIVE
    assert [message.to for message in mail.outbox if message.subject.startswith("You've received")] == [[RECIPIENT]]


def test_it_extends_the_existing_subscription_of_an_auto_claim_recipient(recipient):
    held = SubscriptionFactory(customer=recipient, offer=OfferFactory(tags=["premium"]))
    gift = make_gift(auto_claim=True, recipient_email=RECIPIENT, offer=OfferFactory(tags=["premium"]))

    services.deliver_due_gifts()

    gift.refresh_from_db()
    assert gift.status == GiftStatus.CLAIMED and gift.redeem_mode == "EXTEND" and gift.subscription == held


def test_it_delivers_an_auto_claim_gift_unclaimed_when_it_cannot_be_claimed(recipient):
    for _ in range(2):
        SubscriptionFactory(customer=recipient, offer=OfferFactory(tags=["premium"]))
    gift = make_gift(auto_claim=True, recipient_email=RECIPIENT, offer=OfferFactory(tags=["premium"]))

    assert services.deliver_due_gifts() == 1

    gift.refresh_from_db()
    assert gift.status == GiftStatus.UNCLAIMED and gift.sent_at and gift.subscription is None


# --- claim expiry ---------------------------------------------------------------------------------------------


@pytest.fixture
def expiring_gift(db):
    """Delivered at NOW, claimable for 30 days."""
    return unclaimed_gift(scheduled_at=NOW, claim_expiry_date=NOW + timedelta(days=30))


def test_it_redeems_a_gift_one_second_before_its_claim_expiry(recipient, expiring_gift, time_machine):
    time_machine.move_to(expiring_gift.claim_expiry_date - timedelta(seconds=1), tick=False)

    redeemed = services.gift_redeem(customer=recipient, code=expiring_gift.code)

    assert redeemed.gift.status == GiftStatus.CLAIMED


def test_it_refuses_a_gift_as_expired_one_second_after_its_claim_expiry_even_before_the_sweep(
    recipient, expiring_gift, time_machine
):
    time_machine.move_to(expiring_gift.claim_expiry_date + timedelta(seconds=1), tick=False)

    refused = refusal(recipient, expiring_gift)

    assert (refused.code, refused.status) == ("EXPIRED", 410)
    assert not recipient.subscriptions.exists()


def test_it_agrees_with_the_expiry_sweep_on_the_expiry_instant_itself(recipient, expiring_gift):
    at = expiring_gift.claim_expiry_date
    assert gift_verify(customer=recipient, code=expiring_gift.code, now=at).refusal == "EXPIRED"
    assert services.expire_due_gifts(now=at - timedelta(microseconds=1)) == 0
    assert services.expire_due_gifts(now=at) == 1
    refused = refusal(recipient, expiring_gift, now=at - timedelta(seconds=1))  # too late, whatever the clock says
    assert (refused.code, refused.status) == ("EXPIRED", 410)


@pytest.mark.parametrize("first", ["sweep", "redeem"])
def test_it_settles_a_sweep_and_a_redeem_in_either_order_on_one_outcome(recipient, expiring_gift, first):
    at = expiring_gift.claim_expiry_date
    if first == "sweep":
        assert services.expire_due_gifts(now=at) == 1
        assert refusal(recipient, expiring_gift, now=at - timedelta(milliseconds=1)).code == "EXPIRED"
        assert not recipient.subscriptions.exists()
    else:
        services.gift_redeem(customer=recipient, code=expiring_gift.code, now=at - timedelta(milliseconds=1))
        assert services.expire_due_gifts(now=at) == 0
        expiring_gift.refresh_from_db()
        assert expiring_gift.status == GiftStatus.CLAIMED and recipient.subscriptions.count() == 1


@pytest.mark.django_db(transaction=True)
def test_it_ends_each_race_between_the_expiry_sweep_and_a_redeem_at_the_expiry_instant_in_exactly_one_state():
    rounds = []
    for i in range(12):
        customer = GuestFactory()
        held = SubscriptionFactory(customer=customer) if i % 2 else None  # odd rounds would EXTEND
        expires = timezone.now() + timedelta(days=1, minutes=i)  # one gift due per round
        gift = GiftFactory(
            status=GiftStatus.UNCLAIMED, scheduled_at=expires - timedelta(days=30), claim_expiry_date=expires
        )
        rounds.append((customer, held, gift))

    for customer, held, gift in rounds:
        start, outcome, expires = threading.Barrier(2), {}, gift.claim_expiry_date

        def sweep(start=start, outcome=outcome, expires=expires):
            try:
                start.wait()
                outcome["expired"] = services.expire_due_gifts(now=expires)
            finally:
                connection.close()

        def redeem(start=start, outcome=outcome, customer=customer, gift=gift, expires=expires):
            try:
                start.wait()
                services.gift_redeem(customer=customer, code=gift.code, now=expires - timedelta(milliseconds=1))
                outcome["redeemed"] = True
            except RedeemRefused as refused:
                outcome["refused"] = refused.code
            finally:
                connection.close()

        threads = [threading.Thread(target=sweep), threading.Thread(target=redeem)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        gift.refresh_from_db()
        subscriptions = list(customer.subscriptions.all())
        if gift.status == GiftStatus.CLAIMED:
            assert outcome == {"expired": 0, "redeemed": True}
            assert len(subscriptions) == 1 and gift.subscription == subscriptions[0]
            if held:
                assert subscriptions[0].term_end == held.term_end + gift.offer.period_delta
        else:
            assert gift.status == GiftStatus.EXPIRED
            assert outcome == {"expired": 1, "refused": "EXPIRED"}
            assert gift.subscription is None and gift.claimed_at is None
            assert [(s.pk, s.term_end) for s in subscriptions] == ([(held.pk, held.term_end)] if held else [])
