"""The renewal engine, travelling through time with a redeemed gift: a card on file turns it into a paid
subscription charged once at the end of the gift term; a declining card is retried after 1, 3 and 7 days while
access stays, then expires; without a card it expires; Chargebee's gifts end cancelled. Overdue work is caught up
once, however many sweeps run, concurrently or after an outage or a worker's death."""

import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine
from dateutil.relativedelta import relativedelta
from django.db import connection

from accounts.models import Subscription, Transaction
from accounts.selectors import subscriptions_with_access
from accounts.tests.factories import CustomerFactory, PaymentMethodFactory, SubscriptionFactory
from billing.gateways import SandboxGateway
from billing.gift_sales import gift_purchase
from billing.models import Payment
from billing.renewals import renew_due_subscriptions
from billing.services import charge, payment_method_add, payment_method_from_token
from gifts import services
from gifts.tests.factories import make_gift
from gifts.verification import RedeemRefused, RefusalReason, gift_verify
from offers.tests.factories import OfferFactory

START = datetime(2026, 3, 10, 9, 30, tzinfo=UTC)
SUCCEEDING_CARD, DECLINING_CARD = "4242424242424242", "4000000000000002"


@pytest.fixture
def clock(db):
    with time_machine.travel(START, tick=False) as traveller:
        yield traveller


@pytest.fixture
def recipient(db):
    return CustomerFactory(email="friend@example.com")


def redeem_a_gift(recipient, *, offer=None):
    """A gift bought for `recipient` and redeemed now: their new subscription."""
    gift = make_gift(offer=offer or OfferFactory(period="month", price=Decimal("9.99"), tags=["premium"]))
    return services.gift_redeem(customer=recipient, code=gift.code).subscription


def add_card(customer, number=SUCCEEDING_CARD):
    return payment_method_add(customer=customer, card_number=number, exp_month=12, exp_year=2030)


def reloaded(subscription):
    return Subscription.objects.get(pk=subscription.pk)


def payments_of(customer, status):
    return Payment.objects.filter(customer=customer, kind=Payment.Kind.CHARGE, status=status)


def has_access(customer):
    return [sub.pk for sub in subscriptions_with_access(customer=customer)]


# --- with a card that works -------------------------------------------------------------------------------------


def test_a_redeemed_gift_with_a_card_added_is_charged_once_at_the_end_of_the_gift_term(clock, recipient):
    subscription = redeem_a_gift(recipient)
    assert not subscription.auto_renew  # no card yet: it would simply end
    add_card(recipient)
    assert reloaded(subscription).auto_renew
    gift_term_end = subscription.term_end

    clock.move_to(gift_term_end - timedelta(seconds=1))
    assert renew_due_subscriptions() == 0
    assert not payments_of(recipient, Payment.Status.SUCCEEDED).exists()

    clock.move_to(gift_term_end)
    assert renew_due_subscriptions() == 1
    assert renew_due_subscriptions() == 0

    payment = payments_of(recipient, Payment.Status.SUCCEEDED).get()
    assert (payment.amount, payment.currency, payment.payment_method.last4) == (Decimal("9.99"), "USD", "4242")
    assert (payment.invoice.customer, payment.invoice.total, payment.invoice.is_gifted) == (
        recipient,
        Decimal("9.99"),
        False,
    )
    ledger = Transaction.objects.get()
    assert (ledger.customer, ledger.kind, ledger.amount, ledger.payment_reference) == (
        recipient,
        Transaction.Kind.RENEWAL,
        Decimal("9.99"),
        payment.reference,
    )
    assert (ledger.target_type, ledger.target_id) == (Transaction.TargetType.SUBSCRIPTION, str(subscription.pk))
    renewed = reloaded(subscription)
    assert (renewed.status, renewed.term_start, renewed.term_end) == (
        Subscription.Status.ACTIVE,
        gift_term_end,
        gift_term_end + relativedelta(months=1),
    )
    assert renewed.renewal_started_at is None and renewed.renewal_attempts == 0
    assert has_access(recipient) == [subscription.pk]


