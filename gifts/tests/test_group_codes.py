"""Group codes (issue 18): one code, N seats, each redeemed once by a different account through the single gift's
lifecycle; the storefront contract (a spent code answers REDEEMED); the seat count under 100 concurrent redeems."""

import re
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.models import Subscription
from accounts.tests.factories import CustomerFactory, PaymentMethodFactory, SubscriptionFactory
from billing.models import Invoice, Order, Payment
from gifts import group_codes
from gifts.models import Gift, GiftStatus, GroupCode, GroupSeat
from giftshop.mediastore import issue_jwt
from giftshop.models import Event
from offers.models import QuantityTier
from offers.tests.factories import OfferFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def offer():
    return OfferFactory(title="Premium monthly", price=Decimal("10.00"), tags=["premium"])


@pytest.fixture
def gifter():
    return CustomerFactory(email="team-lead@example.com")


def api(customer):
    return Client(HTTP_AUTHORIZATION=f"Bearer {issue_jwt(customer)}")


def verify(customer, code):
    return api(customer).get(f"/mediastore/gifts/verification/{code}")


def redeem(customer, code):
    return api(customer).post(f"/mediastore/gifts/redeem/{code}", content_type="application/json")


def test_three_seats_are_redeemed_by_three_accounts_and_refused_to_the_fourth(gifter, offer):
    group = group_codes.group_code_create(gifter=gifter, offer=offer, seats=3)
    people = [CustomerFactory() for _ in range(4)]
    assert verify(people[0], group.code).json()["responseData"]["seatsLeft"] == 3
    for n, person in enumerate(people[:3]):
        response = redeem(person, group.code.lower().replace("-", " "))
        assert response.status_code == 200, response.content
        data = response.json()["responseData"]
        assert data["redeemMode"] == "NEW" and data["seatsLeft"] == 2 - n
        assert Subscription.objects.get(customer=person).offer == offer
    refused = redeem(people[3], group.code)
    assert refused.status_code == 409
    assert refused.json()["responseData"]["redeemRefusalReason"] == "REDEEMED"
    verification = verify(people[3], group.code).json()["responseData"]
    assert verification["redeemable"] is False and verification["redeemRefusalReason"] == "REDEEMED"
    assert verification["seatsLeft"] == 0
    group.refresh_from_db()
    assert group.seats_used == 3
    gifts = Gift.objects.filter(group_seat__group_code=group)
    assert gifts.count() == 3 and set(gifts.values_list("status", flat=True)) == {GiftStatus.CLAIMED}
    assert Event.objects.filter(event_type="gift_claimed").count() == 3  # ordinary gifts for the merchant API


def test_one_account_takes_one_seat_only(gifter, offer):
    group = group_codes.group_code_create(gifter=gifter, offer=offer, seats=5)
    person = CustomerFactory()
    assert redeem(person, group.code).status_code == 200
    again = redeem(person, group.code)
    assert again.status_code == 409 and again.json()["responseData"]["redeemRefusalReason"] == "REDEEMED"
    assert verify(person, group.code).json()["responseData"]["redeemRefusalReason"] == "REDEEMED"
    group.refresh_from_db()
    assert group.seats_used == 1


def test_a_seat_extends_a_matching_subscription_like_a_gift(gifter, offer):
    person = CustomerFactory()
    held = SubscriptionFactory(customer=person, offer=OfferFactory(tags=["premium"]))
    group = group_codes.group_code_create(gifter=gifter, offer=offer, seats=2)
    data = redeem(person, group.code).json()["responseData"]
    assert data["redeemMode"] == "EXTEND" and data["extendedSubscriptionId"] == held.pk


def test_a_refused_claim_gives_the_seat_back(gifter, offer):
    person = CustomerFactory()
    SubscriptionFactory(customer=person, offer=OfferFactory(tags=["premium"]))
    SubscriptionFactory(customer=person, offer=OfferFactory(tags=["premium"]))
    group = group_codes.group_code_create(gifter=gifter, offer=offer, seats=1)
    response = redeem(person, group.code)
    assert response.json()["responseData"]["redeemRefusalReason"] == "MORE_THAN_ONE_MATCHING_SUBSCRIPTION"
    group.refresh_from_db()
    assert group.seats_used == 0 and not GroupSeat.objects.exists() and not Gift.objects.exists()


def test_an_expired_group_code_answers_expired(gifter, offer):
    group = group_codes.group_code_create(
        gifter=gifter, offer=offer, seats=2, expires_at=timezone.now() - timedelta(seconds=1)
    )
    response = redeem(CustomerFactory(), group.code)
    assert response.status_code == 410 and response.json()["responseData"]["redeemRefusalReason"] == "EXPIRED"


def test_an_unknown_code_is_still_a_404_and_counts_as_a_guess(gifter, offer):
    group_codes.group_code_create(gifter=gifter, offer=offer, seats=2)
    assert verify(CustomerFactory(), "ABCD-EFGH").status_code == 404


