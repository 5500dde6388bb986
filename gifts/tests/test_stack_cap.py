"""Issue 16, the stacked-access cap (Offer.stack_cap_months, e.g. 18 like Spotify): redeeming a gift that would take
its recipient's access further ahead than the cap from today is refused with a clear reason before anything changes,
on the redeem page (at verify time), the storefront API and the merchant API's claim. Under the cap, or with no cap,
it redeems as before; a later start counts too."""

from datetime import UTC, date, datetime

import pytest
import time_machine
from dateutil.relativedelta import relativedelta
from django.urls import reverse

from accounts.tests.factories import CustomerFactory, SubscriptionFactory
from gifts import services
from gifts.models import GiftStatus
from gifts.tests.factories import make_gift
from gifts.tests.merchant import MerchantClient
from gifts.verification import RedeemRefused, RefusalReason, gift_verify
from giftshop.tests.mediastore import assert_error, client_for, data_of
from offers.tests.factories import OfferFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 12, 5, 10, 0, tzinfo=UTC)
REFUSAL = "This gift would take your access past 18 months ahead (to 5 August 2028); redeem it after 5 February 2027."


@pytest.fixture(autouse=True)
def clock():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@pytest.fixture
def recipient():
    return CustomerFactory(email="peter@example.com")


def holding(recipient, months=17):
    """A subscription of the recipient's with access for `months` more."""
    return SubscriptionFactory(
        customer=recipient,
        offer=OfferFactory(tags=["premium"]),
        term_start=NOW - relativedelta(months=1),
        term_end=NOW + relativedelta(months=months),
    )


def capped_gift(cap=18, period="3months", **fields):
    offer = OfferFactory(period=period, tags=["premium"], stack_cap_months=cap)
    gift = make_gift(offer=offer, recipient_email="peter@example.com", **fields)
    services.deliver_due_gifts(send=False)
    gift.refresh_from_db()
    return gift


def nothing_changed(gift, held):
    gift.refresh_from_db()
    assert gift.status == GiftStatus.UNCLAIMED and gift.subscription_id is None and gift.receiver_id is None
    before = held.term_end
    held.refresh_from_db()
    assert held.term_end == before
    assert held.customer.subscriptions.count() == 1


def test_a_gift_that_would_stack_access_past_the_cap_is_refused_with_when_it_can_be_redeemed(recipient):
    held = holding(recipient)
    gift = capped_gift()

    verification = gift_verify(customer=recipient, code=gift.code)
    assert (verification.redeemable, verification.refusal) == (False, RefusalReason.STACK_CAP_EXCEEDED)
    assert verification.message == REFUSAL
    with pytest.raises(RedeemRefused) as refused:
        services.gift_redeem(customer=recipient, code=gift.code)

    assert (refused.value.code, refused.value.status, refused.value.message) == ("STACK_CAP_EXCEEDED", 409, REFUSAL)
    nothing_changed(gift, held)


def test_under_the_cap_or_with_no_cap_it_extends_as_before(recipient):
    held = holding(recipient, months=15)
    gift = capped_gift()

    redeemed = services.gift_redeem(customer=recipient, code=gift.code)

    assert (redeemed.mode, redeemed.subscription.pk) == ("EXTEND", held.pk)
    assert redeemed.term_end == NOW + relativedelta(months=18)  # exactly at the cap is allowed
    uncapped = capped_gift(cap=None)
    assert services.gift_redeem(customer=recipient, code=uncapped.code).term_end > NOW + relativedelta(months=18)


def test_on_the_date_the_refusal_names_the_gift_can_be_redeemed(recipient, clock):
    held = holding(recipient)
    gift = capped_gift()

    clock.move_to(datetime(2027, 2, 5, 10, 0, tzinfo=UTC))
    redeemed = services.gift_redeem(customer=recipient, code=gift.code)

    assert redeemed.subscription.pk == held.pk and redeemed.term_end.date() == date(2028, 8, 5)


def test_a_gift_whose_own_period_is_longer_than_the_cap_is_refused_for_anyone(recipient):
    gift = capped_gift(cap=6, period="year")

    verification = gift_verify(customer=recipient, code=gift.code)

    assert verification.refusal == RefusalReason.STACK_CAP_EXCEEDED
    assert verification.message == "This gift would take your access past 6 months ahead (to 5 December 2027)."


def test_a_later_start_that_would_pass_the_cap_is_refused(recipient):
    gift = capped_gift(cap=12, period="year")
    gift.offer.start_later_days = 90
    gift.offer.save(update_fields=["start_later_days"])

    with pytest.raises(RedeemRefused) as refused:
        services.gift_redeem(customer=recipient, code=gift.code, start=date(2027, 1, 5))

    assert refused.value.code == "STACK_CAP_EXCEEDED"
    assert "past 12 months ahead (to 5 January 2028)" in refused.value.message
    gift.refresh_from_db()
    assert gift.status == GiftStatus.UNCLAIMED and not recipient.subscriptions.exists()


def test_the_redeem_page_shows_the_refusal_at_verify_and_confirm_changes_nothing(client, recipient):
    held = holding(recipient)
    gift = capped_gift()
    client.force_login(recipient)

    shown = client.post(reverse("gifts:redeem"), {"code": gift.code, "action": "verify"}, follow=True)
    confirmed = client.post(reverse("gifts:redeem"), {"code": gift.code, "action": "confirm"})

    assert REFUSAL in shown.content.decode()
    assert confirmed.status_code == 409 and REFUSAL in confirmed.content.decode()
    nothing_changed(gift, held)


def test_the_storefront_api_refuses_it_on_verify_and_redeem(recipient):
    held = holding(recipient)
    gift = capped_gift()
    client = client_for(recipient)

    verification = data_of(client.get(f"/mediastore/gifts/verification/{gift.code}"))
    body = assert_error(client.post(f"/mediastore/gifts/redeem/{gift.code}", content_type="application/json"), 409)

    assert (verification["redeemable"], verification["redeemRefusalReason"]) == (False, "STACK_CAP_EXCEEDED")
    assert body["responseData"]["redeemRefusalReason"] == "STACK_CAP_EXCEEDED"
    assert body["errors"] == [REFUSAL]
    nothing_changed(gift, held)


def test_the_merchant_claim_is_refused_with_the_reason(recipient):
    held = holding(recipient)
    gift = capped_gift()

    response = MerchantClient().post(f"gifts/{gift.pk}/claim")

    assert response.status_code == 409
    assert REFUSAL in response.content.decode()
    nothing_changed(gift, held)
    with pytest.raises(RedeemRefused):
        services.gift_claim(gift_id=gift.pk, receiver=recipient)
    nothing_changed(gift, held)
