"""The storefront API of bulk gift lists (issue 18): create from JSON rows or CSV, read the report, fix by line,
pay once, follow the progress and each recipient's status."""

from decimal import Decimal

import pytest
from django.test import Client

from accounts.tests.factories import CustomerFactory, PaymentMethodFactory
from billing.models import Order, Payment
from gifts.models import BulkList, Gift
from giftshop.mediastore import issue_jwt
from offers.models import QuantityTier
from offers.tests.factories import OfferFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def offer():
    return OfferFactory(price=Decimal("10.00"))


@pytest.fixture
def gifter():
    return CustomerFactory()


def api(customer):
    return Client(HTTP_AUTHORIZATION=f"Bearer {issue_jwt(customer)}")


def post(client, path, body):
    return client.post(f"/mediastore/{path}", body, content_type="application/json")


def test_a_front_end_creates_fixes_pays_and_follows_a_list(gifter, offer, django_capture_on_commit_callbacks):
    QuantityTier.objects.create(offer=offer, min_quantity=2, percent_off=Decimal("50"))
    client = api(gifter)
    rows = [
        {"email": "a@example.com", "firstName": "Ada", "message": "Hi"},
        {"email": "broken"},
        {"email": "c@example.com", "date": "2999-01-01", "time": "10:00", "timeZone": "Europe/Paris"},
    ]
    response = post(client, "gift-lists", {"offerId": offer.long_id, "rows": rows})
    assert response.status_code == 200, response.content
    data = response.json()["responseData"]
    assert data["rows"] == {"rows": 3, "valid": 2, "invalid": 1, "dropped": 0}
    assert data["problems"] == [{"line": 3, "email": "broken", "problems": ["“broken” is not a valid email address."]}]
    refused = post(client, f"gift-lists/{data['id']}/payment", {"cardToken": "tok_visa"})
    assert refused.status_code == 409 and not Payment.objects.exists()

    fixed = client.patch(
        f"/mediastore/gift-lists/{data['id']}",
        {"rows": [{"line": 3, "email": "b@example.com"}]},
        content_type="application/json",
    ).json()["responseData"]
    assert fixed["rows"]["invalid"] == 0 and fixed["price"]["totalPrice"] == 15.0  # 3 x 10.00, 50 % off
    with django_capture_on_commit_callbacks(execute=True):
        paid = post(client, f"gift-lists/{data['id']}/payment", {"cardToken": "tok_visa", "totalPrice": "15.00"})
    assert paid.status_code == 200, paid.content
    assert paid.json()["responseData"]["status"] == "paid"  # the gifts are made after the commit, by a task
    follow = client.get(f"/mediastore/gift-lists/{data['id']}").json()["responseData"]
    assert follow["status"] == "done" and follow["progress"] == {"created": 3, "total": 3}
    assert Order.objects.get().quantity == 3 and Payment.objects.filter(status="succeeded").count() == 1
    gifts = client.get(f"/mediastore/gift-lists/{data['id']}/gifts").json()["responseData"]
    assert gifts["totalCount"] == 3
    assert [(item["line"], item["recipientEmail"], item["status"]) for item in gifts["items"]] == [
        (2, "a@example.com", "scheduled"),
        (3, "b@example.com", "scheduled"),
        (4, "c@example.com", "scheduled"),
    ]
    assert Gift.objects.count() == 3


def test_a_list_from_csv_text_and_a_bad_file_in_the_envelope(gifter, offer):
    client = api(gifter)
    ok = post(client, "gift-lists", {"offerId": offer.long_id, "csv": "email;first_name\na@example.com;Ada\n"})
    assert ok.json()["responseData"]["rows"]["valid"] == 1
    bad = post(client, "gift-lists", {"offerId": offer.long_id, "csv": "name\nAda\n"})
    assert bad.status_code == 422 and bad.json()["code"] == "REQ0001"
    assert "must name the columns" in bad.json()["errors"][0]
    both = post(client, "gift-lists", {"offerId": offer.long_id, "csv": "email\na@example.com\n", "rows": []})
    assert both.status_code == 422


def test_a_changed_total_is_refused_before_any_charge(gifter, offer):
    client = api(gifter)
    created = post(client, "gift-lists", {"offerId": offer.long_id, "rows": [{"email": "a@example.com"}]})
    list_id = created.json()["responseData"]["id"]
    response = post(client, f"gift-lists/{list_id}/payment", {"cardToken": "tok_visa", "totalPrice": "1.00"})
    assert response.status_code == 409 and "The price has changed" in response.json()["errors"][0]
    assert not Payment.objects.filter(status="succeeded").exists()


def test_a_list_is_its_gifters_only(gifter, offer):
    created = post(api(gifter), "gift-lists", {"offerId": offer.long_id, "rows": [{"email": "a@example.com"}]})
    list_id = created.json()["responseData"]["id"]
    other = api(CustomerFactory())
    assert other.get(f"/mediastore/gift-lists/{list_id}").status_code == 404
    card = PaymentMethodFactory(customer=gifter, token="tok_visa")
    response = post(other, f"gift-lists/{list_id}/payment", {"paymentDetailId": card.pk})
    assert response.status_code == 404 and BulkList.objects.get().status == "draft"
