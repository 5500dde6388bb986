"""The offer's policy for a recipient who already holds the same access: extend what they hold (the storefront
contract, and the default) or refuse the gift with ALREADY_HAS_ACCESS."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.models import Subscription
from accounts.tests.factories import CustomerFactory, SubscriptionFactory
from gifts import services
from gifts.models import GiftStatus
from gifts.tests.factories import make_gift
from gifts.verification import REFUSAL_MESSAGES, RedeemRefused, RefusalReason, gift_verify
from giftshop.tests.mediastore import assert_error, client_for, data_of
from offers.models import Offer
from offers.tests.factories import OfferFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def recipient():
    return CustomerFactory()


def gift_of(policy=None, tags=("premium",)):
    fields = {"same_access_policy": policy} if policy else {}
    return make_gift(offer=OfferFactory(period="3months", tags=list(tags), **fields))


def holding(recipient, tags=("premium",), **fields):
    return SubscriptionFactory(customer=recipient, offer=OfferFactory(tags=list(tags)), **fields)


def test_an_offer_extends_what_the_recipient_holds_by_default(recipient):
    held = holding(recipient)
    gift = gift_of()
    assert gift.offer.same_access_policy == Offer.SameAccessPolicy.EXTEND

    redeemed = services.gift_redeem(customer=recipient, code=gift.code)

    assert (redeemed.mode, redeemed.subscription.pk) == ("EXTEND", held.pk)
    assert recipient.subscriptions.count() == 1


def test_an_offer_set_to_refuse_refuses_a_recipient_who_already_has_the_access(recipient):
    held = holding(recipient)
    gift = gift_of(Offer.SameAccessPolicy.REFUSE)

    verification = gift_verify(customer=recipient, code=gift.code)
    assert (verification.redeemable, verification.refusal) == (False, RefusalReason.ALREADY_HAS_ACCESS)
    assert verification.message == REFUSAL_MESSAGES["ALREADY_HAS_ACCESS"]
    with pytest.raises(RedeemRefused) as refused:
        services.gift_redeem(customer=recipient, code=gift.code)

    assert (refused.value.code, refused.value.status) == ("ALREADY_HAS_ACCESS", 409)
    gift.refresh_from_db()
    assert (gift.status, gift.subscription_id) == (GiftStatus.SCHEDULED, None)
    assert list(recipient.subscriptions.values_list("pk", "term_end")) == [(held.pk, held.term_end)]


def test_the_storefront_api_says_already_has_access_on_verify_and_redeem(recipient):
    holding(recipient)
    gift = gift_of(Offer.SameAccessPolicy.REFUSE)
    client = client_for(recipient)

    verification = data_of(client.get(f"/mediastore/gifts/verification/{gift.code}"))
    body = assert_error(client.post(f"/mediastore/gifts/redeem/{gift.code}", content_type="application/json"), 409)

    assert (verification["redeemable"], verification["redeemRefusalReason"]) == (False, "ALREADY_HAS_ACCESS")
    assert body["responseData"]["redeemRefusalReason"] == "ALREADY_HAS_ACCESS"


@pytest.mark.parametrize(
    "held",
    [
        pytest.param({}, id="nothing"),
        pytest.param({"tags": ("news",)}, id="other-access"),
        pytest.param({"status": Subscription.Status.EXPIRED}, id="ended"),
        pytest.param({"term_end_days_ago": 1, "auto_renew": False}, id="term-over"),
    ],
)
def test_an_offer_set_to_refuse_still_gives_a_new_subscription_to_a_recipient_without_the_access(recipient, held):
    held = dict(held)
    if held:
        days_ago = held.pop("term_end_days_ago", None)
        if days_ago:
            now = timezone.now()
            held.update(term_start=now - timedelta(days=30), term_end=now - timedelta(days=days_ago))
        holding(recipient, **held)
    gift = gift_of(Offer.SameAccessPolicy.REFUSE)

    assert gift_verify(customer=recipient, code=gift.code).mode == "NEW"
    redeemed = services.gift_redeem(customer=recipient, code=gift.code)

    assert redeemed.mode == "NEW" and redeemed.subscription.offer == gift.offer


def test_the_policy_is_chosen_in_the_offer_admin(client):
    client.force_login(CustomerFactory(is_staff=True, is_superuser=True))
    offer = OfferFactory()
    url = reverse("admin:offers_offer_change", args=[offer.pk])
    assert 'name="same_access_policy"' in client.get(url).content.decode()

    form = {
        "country": "",
        "title": offer.title,
        "description": "",
        "period": offer.period,
        "price": "9.99",
        "currency": "USD",
        "active": "on",
        "giftable": "on",
        "tags": "premium",
        "same_access_policy": "refuse",
        "refund_window_days": "14",
        "start_later_days": "90",
        "claim_window_end": "expire",  # issue 16: nothing back when a gift is not redeemed in time (the default)
        "quantity_tiers-TOTAL_FORMS": "0",  # the offer's quantity tiers (bulk gift lists): none
        "quantity_tiers-INITIAL_FORMS": "0",
    }
    assert client.post(url, form).status_code == 302

    offer.refresh_from_db()
    assert offer.same_access_policy == Offer.SameAccessPolicy.REFUSE
