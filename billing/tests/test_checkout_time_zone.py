"""The zone a gifter picks at checkout (web or MediaStore API) stays with the gift, and with a guest's new account:
the thank-you page, the receipt and "My gifts" show the delivery and the edit cutoff on that clock."""

import re
from datetime import UTC, datetime

import pytest
from django.core import mail
from django.urls import reverse

from accounts.models import Customer
from accounts.tests.factories import CustomerFactory
from billing.models import Order
from gifts.models import Gift
from gifts.tests.factories import make_gift
from giftshop.tests.mediastore import assert_error, client_for, data_of
from offers.tests.factories import OfferFactory

pytestmark = pytest.mark.django_db

# 9 December 18:30 in Los Angeles is 10 December 02:30 UTC: another day in UTC.
DELIVERY = datetime(2026, 12, 10, 2, 30, tzinfo=UTC)
IN_WORDS = "Wed 9 Dec, 18:30 Los Angeles time"
CUTOFF_IN_WORDS = "Wed 9 Dec, 00:00 Los Angeles time"


@pytest.fixture(autouse=True)
def early_december(time_machine):
    time_machine.move_to(datetime(2026, 12, 1, 12, tzinfo=UTC), tick=False)


@pytest.fixture
def offer():
    return OfferFactory(title="Premium yearly", period="year", price="99.99")


def checkout(client, offer, **fields):
    url = reverse("billing:gift_checkout", args=[offer.long_id])
    key = re.search(r'name="checkout_key" value="([^"]+)"', client.get(url).content.decode()).group(1)
    data = {
        "checkout_key": key,
        "recipient_email": "friend@example.com",
        "recipient_email_again": "friend@example.com",
        "delivery_date": "2026-12-09",
        "delivery_time": "18:30",
        "time_zone": "America/Los_Angeles",
        "card_number": "4242 4242 4242 4242",
        "exp_month": "12",
        "exp_year": "2030",
        "cvc": "123",
        "action": "pay",
        **fields,
    }
    return client.post(url, data)


def test_a_guest_gets_every_time_in_the_zone_they_chose(client, offer, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = checkout(client, offer, email="guest@example.com")
    assert response.status_code == 302, response.content.decode()[:3000]
    gift = Gift.objects.get()
    assert (gift.scheduled_at, gift.time_zone) == (DELIVERY, "America/Los_Angeles")
    assert Customer.objects.get(email="guest@example.com").time_zone == "America/Los_Angeles"  # the new account

    thanks = client.get(response.url).content.decode()
    assert IN_WORDS in thanks and CUTOFF_IN_WORDS in thanks
    assert "10 Dec" not in thanks and "UTC" not in thanks
    receipt = mail.outbox[0]
    html = receipt.alternatives[0][0]
    for body in (receipt.body, html):
        assert IN_WORDS in body and f"until {CUTOFF_IN_WORDS}" in body and "UTC" not in body


def test_a_customer_keeps_their_own_zone_and_the_gift_keeps_the_chosen_one(client, offer):
    gifter = CustomerFactory(time_zone="Europe/Berlin")
    client.force_login(gifter)
    response = checkout(client, offer)
    assert response.status_code == 302, response.content.decode()[:3000]
    assert Gift.objects.get().time_zone == "America/Los_Angeles"
    gifter.refresh_from_db()
    assert gifter.time_zone == "Europe/Berlin"
    assert IN_WORDS in client.get(response.url).content.decode()
    assert IN_WORDS in client.get(reverse("gifts:gifts")).content.decode()


def test_checkout_refuses_a_zone_that_is_not_offered(client, offer):
    response = checkout(client, offer, email="guest@example.com", time_zone="GB-Eire")
    assert response.status_code == 200 and 'id="id_time_zone_error"' in response.content.decode()
    assert not Order.objects.filter(status=Order.Status.PAID).exists()


def test_the_mediastore_order_takes_an_optional_time_zone(offer):
    client = client_for(CustomerFactory(time_zone=""))
    order = data_of(client.post("/mediastore/orders", {"offerId": offer.short_id}, format="json"))["order"]
    path = f"/mediastore/orders/{order['id']}"
    details = {"recipientEmail": "friend@example.com", "deliveryDate": int(DELIVERY.timestamp())}
    bad = {"buyAsAGift": True, "deliveryDetails": {**details, "timeZone": "Mars/Olympus_Mons"}}
    assert_error(client.patch(path, bad, format="json"), 422)
    change = {"buyAsAGift": True, "deliveryDetails": {**details, "timeZone": "America/Los_Angeles"}}
    answer = data_of(client.patch(path, change, format="json"))["order"]
    assert answer["deliveryDetails"]["deliveryDate"] == int(DELIVERY.timestamp())  # still Unix seconds
    data_of(client.post("/mediastore/payments", {"orderId": order["id"], "cardToken": "tok_visa"}, format="json"))
    assert Gift.objects.get().time_zone == "America/Los_Angeles"


def test_the_mediastore_gift_change_keeps_the_zone_unless_one_is_sent():
    gifter = CustomerFactory()
    gift = make_gift(gifter=gifter, scheduled_at=DELIVERY, time_zone="America/Los_Angeles")
    client, path = client_for(gifter), f"/mediastore/gifts/{gift.pk}"
    details = {"recipientEmail": "friend@example.com", "deliveryDate": int(DELIVERY.timestamp()), "personalNote": ""}
    data_of(client.patch(path, {"deliveryDetails": details}, format="json"))
    gift.refresh_from_db()
    assert gift.time_zone == "America/Los_Angeles"
    data_of(client.patch(path, {"deliveryDetails": {**details, "timeZone": "Europe/Berlin"}}, format="json"))
    gift.refresh_from_db()
    assert (gift.scheduled_at, gift.time_zone) == (DELIVERY, "Europe/Berlin")
