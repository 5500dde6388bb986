"""One unclaimed gift, several ways to end it at the same moment (RELIABILITY.md RACE-4): the recipient redeems
the code, the merchant cancels it, the expiry sweep expires it. Exactly one wins, every round, and the money and
the subscription follow the winner."""

import threading
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from accounts.models import Customer, Subscription, Transaction
from billing import gift_sales
from billing.models import Invoice, Payment
from gifts import services
from gifts.models import TERMINAL, Gift, GiftStatus, GiftTimeline
from gifts.tests.merchant import MerchantClient, assert_error, gifter_with_card, new_api_key
from gifts.verification import RedeemRefused, Verification
from giftshop.errors import ServiceError
from offers.tests.factories import OfferFactory

pytestmark = pytest.mark.django_db(transaction=True)
ROUNDS = 10


def at_once(calls):
    """Runs the callables on their own threads, released together by a barrier; each returns what its callable
    returned or raised, and closes its thread's database connection (or the test database cannot be flushed)."""
    barrier = threading.Barrier(len(calls))

    def run(call):
        try:
            barrier.wait(timeout=30)
            return call()
        except Exception as error:  # reported to the test, which decides whether it was expected
            return error
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(run, calls))


def unclaimed_gift(gifter, offer, *, claim_expiry_date):
    """A merchant gift, paid and delivered: `unclaimed`, with its `future` subscription and a paid invoice."""
    bought = gift_sales.gift_purchase(
        gifter=gifter,
        offer=offer,
        receiver=None,
        recipient_email=f"friend-{uuid.uuid4().hex[:8]}@example.com",
        claim_expiry_date=claim_expiry_date,
        idempotency_key=uuid.uuid4().hex,
    )
    services.deliver_due_gifts(send=False)
    gift = Gift.objects.get(pk=bought.gift.pk)
    assert gift.status == GiftStatus.UNCLAIMED
    return gift


def assert_money_and_subscription_follow(gift, *, redeemer=None):
    """Subscription active iff claimed; refunded in full exactly once iff cancelled; never both."""
    gift.refresh_from_db()
    assert gift.status in TERMINAL
    assert GiftTimeline.objects.filter(gift=gift, status__in=TERMINAL).count() == 1
    subscription = Subscription.objects.get(gifts=gift)
    if gift.status == GiftStatus.CLAIMED:
        assert subscription.status == Subscription.Status.NON_RENEWING
        assert subscription.customer == (redeemer or gift.receiver)
    else:
        assert subscription.status == Subscription.Status.CANCELLED
    refunds = Payment.objects.filter(kind=Payment.Kind.REFUND, invoice_id=gift.invoice_id)
    invoice = Invoice.objects.get(pk=gift.invoice_id)
    if gift.status == GiftStatus.CANCELLED:
        assert refunds.get().status == Payment.Status.SUCCEEDED
        assert invoice.amount_refunded == invoice.total
        assert Transaction.objects.filter(kind=Transaction.Kind.REFUND, target_id=str(gift.pk)).count() == 1
    else:
        assert not refunds.exists()
        assert invoice.amount_refunded == 0
        assert not Transaction.objects.filter(kind=Transaction.Kind.REFUND, target_id=str(gift.pk)).exists()


