"""A stored card's token is a charge credential of its customer alone: another customer paying with it is refused
(and the attempt counted), and no API response shows it (issue 11, item 2)."""

import pytest
from rest_framework.test import APIClient

from accounts.models import PaymentMethod
from accounts.tests.factories import CustomerFactory
from billing.models import Payment
from billing.services import payment_method_add
from gifts.tests.merchant import MerchantClient, new_api_key
from giftshop.mediastore import issue_jwt
from offers.tests.factories import OfferFactory

pytestmark = pytest.mark.django_db


def storefront(customer):
    client = APIClient(REMOTE_ADDR="10.9.0.1")
    client.default_format = "json"
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {issue_jwt(customer)}")
    return client


def order_for(client, customer, offer):
    body = {"offerId": offer.long_id, "customerId": customer.pk, "paymentMethodId": 1, "buyAsAGift": False}
    return client.post("/mediastore/orders", body).json()["responseData"]["order"]


@pytest.fixture
def victims_card():
    victim = CustomerFactory()
    return payment_method_add(customer=victim, card_number="4242424242424242", exp_month=12, exp_year=2031)


def test_another_customers_stored_token_is_refused_before_any_charge(victims_card):
    thief, offer = CustomerFactory(), OfferFactory()
    client = storefront(thief)
    order = order_for(client, thief, offer)

    response = client.post("/mediastore/payments", {"orderId": order["id"], "cardToken": victims_card.token})

    assert response.status_code == 422
    assert response.json()["errors"] == ["Unknown payment method."]
    assert not Payment.objects.exists()


def test_trying_other_customers_tokens_is_limited_like_codes(settings):
    settings.GIFT_CODE_ATTEMPT_LIMIT = 3
    cards = [
        payment_method_add(customer=CustomerFactory(), card_number="4242424242424242", exp_month=12, exp_year=2031)
        for _ in range(4)
    ]
    thief, offer = CustomerFactory(), OfferFactory()
    client = storefront(thief)
    order = order_for(client, thief, offer)
    answers = [client.post("/mediastore/payments", {"orderId": order["id"], "cardToken": c.token}) for c in cards]
    assert [a.status_code for a in answers] == [422, 422, 422, 429]
    assert int(answers[-1]["Retry-After"]) > 0
    assert not Payment.objects.exists()


def test_a_customer_may_pay_with_their_own_stored_token_and_one_time_tokens_still_work(victims_card):
    owner, offer = victims_card.customer, OfferFactory()
    client = storefront(owner)
    own = client.post(
        "/mediastore/payments", {"orderId": order_for(client, owner, offer)["id"], "cardToken": victims_card.token}
    )
    assert own.status_code == 200
    assert Payment.objects.get().payment_method == victims_card
    fresh = client.post(
        "/mediastore/payments", {"orderId": order_for(client, owner, offer)["id"], "cardToken": "tok_visa"}
    )
    assert fresh.status_code == 200


def test_no_api_response_shows_a_reusable_token(victims_card):
    api = MerchantClient(new_api_key(kind="read_only"))  # even a read-only key
    listed = api.get("payment_sources", {"customer_id[is]": str(victims_card.customer_id)}).content.decode()
    single = api.get(f"payment_sources/pm_{victims_card.pk}").content.decode()
    details = storefront(victims_card.customer).get("/mediastore/payment-details").content.decode()
    for body in (listed, single, details):
        assert victims_card.token not in body
    reference = api.get(f"payment_sources/pm_{victims_card.pk}").json()["payment_source"]["reference_id"]
    assert reference.startswith("ref_") and reference == PaymentMethod.objects.get().reference_id