def test_the_next_term_is_charged_again_at_its_end(clock, recipient):
    subscription = redeem_a_gift(recipient)
    add_card(recipient)
    clock.move_to(subscription.term_end)
    renew_due_subscriptions()
    clock.move_to(reloaded(subscription).term_end)

    assert renew_due_subscriptions() == 1

    assert payments_of(recipient, Payment.Status.SUCCEEDED).count() == 2
    assert Transaction.objects.filter(customer=recipient, kind=Transaction.Kind.RENEWAL).count() == 2
    assert reloaded(subscription).term_end == subscription.term_end + relativedelta(months=2)


def test_a_card_saved_from_a_gateway_token_switches_auto_renew_on_too(clock, recipient):
    subscription = redeem_a_gift(recipient)
    bought = SubscriptionFactory(customer=recipient, auto_renew=False, origin=Subscription.Origin.PURCHASE)

    payment_method_from_token(customer=recipient, token="tok_visa")

    assert reloaded(subscription).auto_renew
    assert not reloaded(bought).auto_renew  # switched off on purpose: a card does not switch it back on


def test_a_beat_outage_across_the_term_end_renews_exactly_once_when_the_sweep_runs_again(clock, recipient):
    subscription = redeem_a_gift(recipient)
    add_card(recipient)

    clock.move_to(subscription.term_end + timedelta(days=3))  # no sweep ran for three days
    assert has_access(recipient) == [subscription.pk]  # the renewal is only late, not refused
    assert renew_due_subscriptions() == 1
    assert renew_due_subscriptions() == 0
    clock.shift(timedelta(minutes=5))
    assert renew_due_subscriptions() == 0

    assert payments_of(recipient, Payment.Status.SUCCEEDED).count() == 1
    assert Transaction.objects.filter(customer=recipient).count() == 1
    renewed = reloaded(subscription)
    assert (renewed.term_start, renewed.term_end) == (
        subscription.term_end,
        subscription.term_end + relativedelta(months=1),
    )


