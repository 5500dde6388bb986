"""A customer's copy of their personal data (issue 19, "People's data"): from the account page and the admin, as
JSON; everything the product holds about them, never a secret (card token, password hash, gift code or link)."""

import json

import pytest
from django.test import Client

from accounts.tests.factories import CustomerFactory, PaymentMethodFactory
from gifts import services as gift_services
from gifts.tests.factories import make_gift

pytestmark = pytest.mark.django_db


@pytest.fixture
def customer():
    ana = CustomerFactory(email="ana@example.com", first_name="Ana")
    PaymentMethodFactory(customer=ana)
    return ana


def download(client):
    response = client.get("/account/data/")
    assert response.status_code == 200
    assert response["Content-Disposition"].startswith('attachment; filename="giftshop-data-')
    return response.content.decode()


def test_a_customer_downloads_everything_held_about_them_and_no_secret(customer):
    given = make_gift(gifter=customer, recipient_email="peter@example.com", personal_note="Enjoy, Peter!")
    received = make_gift(recipient_email=customer.email, signature="Sam")
    gift_services.deliver_due_gifts()
    gift_services.gift_redeem(customer=customer, code=received.code)
    client = Client()
    client.force_login(customer)

    raw = download(client)
    data = json.loads(raw)

    assert data["account"]["email"] == "ana@example.com" and data["account"]["first_name"] == "Ana"
    card = customer.payment_methods.get()
    assert data["cards"] == [{**data["cards"][0], "last4": card.last4, "brand": card.brand}]
    assert [g["recipient_email"] for g in data["gifts"]["given"]] == ["peter@example.com"]
    assert data["gifts"]["given"][0]["personal_note"] == "Enjoy, Peter!"
    assert [g["from"] for g in data["gifts"]["received"]] == ["Sam"]
    assert [s["origin"] for s in data["subscriptions"]] == ["gift"]
    given.refresh_from_db()
    for secret in (card.token, customer.password, given.code, given.link_token, received.code):
        assert secret not in raw


def test_the_copy_needs_a_login_and_is_only_ever_ones_own(customer):
    assert Client().get("/account/data/").status_code == 302  # to the login page
    other = Client()
    other.force_login(CustomerFactory(email="someone@example.com"))
    assert json.loads(download(other))["account"]["email"] == "someone@example.com"


def test_support_downloads_a_customers_data_from_the_admin(admin_client, customer):
    form = {"action": "download_personal_data", "_selected_action": [customer.pk]}
    response = admin_client.post("/admin/accounts/customer/", form)
    assert response.status_code == 200
    assert json.loads(response.content)["account"]["email"] == "ana@example.com"
    several = {"action": "download_personal_data", "_selected_action": [customer.pk, CustomerFactory().pk]}
    assert admin_client.post("/admin/accounts/customer/", several, follow=True).status_code == 200
