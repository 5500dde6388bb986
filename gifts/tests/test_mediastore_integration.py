"""Cleeng's "Test your integration" plan, end to end over HTTP against /mediastore/."""

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.tests.factories import CustomerFactory, SubscriptionFactory
from gifts import services
from offers.tests.factories import OfferFactory

pytestmark = pytest.mark.django_db
PUBLISHER = "123456789"


def register(client, email):
    response = client.post(
        "/mediastore/customers",
        {
            "email": email,
            "password": "a-long-Passw0rd!",
            "publisherId": PUBLISHER,
            "locale": "en_US",
            "country": "US",
            "currency": "USD",
        },
        format="json",
    )
    assert response.status_code == 200, response.json()
    data = response.json()["responseData"]
    authed = APIClient()
    authed.credentials(HTTP_AUTHORIZATION=f"Bearer {data['jwt']}")
    return authed, data["customerId"]


def test_the_seed_integration_plan_works_over_http(django_capture_on_commit_callbacks):
    offer = OfferFactory(short_id="S111111111", country="US", period="3months", tags=["premium"], title="Premium 3m")
    anonymous = APIClient()

    # 1. The offer is giftable.
    response = anonymous.get("/mediastore/v2/offers/S111111111_US")
    assert response.status_code == 200
    assert response.json()["responseData"]["giftable"] is True
    assert response.json()["errors"] == []

    # 2. The gifter creates an order and updates it with the gift flag and delivery details (a past date).
    gifter, gifter_id = register(anonymous, "gifter@example.com")
    order = gifter.post(
        "/mediastore/orders", {"offerId": "S111111111", "customerId": gifter_id, "paymentMethodId": 1}, format="json"
    ).json()["responseData"]["order"]
    past = int((timezone.now() - timedelta(days=2)).timestamp())
    response = gifter.patch(
        f"/mediastore/orders/{order['id']}",
        {
            "buyAsAGift": True,
            "deliveryDetails": {
                "recipientEmail": "friend@example.com",
                "deliveryDate": past,
                "personalNote": "Happy Birthday!",
            },
        },
        format="json",
    )
    assert response.status_code == 200, response.json()
    updated = response.json()["responseData"]["order"]
    assert updated["buyAsAGift"] is True
    assert updated["deliveryDetails"]["recipientEmail"] == "friend@example.com"
    assert updated["totalPrice"] == float(offer.price)
    assert updated["deliveryDetails"]["deliveryDate"] == past
    # A gift can be edited until the day before delivery: schedule it ahead so the gift edit below is allowed.
    ahead = int((timezone.now() + timedelta(days=5)).timestamp())
    response = gifter.patch(
        f"/mediastore/orders/{order['id']}", {"deliveryDetails": {"deliveryDate": ahead}}, format="json"
    )
    assert response.json()["responseData"]["order"]["deliveryDetails"]["deliveryDate"] == ahead

    # 3. Payment.
    with django_capture_on_commit_callbacks(execute=True):
        response = gifter.post(
            "/mediastore/payments",
            {"orderId": order["id"], "paymentMethodId": 1, "cardToken": "tok_visa"},
            format="json",
        )
    assert response.status_code == 200, response.json()

    # 4. The transaction points at the gift.
    items = gifter.get(f"/mediastore/customers/{gifter_id}/transactions").json()["responseData"]["items"]
    assert [(i["targetType"], i["offerId"]) for i in items] == [("giftId", "S111111111_US")]
    gift_id = items[0]["targetId"]

    # 5. Get the gift, then update it (all three delivery details; a past date means deliver now).
    gift = gifter.get(f"/mediastore/gifts/{gift_id}").json()["responseData"]
    assert gift["deliveryDetails"]["personalNote"] == "Happy Birthday!"
    response = gifter.patch(
        f"/mediastore/gifts/{gift_id}",
        {
            "deliveryDetails": {
                "recipientEmail": "friend2@example.com",
                "deliveryDate": past,
                "personalNote": "Happy Birthday, again!",
            }
        },
        format="json",
    )
    assert response.status_code == 200, response.json()
    assert response.json()["responseData"]["deliveryDetails"]["recipientEmail"] == "friend2@example.com"

    # 6. Delivery: the email's link carries the code.
    with django_capture_on_commit_callbacks(execute=True):
        assert services.deliver_due_gifts() == 1
    delivery = next(m for m in mail.outbox if m.to == ["friend2@example.com"])
    assert f"?giftCode={gift['code']}" in delivery.body
    assert gifter.get(f"/mediastore/gifts/{gift_id}").json()["responseData"]["sentAt"] is not None

    # 7. A second customer verifies (NEW) and redeems.
    recipient, recipient_id = register(anonymous, "friend2@example.com")
    verification = recipient.get(f"/mediastore/gifts/verification/{gift['code']}").json()["responseData"]
    assert verification["redeemable"] is True and verification["redeemMode"] == "NEW"
    response = recipient.post(f"/mediastore/gifts/redeem/{gift['code']}", content_type="application/json")
    assert response.status_code == 200, response.json()
    subs = recipient.get(f"/mediastore/customers/{recipient_id}/subscriptions").json()["responseData"]["items"]
    assert [(s["status"], s["offerId"]) for s in subs] == [("active", "S111111111_US")]
    assert recipient.get(f"/mediastore/customers/{recipient_id}/transactions").json()["responseData"]["items"] == []

    # A second redeem is refused.
    again = recipient.post(f"/mediastore/gifts/redeem/{gift['code']}", content_type="application/json")
    assert again.status_code == 409
    assert again.json()["responseData"]["redeemRefusalReason"] == "REDEEMED"


def test_a_subscriber_of_a_same_tag_offer_gets_extend():
    gift_offer = OfferFactory(tags=["sports", "premium"], period="month")
    now = timezone.now()
    gift = services.gift_create(
        gifter=CustomerFactory(), offer=gift_offer, recipient_email="sub@example.com", scheduled_at=now, now=now
    )
    subscriber, subscriber_id = register(APIClient(), "sub@example.com")
    held = SubscriptionFactory(customer_id=subscriber_id, offer=OfferFactory(tags=["premium", "sports"]))
    verification = subscriber.get(f"/mediastore/gifts/verification/{gift.code}").json()["responseData"]
    assert verification["redeemMode"] == "EXTEND" and verification["extendedSubscriptionId"] == held.pk
