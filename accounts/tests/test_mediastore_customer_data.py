"""What a customer holds, over the storefront API: the transaction ledger, subscriptions and offers with access (saved
cards: billing/tests/test_mediastore_cards.py)."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from accounts.models import Subscription
from accounts.tests.factories import CustomerFactory, SubscriptionFactory
from giftshop.tests.mediastore import assert_error, client_for, data_of
from offers.tests.factories import OfferFactory

pytestmark = pytest.mark.django_db


def buy(client, offer, *, gift_to=None):
    """Orders and pays `offer` with the sandbox's Visa token; the payment's responseData."""
    order = data_of(client.post("/mediastore/orders", {"offerId": offer.long_id}, format="json"))["order"]
    if gift_to:
        change = {"buyAsAGift": True, "deliveryDetails": {"recipientEmail": gift_to}}
        data_of(client.patch(f"/mediastore/orders/{order['id']}", change, format="json"))
    return data_of(
        client.post("/mediastore/payments", {"orderId": order["id"], "cardToken": "tok_visa"}, format="json")
    )


# --- transactions ------------------------------------------------------------------------------------------


def test_the_transaction_list_pages_with_limit_and_offset_newest_first():
    customer = CustomerFactory()
    client = client_for(customer)
    offers = [OfferFactory(title=f"Plan {n}", country="US") for n in range(3)]
    payments = [buy(client, offers[0]), buy(client, offers[1], gift_to="friend@example.com"), buy(client, offers[2])]
    url = f"/mediastore/customers/{customer.pk}/transactions"

    first = data_of(client.get(url, {"limit": 2, "offset": 0}))
    assert first["totalCount"] == 3
    assert [t["transactionId"] for t in first["items"]] == [payments[2]["transactionId"], payments[1]["transactionId"]]
    rest = data_of(client.get(url, {"limit": 2, "offset": 2}))
    assert [t["transactionId"] for t in rest["items"]] == [payments[0]["transactionId"]]
    assert data_of(client.get(url, {"offset": 3}))["items"] == []

    item = first["items"][1]
    assert item["offerId"] == offers[1].long_id and item["offerTitle"] == "Plan 1"
    assert (item["targetType"], item["targetId"]) == ("giftId", str(payments[1]["giftId"]))
    assert item["paymentMethod"] == "card"
    assert isinstance(item["transactionDate"], int)
    assert abs(item["transactionDate"] - timezone.now().timestamp()) < 60
    assert item["transactionId"].startswith("T")
    assert first["items"][0]["targetType"] == "subscriptionId"
    assert first["items"][0]["targetId"] == str(payments[2]["subscriptionId"])


def test_a_customer_without_transactions_gets_an_empty_list():
    customer = CustomerFactory()
    assert data_of(client_for(customer).get(f"/mediastore/customers/{customer.pk}/transactions")) == {
        "items": [],
        "totalCount": 0,
    }


@pytest.mark.parametrize(
    "query",
    [{"limit": "abc"}, {"limit": 0}, {"limit": 101}, {"limit": -1}, {"offset": -1}, {"offset": "x"}, {"limit": "1.5"}],
)
@pytest.mark.parametrize("listing", ["transactions", "subscriptions"])
def test_a_bad_limit_or_offset_is_req0002(listing, query):
    customer = CustomerFactory()
    response = client_for(customer).get(f"/mediastore/customers/{customer.pk}/{listing}", query)
    assert_error(response, 422, "REQ0002")


# --- subscriptions and offers ------------------------------------------------------------------------------


def test_the_subscription_list_shows_what_the_customer_bought_and_holds():
    customer = CustomerFactory()
    client = client_for(customer)
    offer = OfferFactory(period="month", price=Decimal("12.50"), country="US")
    payment = buy(client, offer)
    old = SubscriptionFactory(
        customer=customer,
        status=Subscription.Status.EXPIRED,
        term_start=timezone.now() - timedelta(days=90),
        term_end=timezone.now() - timedelta(days=60),
    )

    data = data_of(client.get(f"/mediastore/customers/{customer.pk}/subscriptions"))
    assert data["totalCount"] == 2
    bought, expired = data["items"]
    assert bought["subscriptionId"] == payment["subscriptionId"]
    assert (bought["offerId"], bought["status"], bought["autoRenew"], bought["period"]) == (
        offer.long_id,
        "active",
        True,
        "month",
    )
    assert bought["totalPrice"] == 12.5 and bought["currency"] == "USD"
    assert bought["nextPaymentAt"] == bought["expiresAt"] > bought["startedAt"]
    assert (expired["subscriptionId"], expired["status"], expired["nextPaymentAt"]) == (old.pk, "expired", None)
    one = data_of(client.get(f"/mediastore/customers/{customer.pk}/subscriptions", {"limit": 1, "offset": 1}))
    assert [s["subscriptionId"] for s in one["items"]] == [old.pk]


def test_customer_offers_list_only_what_gives_access_now():
    customer = CustomerFactory()
    now = timezone.now()
    current = SubscriptionFactory(customer=customer, offer=OfferFactory(country="US"))
    SubscriptionFactory(
        customer=customer, status=Subscription.Status.EXPIRED, term_start=now - timedelta(days=60), term_end=now
    )
    SubscriptionFactory(customer=customer, term_start=now + timedelta(days=1), status=Subscription.Status.FUTURE)
    SubscriptionFactory(customer=CustomerFactory())

    items = data_of(client_for(customer).get(f"/mediastore/customers/{customer.pk}/offers"))["items"]
    assert [(i["subscriptionId"], i["offerId"], i["status"]) for i in items] == [
        (current.pk, current.offer.long_id, "active")
    ]
    assert items[0]["expiresAt"] == int(current.term_end.timestamp())
