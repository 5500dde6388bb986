"""A customer's saved cards over the storefront API (payment details): added through the gateway (only its token is
kept), listed, the newest the default, removed, and never someone else's."""

import pytest

from accounts.models import PaymentMethod
from accounts.tests.factories import CustomerFactory, PaymentMethodFactory
from giftshop.tests.mediastore import assert_error, client_for, data_of

pytestmark = pytest.mark.django_db


def add_card(client, customer, number="4242424242424242", month=12, year=2030):
    return client.post(
        f"/mediastore/customers/{customer.pk}/payment-details",
        {"cardNumber": number, "expMonth": month, "expYear": year},
        format="json",
    )


def test_a_customer_adds_a_sandbox_card_and_only_its_token_is_kept():
    customer = CustomerFactory()
    data = data_of(add_card(client_for(customer), customer, "4242 4242 4242 4242"), 201)
    assert data["paymentGateway"] == "sandbox" and data["paymentMethod"] == "card" and data["active"] is True
    assert data["paymentMethodSpecificParams"] == {
        "variant": "visa",
        "lastCardFourDigits": "4242",
        "cardExpirationDate": "12/2030",
    }
    method = PaymentMethod.objects.get(pk=data["id"], customer=customer)
    assert "4242424242424242" not in method.token and method.token.startswith("tok_")


def test_the_newest_card_becomes_the_default_and_both_are_listed():
    customer = CustomerFactory()
    client = client_for(customer)
    visa = data_of(add_card(client, customer), 201)
    mastercard = data_of(add_card(client, customer, "5555555555554444", 1, 2031), 201)
    listed = data_of(client.get(f"/mediastore/customers/{customer.pk}/payment-details"))["paymentDetails"]
    assert {(d["id"], d["active"]) for d in listed} == {(visa["id"], False), (mastercard["id"], True)}
    assert {d["paymentMethodSpecificParams"]["variant"] for d in listed} == {"visa", "mastercard"}


@pytest.mark.parametrize(
    "card",
    [
        {"cardNumber": "4111111111111111", "expMonth": 12, "expYear": 2030},
        {"cardNumber": "4242424242424242", "expMonth": 13, "expYear": 2030},
        {"cardNumber": "4242424242424242", "expMonth": 12},
        {"cardNumber": "", "expMonth": 12, "expYear": 2030},
    ],
)
def test_an_unusable_card_is_refused_with_422(card):
    customer = CustomerFactory()
    response = client_for(customer).post(f"/mediastore/customers/{customer.pk}/payment-details", card, format="json")
    assert_error(response, 422)
    assert not PaymentMethod.objects.exists()


def test_a_customer_deletes_a_card_and_the_other_becomes_the_default():
    customer = CustomerFactory()
    client = client_for(customer)
    older = PaymentMethodFactory(customer=customer, is_default=False)
    default = data_of(add_card(client, customer), 201)
    assert data_of(client.delete(f"/mediastore/payment-details/{default['id']}")) == {}
    assert list(customer.payment_methods.values_list("pk", "is_default")) == [(older.pk, True)]
    listed = data_of(client.get(f"/mediastore/customers/{customer.pk}/payment-details"))["paymentDetails"]
    assert [(d["id"], d["active"]) for d in listed] == [(older.pk, True)]


def test_a_customer_cannot_delete_or_list_someone_elses_card():
    customer, other = CustomerFactory(), CustomerFactory()
    theirs = PaymentMethodFactory(customer=other)
    client = client_for(customer)
    assert_error(client.delete(f"/mediastore/payment-details/{theirs.pk}"), 404)
    assert_error(client.get(f"/mediastore/customers/{other.pk}/payment-details"), 404)
    assert_error(add_card(client, other), 404)
    assert PaymentMethod.objects.filter(pk=theirs.pk, customer=other, is_default=True).exists()
    assert not customer.payment_methods.exists() and other.payment_methods.count() == 1


def test_deleting_an_unknown_card_is_404():
    assert_error(client_for(CustomerFactory()).delete("/mediastore/payment-details/999999"), 404)