def test_the_redeem_page_says_how_many_seats_are_left_and_the_gifter_sees_who_redeemed(client, gifter, offer):
    group = group_codes.group_code_create(gifter=gifter, offer=offer, seats=3)
    redeem(CustomerFactory(email="first@example.com"), group.code)
    person = CustomerFactory()
    client.force_login(person)
    response = client.post(reverse("gifts:redeem"), {"code": group.code})
    page = client.get(response.url).content.decode()
    assert re.search(r'id="seats-left">2 ', page)
    response = client.post(reverse("gifts:redeem"), {"code": group.code, "action": "confirm"})
    assert response.status_code == 302 and Subscription.objects.filter(customer=person).exists()
    client.force_login(gifter)
    page = client.get(reverse("gifts:group_code", args=[group.pk])).content.decode()
    assert group.code in page and "first@example.com" in page and person.email in page
    assert 'id="seats-left">1<' in page
    assert f'id="group-{group.pk}"' in client.get(reverse("gifts:gifts")).content.decode()
    client.force_login(person)  # only the gifter sees the code
    assert client.get(reverse("gifts:group_code", args=[group.pk])).status_code == 404


def test_a_gifter_buys_a_group_code_with_one_order_invoice_and_charge(client, gifter, offer):
    QuantityTier.objects.create(offer=offer, min_quantity=10, percent_off=Decimal("10"))
    PaymentMethodFactory(customer=gifter, token="tok_visa")
    client.force_login(gifter)
    url = reverse("billing:group_new", args=[offer.long_id])
    page = client.get(url).content.decode()
    key = re.search(r'name="checkout_key" value="([^"]+)"', page).group(1)
    form = {"checkout_key": key, "seats": "10", "saved_card": str(gifter.payment_methods.get().pk)}
    page = client.post(url, {**form, "action": "price"}).content.decode()
    assert "$90.00" in page  # 10 x 10.00, less 10 %
    response = client.post(url, {**form, "action": "pay", "shown_total": "90.00"})
    assert response.status_code == 302, response.content.decode()[:3000]
    group = GroupCode.objects.get()
    assert group.seats == 10 and group.order.quantity == 10 and group.order.total_price == Decimal("90.00")
    assert Invoice.objects.get().lines.get().quantity == 10
    assert Payment.objects.filter(status="succeeded").count() == 1
    again = client.post(url, {**form, "action": "pay", "shown_total": "90.00"})  # a double submit
    assert again.status_code == 302 and GroupCode.objects.count() == 1 and Order.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_one_hundred_concurrent_redeems_of_a_ten_seat_code_take_exactly_ten_seats(gifter, offer):
    """Through the storefront API, 100 accounts at once (40 threads, the database's connection budget; the first 40
    start together behind a barrier): 10 redeem, 90 are told REDEEMED."""
    assert connection.vendor == "postgresql"
    group = group_codes.group_code_create(gifter=gifter, offer=offer, seats=10)
    tokens = [issue_jwt(CustomerFactory(email=f"racer{n}@example.com")) for n in range(100)]
    barrier = threading.Barrier(40)

    def run(index):
        try:
            if index < barrier.parties:
                barrier.wait(timeout=30)
            client = Client(HTTP_AUTHORIZATION=f"Bearer {tokens[index]}", REMOTE_ADDR=f"10.0.{index}.1")
            response = client.post(f"/mediastore/gifts/redeem/{group.code}", content_type="application/json")
            return response.status_code, response.json()["responseData"].get("redeemRefusalReason")
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=40) as pool:
        outcomes = list(pool.map(run, range(100)))
    assert outcomes.count((200, None)) == 10, outcomes
    assert outcomes.count((409, "REDEEMED")) == 90, outcomes
    group.refresh_from_db()
    assert group.seats_used == 10
    assert GroupSeat.objects.count() == 10 and Gift.objects.filter(status=GiftStatus.CLAIMED).count() == 10
    assert Subscription.objects.count() == 10


def test_an_admin_gives_a_group_code_without_showing_it_in_the_message_list(client, gifter, offer):
    client.force_login(CustomerFactory(is_staff=True, is_superuser=True))
    response = client.post(
        reverse("admin:gifts_groupcode_add"),
        {"gifter": gifter.pk, "offer": offer.pk, "seats": "5", "personal_note": "For the team"},
        follow=True,
    )
    group = GroupCode.objects.get()
    assert (group.seats, group.gifter, group.order) == (5, gifter, None)
    page = response.content.decode()
    assert group.masked_code in page and group.code not in page
    assert client.get(reverse("admin:gifts_groupcode_change", args=[group.pk])).status_code == 200
    assert client.get(reverse("admin:gifts_bulklist_changelist")).status_code == 200