def test_race_4_redeem_cancel_and_the_expiry_sweep_leave_exactly_one_terminal_state():
    gifter, offer = gifter_with_card(), OfferFactory(period="month")
    redeemer = Customer.objects.create_user("redeemer@example.com")
    raw_key = new_api_key()
    winners = Counter()

    for round_ in range(ROUNDS):
        expiry = timezone.now() + timedelta(hours=1)
        gift = unclaimed_gift(gifter, offer, claim_expiry_date=expiry)

        def redeem(code=gift.code):
            return services.gift_redeem(customer=redeemer, code=code)

        # Every other round the merchant cancels over HTTP; otherwise through the service the API calls (a
        # quicker start, so that the cancellation also gets to win some rounds).
        def cancel(gift_id=gift.pk, over_http=round_ % 2 == 0):
            if over_http:
                return MerchantClient(raw_key, raise_request_exception=False).post(f"gifts/{gift_id}/cancel")
            return gift_sales.gift_cancel(gift_id=gift_id)

        def sweep(now=expiry + timedelta(seconds=1)):
            return services.expire_due_gifts(now=now)

        redeemed, cancelled, expired = at_once([redeem, cancel, sweep])

        gift.refresh_from_db()
        winners[gift.status] += 1
        outcomes = {
            GiftStatus.CLAIMED: isinstance(redeemed, Verification),
            GiftStatus.CANCELLED: isinstance(cancelled, Gift) or getattr(cancelled, "status_code", None) == 200,
            GiftStatus.EXPIRED: expired == 1,
        }
        assert [status for status, won in outcomes.items() if won] == [gift.status], (redeemed, cancelled, expired)
        if not outcomes[GiftStatus.CLAIMED]:
            assert isinstance(redeemed, RedeemRefused), redeemed
            assert redeemed.code in ("CANCELLED", "EXPIRED")
        if not outcomes[GiftStatus.CANCELLED] and isinstance(cancelled, ServiceError):
            assert (cancelled.status, cancelled.code) == (409, "invalid_state")
        elif not outcomes[GiftStatus.CANCELLED]:
            assert_error(cancelled, 409, "invalid_state_for_request")
        if not outcomes[GiftStatus.EXPIRED]:
            assert expired == 0, expired
        assert_money_and_subscription_follow(gift, redeemer=redeemer)

    assert sum(winners.values()) == ROUNDS
    assert Subscription.objects.filter(customer=redeemer).count() == winners[GiftStatus.CLAIMED]


def test_concurrent_claims_and_cancels_over_http_let_exactly_one_through():
    gifter, offer = gifter_with_card(), OfferFactory(period="month")
    raw_key = new_api_key()
    winners = Counter()

    for round_ in range(ROUNDS):
        gift = unclaimed_gift(gifter, offer, claim_expiry_date=timezone.now() + timedelta(days=30))

        def post(action, key, gift_id=gift.pk):
            def call():
                client = MerchantClient(raw_key, raise_request_exception=False)
                return action, client.post(f"gifts/{gift_id}/{action}", idempotency_key=key)

            return call

        # Three duplicates (one idempotency key) and two independent requests of each action.
        calls = [post("claim", f"claim-{round_}") for _ in range(3)] + [post("claim", None) for _ in range(2)]
        calls += [post("cancel", f"cancel-{round_}") for _ in range(3)] + [post("cancel", None) for _ in range(2)]

        results = at_once(calls)

        assert not [r for r in results if isinstance(r, Exception)], results
        fresh_wins = [
            (action, response)
            for action, response in results
            if response.status_code == 200 and "chargebee-idempotency-replayed" not in response
        ]
        assert len(fresh_wins) == 1, [(a, r.status_code, r.content) for a, r in results]
        action, won = fresh_wins[0]
        gift.refresh_from_db()
        assert gift.status == {"claim": GiftStatus.CLAIMED, "cancel": GiftStatus.CANCELLED}[action]
        winners[gift.status] += 1
        for other_action, response in results:
            if response.status_code == 200:  # a replay of the winner's answer
                assert (other_action, response.content) == (action, won.content)
            elif response.status_code == 409:
                assert response.json()["api_error_code"] in ("invalid_state_for_request", "request_in_progress")
            else:
                pytest.fail(f"{other_action}: {response.status_code} {response.content}")
        assert won.json()["gift"]["status"] == gift.status
        assert won.json()["subscription"]["status"] == (
            "non_renewing" if gift.status == GiftStatus.CLAIMED else "cancelled"
        )
        assert_money_and_subscription_follow(gift)

    assert sum(winners.values()) == ROUNDS