@pytest.mark.django_db(transaction=True)
def test_two_workers_sweeping_at_once_charge_once():
    recipient = CustomerFactory()
    subscription = redeem_a_gift(recipient)
    add_card(recipient)
    due, start, results = subscription.term_end, threading.Barrier(2), []

    def sweep():
        try:
            start.wait()
            results.append(renew_due_subscriptions(now=due))
        finally:
            connection.close()

    threads = [threading.Thread(target=sweep) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(results) == [0, 1]
    assert payments_of(recipient, Payment.Status.SUCCEEDED).count() == 1
    assert Transaction.objects.filter(customer=recipient).count() == 1
    assert reloaded(subscription).term_end == due + relativedelta(months=1)


def test_a_renewal_left_by_a_dead_worker_is_taken_over_after_30_minutes_without_charging_twice(clock, recipient):
    subscription = redeem_a_gift(recipient)
    method = add_card(recipient)
    clock.move_to(subscription.term_end)
    # The dead worker claimed the subscription and was charged, then died before booking the new term.
    Subscription.objects.filter(pk=subscription.pk).update(renewal_started_at=subscription.term_end)
    charge(
        customer=recipient,
        amount=Decimal("9.99"),
        currency="USD",
        payment_method=method,
        idempotency_key=f"renewal:{subscription.pk}:{subscription.term_end.isoformat()}",
    )

    clock.shift(timedelta(minutes=29))
    assert renew_due_subscriptions() == 0  # it may still be working
    clock.shift(timedelta(minutes=2))
    assert renew_due_subscriptions() == 1

    assert payments_of(recipient, Payment.Status.SUCCEEDED).count() == 1
    assert Transaction.objects.filter(customer=recipient).count() == 1
    renewed = reloaded(subscription)
    assert renewed.term_end == subscription.term_end + relativedelta(months=1)
    assert renewed.renewal_started_at is None


class SlowGateway(SandboxGateway):
    """Runs `during_charge` (once) while the first charge is in flight, as another request or worker would."""

    during_charge = None

    def charge(self, **kwargs):
        hook, type(self).during_charge = type(self).during_charge, None
        if hook:
            hook()
        return super().charge(**kwargs)


def test_a_worker_taking_over_a_slow_renewal_does_not_extend_the_term_twice(clock, recipient, settings):
    subscription = redeem_a_gift(recipient)
    add_card(recipient)
    clock.move_to(subscription.term_end)
    settings.PAYMENT_GATEWAY = f"{__name__}.SlowGateway"
    # The first worker's charge hangs for over 30 minutes; a second worker takes the claim over and finishes first.
    SlowGateway.during_charge = staticmethod(
        lambda: renew_due_subscriptions(now=subscription.term_end + timedelta(minutes=31))
    )

    assert renew_due_subscriptions() == 1

    assert payments_of(recipient, Payment.Status.SUCCEEDED).count() == 1
    assert Transaction.objects.filter(customer=recipient).count() == 1
    renewed = reloaded(subscription)
    assert renewed.term_end == subscription.term_end + relativedelta(months=1)
    assert renewed.renewal_started_at is None


class FlakyGateway(SandboxGateway):
    """The gateway times out on the first charge (the network, not a decline)."""

    calls = 0

    def charge(self, **kwargs):
        type(self).calls += 1
        if type(self).calls == 1:
            raise TimeoutError("the gateway did not answer")
        return super().charge(**kwargs)


def test_a_gateway_timeout_leaves_the_payment_pending_and_the_next_sweep_completes_it_once(clock, recipient, settings):
    settings.PAYMENT_GATEWAY = f"{__name__}.FlakyGateway"
    FlakyGateway.calls = 0
    subscription = redeem_a_gift(recipient)
    add_card(recipient)
    clock.move_to(subscription.term_end)

    assert renew_due_subscriptions() == 1
    unsettled = reloaded(subscription)
    assert unsettled.term_end == subscription.term_end and unsettled.renewal_started_at is None
    assert payments_of(recipient, Payment.Status.PENDING).count() == 1

    clock.shift(timedelta(minutes=1))
    assert renew_due_subscriptions() == 1

    payment = Payment.objects.get(customer=recipient)  # the same row, completed
    assert payment.status == Payment.Status.SUCCEEDED
    assert Transaction.objects.filter(customer=recipient).count() == 1
    assert reloaded(subscription).term_end == subscription.term_end + relativedelta(months=1)


# --- a renewal in progress and gifts ------------------------------------------------------------------------


def test_a_same_tag_gift_is_refused_while_the_renewal_payment_runs_and_extends_once_it_is_done(
    clock, recipient, settings
):
    subscription = redeem_a_gift(recipient)
    add_card(recipient)
    second_gift = make_gift(offer=OfferFactory(period="3months", tags=["premium"]))
    seen = {}

    def redeem_now():
        seen["verification"] = gift_verify(customer=recipient, code=second_gift.code)
        with pytest.raises(RedeemRefused) as refused:
            services.gift_redeem(customer=recipient, code=second_gift.code)
        seen["refusal"] = refused.value.code

    settings.PAYMENT_GATEWAY = f"{__name__}.SlowGateway"
    SlowGateway.during_charge = staticmethod(redeem_now)
    clock.move_to(subscription.term_end)
    assert renew_due_subscriptions() == 1

    assert seen["refusal"] == seen["verification"].refusal == RefusalReason.RECURRING_PROCESS_ALREADY_STARTED
    renewed = reloaded(subscription)
    assert renewed.renewal_started_at is None
    redeemed = services.gift_redeem(customer=recipient, code=second_gift.code)
    assert (redeemed.mode, redeemed.subscription.pk) == ("EXTEND", subscription.pk)
    assert reloaded(subscription).term_end == renewed.term_end + relativedelta(months=3)


# --- with a card that declines ------------------------------------------------------------------------------


def test_a_declining_card_is_retried_after_1_3_and_7_days_with_access_kept_then_the_subscription_expires(
    clock, recipient
):
    subscription = redeem_a_gift(recipient)
    add_card(recipient, DECLINING_CARD)  # tokenises fine; declines when charged
    assert reloaded(subscription).auto_renew
    term_end = subscription.term_end

    for attempt, (at, retry_at) in enumerate(
        [(0, 1), (1, 3), (3, 7)],
        start=1,
    ):
        clock.move_to(term_end + timedelta(days=at) - timedelta(seconds=1))
        assert renew_due_subscriptions() == 0  # not due yet
        clock.move_to(term_end + timedelta(days=at))
        assert renew_due_subscriptions() == 1
        retrying = reloaded(subscription)
        assert (retrying.status, retrying.renewal_attempts, retrying.next_renewal_attempt_at) == (
            Subscription.Status.ACTIVE,
            attempt,
            term_end + timedelta(days=retry_at),
        )
        assert retrying.renewal_started_at is None and retrying.term_end == term_end
        clock.move_to(term_end + timedelta(days=retry_at) - timedelta(hours=1))
        assert has_access(recipient) == [subscription.pk]

    clock.move_to(term_end + timedelta(days=7))
    assert renew_due_subscriptions() == 1

    expired = reloaded(subscription)
    assert (expired.status, expired.renewal_attempts, expired.next_renewal_attempt_at) == (
        Subscription.Status.EXPIRED,
        4,
        None,
    )
    assert has_access(recipient) == []
    assert payments_of(recipient, Payment.Status.FAILED).count() == 4
    assert not payments_of(recipient, Payment.Status.SUCCEEDED).exists()
    assert not Transaction.objects.filter(customer=recipient).exists()
    clock.shift(timedelta(days=30))
    assert renew_due_subscriptions() == 0


def test_a_card_fixed_during_the_retries_renews_the_term_that_ended(clock, recipient):
    subscription = redeem_a_gift(recipient)
    add_card(recipient, DECLINING_CARD)
    clock.move_to(subscription.term_end)
    renew_due_subscriptions()

    clock.shift(timedelta(hours=6))
    add_card(recipient, SUCCEEDING_CARD)  # the new default
    clock.move_to(subscription.term_end + timedelta(days=1))
    assert renew_due_subscriptions() == 1

    renewed = reloaded(subscription)
    assert (renewed.term_start, renewed.term_end) == (
        subscription.term_end,
        subscription.term_end + relativedelta(months=1),
    )
    assert (renewed.renewal_attempts, renewed.next_renewal_attempt_at) == (0, None)
    assert payments_of(recipient, Payment.Status.SUCCEEDED).get().payment_method.last4 == "4242"
    assert Transaction.objects.filter(customer=recipient, kind=Transaction.Kind.RENEWAL).count() == 1


def test_after_an_outage_past_every_retry_one_more_decline_expires_the_subscription(clock, recipient):
    subscription = redeem_a_gift(recipient)
    add_card(recipient, DECLINING_CARD)

    clock.move_to(subscription.term_end + timedelta(days=10))
    assert renew_due_subscriptions() == 1

    assert reloaded(subscription).status == Subscription.Status.EXPIRED
    assert payments_of(recipient, Payment.Status.FAILED).count() == 1  # missed retries are not fired in a burst


def test_a_gift_redeemed_during_the_retries_extends_the_subscription_and_stops_them(clock, recipient):
    subscription = redeem_a_gift(recipient)
    add_card(recipient, DECLINING_CARD)
    clock.move_to(subscription.term_end)
    renew_due_subscriptions()

    clock.shift(timedelta(hours=12))
    gift = make_gift(offer=OfferFactory(period="month", tags=["premium"]))
    redeemed = services.gift_redeem(customer=recipient, code=gift.code)

    extended = reloaded(subscription)
    assert (redeemed.mode, redeemed.subscription.pk) == ("EXTEND", subscription.pk)
    assert extended.term_end == subscription.term_end + relativedelta(months=1)
    assert (extended.renewal_attempts, extended.next_renewal_attempt_at) == (0, None)
    clock.move_to(subscription.term_end + timedelta(days=1))
    assert renew_due_subscriptions() == 0
    assert payments_of(recipient, Payment.Status.FAILED).count() == 1


# --- ending -----------------------------------------------------------------------------------------------------


def test_without_a_card_the_gift_subscription_expires_at_the_end_of_its_term_and_access_goes(clock, recipient):
    subscription = redeem_a_gift(recipient)
    clock.move_to(subscription.term_end - timedelta(seconds=1))
    assert has_access(recipient) == [subscription.pk]

    clock.move_to(subscription.term_end)
    assert has_access(recipient) == []  # not auto-renewing: the term is all there is
    assert renew_due_subscriptions() == 1

    assert reloaded(subscription).status == Subscription.Status.EXPIRED
    assert has_access(recipient) == []
    assert not Payment.objects.filter(customer=recipient).exists()
    assert not Transaction.objects.filter(customer=recipient).exists()


def test_a_subscription_with_auto_renew_off_expires_even_with_a_card_on_file(clock, recipient):
    PaymentMethodFactory(customer=recipient, token="tok_visa")
    subscription = SubscriptionFactory(customer=recipient, auto_renew=False)
    clock.move_to(subscription.term_end)

    assert renew_due_subscriptions() == 1

    assert reloaded(subscription).status == Subscription.Status.EXPIRED
    assert not Payment.objects.filter(customer=recipient).exists()


def test_a_merchant_gift_ends_cancelled_at_the_end_of_its_term_even_with_a_card_on_file(clock, recipient):
    gifter = CustomerFactory()
    PaymentMethodFactory(customer=gifter, token="tok_visa")
    bought = gift_purchase(
        gifter=gifter,
        offer=OfferFactory(period="month"),
        receiver=recipient,
        recipient_email=recipient.email,
        idempotency_key="merchant-gift-1",
    )
    subscription = services.gift_claim(gift_id=bought.gift.pk).subscription
    assert reloaded(subscription).status == Subscription.Status.NON_RENEWING
    add_card(recipient)
    assert not reloaded(subscription).auto_renew  # Chargebee's gift subscriptions never renew

    clock.move_to(subscription.term_end)
    assert renew_due_subscriptions() == 1

    ended = reloaded(subscription)
    assert (ended.status, ended.cancelled_at) == (Subscription.Status.CANCELLED, subscription.term_end)
    assert has_access(recipient) == []
    assert not Payment.objects.filter(customer=recipient).exists()


def test_a_non_renewing_subscription_expires_at_the_end_of_its_term(clock, recipient):
    PaymentMethodFactory(customer=recipient, token="tok_visa")
    subscription = SubscriptionFactory(customer=recipient, status=Subscription.Status.NON_RENEWING)
    clock.move_to(subscription.term_end)

    assert renew_due_subscriptions() == 1

    assert reloaded(subscription).status == Subscription.Status.EXPIRED
    assert not Payment.objects.filter(customer=recipient).exists()


def test_future_and_ended_subscriptions_are_left_alone(clock, recipient):
    statuses = [Subscription.Status.FUTURE, Subscription.Status.EXPIRED]
    for status in statuses:
        SubscriptionFactory(customer=recipient, status=status, term_start=START - timedelta(days=60))
    cancelled = SubscriptionFactory(
        customer=recipient, status=Subscription.Status.CANCELLED, cancelled_at=START, term_start=START
    )
    clock.move_to(START + timedelta(days=90))

    assert renew_due_subscriptions() == 0

    assert sorted(Subscription.objects.values_list("status", flat=True)) == sorted([*statuses, cancelled.status])


def test_the_sweep_works_through_more_subscriptions_than_one_batch(clock):
    subscriptions = [redeem_a_gift(CustomerFactory()) for _ in range(5)]
    clock.move_to(subscriptions[0].term_end)

    assert renew_due_subscriptions(batch_size=2) == 5

    assert set(Subscription.objects.values_list("status", flat=True)) == {Subscription.Status.EXPIRED}
