"""What Cleeng's own front end (@cleeng/mediastore-sdk 5.26.0) asks of the storefront API besides the documented
calls (issue 13; in a browser: giftshop/tests/test_cleeng_sdk.py): the visitor's locale, the password email, the
shop's terms as consents, Capture, the catalogue, plan switches, and saved cards under Cleeng's spelling."""

import pytest
from django.core import mail
from rest_framework.test import APIClient

from accounts.models import Customer
from accounts.tests.factories import CustomerFactory, PaymentMethodFactory
from giftshop.tests.mediastore import assert_error, client_for, data_of, publisher_id
from offers.tests.factories import OfferFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def customer():
    return CustomerFactory(email="ana@example.com", first_name="Ana", last_name="Lima")


@pytest.fixture
def client(customer):
    return client_for(customer)


def test_locales_place_nobody_and_registering_with_them_works():
    locales = data_of(APIClient().get("/mediastore/locales"))
    assert locales == {"country": "", "currency": "", "locale": "en_US"}
    body = {"email": "new@example.com", "password": "a-long-Passw0rd!", "publisherId": publisher_id(), **locales}
    assert data_of(APIClient().post("/mediastore/customers", body, format="json"))["jwt"]
    assert Customer.objects.get(email="new@example.com").country == ""


def test_a_password_reset_answers_alike_and_emails_only_an_owner(customer, django_capture_on_commit_callbacks):
    for email in (customer.email, "nobody@example.com"):
        body = {"customerEmail": email, "publisherId": publisher_id(), "resetUrl": "https://evil.example/reset"}
        with django_capture_on_commit_callbacks(execute=True):
            response = APIClient().put("/mediastore/customers/passwords", body, format="json")
        assert data_of(response) == {"success": True}
    assert [m.to for m in mail.outbox] == [[customer.email]]
    assert "evil.example" not in mail.outbox[0].body
    wrong = {"customerEmail": customer.email, "publisherId": "999"}
    assert_error(APIClient().put("/mediastore/customers/passwords", wrong, format="json"), 422, "REQ0001")


def test_the_shops_terms_are_the_one_consent(customer, client):
    publisher = data_of(APIClient().get(f"/mediastore/publishers/{publisher_id()}/consents"))["consents"]
    assert [(c["name"], c["required"]) for c in publisher] == [("terms", True)]
    assert_error(APIClient().get("/mediastore/publishers/999/consents"), 404)

    url = f"/mediastore/customers/{customer.pk}/consents"
    (held,) = data_of(client.get(url))["consents"]
    assert (held["name"], held["state"], held["needsUpdate"]) == ("terms", "accepted", False)
    accepted = {"consents": [{"name": "terms", "version": "1", "state": "accepted"}]}
    assert data_of(client.put(url, accepted, format="json")) == {}
    declined = {"consents": [{"name": "terms", "version": "1", "state": "declined"}]}
    assert_error(client.put(url, declined, format="json"), 422, "REQ0001")
    unknown = {"consents": [{"name": "marketing", "version": "1", "state": "accepted"}]}
    assert_error(client.put(url, unknown, format="json"), 422, "REQ0001")
    other = CustomerFactory()
    assert_error(client.get(f"/mediastore/customers/{other.pk}/consents"), 404)
    assert_error(APIClient().get(url), 401, "AUTH0001")


def test_capture_is_never_shown_and_its_names_are_the_profiles(customer, client):
    status = data_of(client.get(f"/mediastore/customers/{customer.pk}/capture/status"))
    assert status["shouldCaptureBeDisplayed"] is False
    # The SDK's body when a profile is saved.
    body = {"firstName": "Anna", "lastName": "Lima", "address": None, "city": None, "customAnswers": None}
    assert data_of(client.put(f"/mediastore/customers/{customer.pk}/capture", body, format="json")) == {}
    customer.refresh_from_db()
    assert (customer.first_name, customer.last_name) == ("Anna", "Lima")
    assert_error(client.put(f"/mediastore/customers/{CustomerFactory().pk}/capture", body, format="json"), 404)


def test_the_catalogue_lists_the_offers_on_sale():
    on_sale = OfferFactory(title="Premium Streaming")
    OfferFactory(title="Old plan", active=False)
    offers = data_of(APIClient().get("/mediastore/offers", {"pageLimit": 100}))
    assert [(o["longId"], o["title"]) for o in offers] == [(on_sale.long_id, "Premium Streaming")]


def test_no_plan_switches_are_offered(customer, client):
    offer = OfferFactory()
    url = f"/mediastore/customers/{customer.pk}/subscription_switches/{offer.long_id}/availability"
    assert data_of(client.get(url)) == {"available": [], "unavailable": []}
    assert data_of(client.get("/mediastore/subscription_switches")) == []
    assert_error(client.get(url.replace(offer.long_id, "S999999999")), 404)


def test_saved_cards_answer_under_cleengs_spelling_too(customer, client):
    PaymentMethodFactory(customer=customer, last4="4242")
    cleeng = data_of(client.get(f"/mediastore/customers/{customer.pk}/payment_details"))
    assert cleeng == data_of(client.get(f"/mediastore/customers/{customer.pk}/payment-details"))
    assert cleeng["paymentDetails"][0]["paymentMethodSpecificParams"]["lastCardFourDigits"] == "4242"


def test_the_catalogue_is_limited_by_page_limit():
    cheap, _ = OfferFactory(price="1.00"), OfferFactory(price="2.00")
    assert [o["longId"] for o in data_of(APIClient().get("/mediastore/offers", {"pageLimit": 1}))] == [cheap.long_id]
    for wrong in ("0", "101", "null", "-1", "9" * 5000):
        assert_error(APIClient().get("/mediastore/offers", {"pageLimit": wrong}), 422, "REQ0002")
