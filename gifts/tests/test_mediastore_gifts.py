"""Gifts over the storefront API: who may see and edit a gift (SEC-10), verification and redemption over HTTP,
and redemption under concurrency (RELIABILITY.md RACE-1, RACE-2, RACE-3)."""

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from dateutil.relativedelta import relativedelta
from django.core.cache import cache
from django.db import connection
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import Subscription
from accounts.tests.factories import CustomerFactory, PaymentMethodFactory, SubscriptionFactory
from billing.models import Order
from gifts import codes, services
from gifts.models import Gift, GiftStatus, GiftTimeline
from gifts.tests.factories import make_gift
from giftshop import mediastore_urls
from giftshop.mediastore import MediaStoreView, issue_jwt
from giftshop.tests.mediastore import assert_error, client_for, data_of
from offers.tests.factories import OfferFactory

pytestmark = pytest.mark.django_db
# PostgreSQL here allows 100 connections, shared with other test runs on the machine: the race tests keep at most
# this many requests (each with its own connection) in flight; the first wave of that size starts together.
MAX_CONCURRENT = 40


@pytest.fixture(autouse=True)
def _no_attempts_left_over():
    # Failed code attempts are counted in the cache (this run's own Redis db); start every test with none.
    cache.clear()
    yield
    cache.clear()


def redeem(client, code):
    return client.post(f"/mediastore/gifts/redeem/{code}", content_type="application/json")


def verify(client, code):
    return client.get(f"/mediastore/gifts/verification/{code}")


def snapshot(gift):
    gift = Gift.objects.get(pk=gift.pk)
    return (gift.status, gift.recipient_email, gift.personal_note, gift.scheduled_at, gift.resource_version)


def delivered_gift(**fields):
    gift = make_gift(**fields)
    services.deliver_due_gifts()
    gift.refresh_from_db()
    assert gift.status == GiftStatus.UNCLAIMED
    return gift


# --- SEC-10: object-level access ---------------------------------------------------------------------------


def test_a_gifter_sees_their_own_gift():
    gifter = CustomerFactory()
    gift = make_gift(gifter=gifter, personal_note="Enjoy", scheduled_at=timezone.now() + timedelta(days=3))
    data = data_of(client_for(gifter).get(f"/mediastore/gifts/{gift.pk}"))
    assert (data["id"], data["code"], data["offerId"], data["status"]) == (
        gift.pk,
        gift.code,
        gift.offer.long_id,
        "scheduled",
    )
    assert data["deliveryDetails"] == {
        "recipientEmail": "friend@example.com",
        "personalNote": "Enjoy",
        "deliveryDate": int(gift.scheduled_at.timestamp()),
    }
    assert (data["sentAt"], data["redeemedAt"]) == (None, None)


def test_another_gifter_can_neither_read_nor_change_a_gift():
    gifter_a, gifter_b = CustomerFactory(), CustomerFactory()
    gift = make_gift(gifter=gifter_a, scheduled_at=timezone.now() + timedelta(days=5))
    make_gift(gifter=gifter_b)
    before = snapshot(gift)
    b = client_for(gifter_b)
    change = {
        "deliveryDetails": {
            "recipientEmail": "attacker@example.com",
            "deliveryDate": int(timezone.now().timestamp()),
            "personalNote": "mine now",
        }
    }
    not_found = assert_error(b.get(f"/mediastore/gifts/{gift.pk}"), 404)
    assert gift.code not in str(not_found)
    assert_error(b.patch(f"/mediastore/gifts/{gift.pk}", change, format="json"), 404)
    # An unknown id answers exactly the same, so ids reveal nothing.
    assert assert_error(b.get("/mediastore/gifts/999999999"), 404) == not_found
    assert snapshot(gift) == before


def test_the_recipient_cannot_read_the_gifts_purchase_details_by_id():
    gift = make_gift(recipient_email="friend@example.com")
    recipient = CustomerFactory(email="friend@example.com")
    assert_error(client_for(recipient).get(f"/mediastore/gifts/{gift.pk}"), 404)


def test_a_customer_cannot_see_anything_of_another_customer():
    alice, bob = CustomerFactory(email="alice@example.com"), CustomerFactory()
    offer = OfferFactory()
    alice_client = client_for(alice)
    order = data_of(alice_client.post("/mediastore/orders", {"offerId": offer.long_id}, format="json"))["order"]
    data_of(alice_client.post("/mediastore/payments", {"orderId": order["id"], "cardToken": "tok_visa"}, format="json"))
    PaymentMethodFactory(customer=alice)

    b = client_for(bob)
    for path in [
        f"/mediastore/customers/{alice.pk}",
        f"/mediastore/customers/{alice.pk}/transactions",
        f"/mediastore/customers/{alice.pk}/subscriptions",
        f"/mediastore/customers/{alice.pk}/offers",
        f"/mediastore/customers/{alice.pk}/payment-details",
        f"/mediastore/orders/{order['id']}",
        f"/mediastore/offers/{offer.long_id}/customers/alice@example.com",
    ]:
        body = assert_error(b.get(path), 404)
        assert "alice" not in str(body)
    assert data_of(b.get(f"/mediastore/customers/{bob.pk}/transactions"))["items"] == []
    assert data_of(b.get(f"/mediastore/customers/{bob.pk}/subscriptions"))["items"] == []
    assert Order.objects.get(pk=order["id"]).customer == alice


# Endpoints anyone may call: login, token refresh, registration, the public catalogue and the API's own docs; and
# what Cleeng's SDK asks before anyone logs in: the visitor's locale, the password email, the publisher's consents.
PUBLIC = {
    *("auths", "refresh-token", "customers", "offer", "offers", "schema", "docs"),
    *("locales", "password-reset", "consents"),
}
SAMPLE_KWARGS = {
    "customer_id": "1",
    "publisher_id": "123456789",
    "payment_detail_id": 1,
    "offer_id": "S123456789",
    "email": "someone@example.com",
    "order_id": 1,
    "code": "ABCD-EFGH",
    "gift_id": 1,
    "list_id": 1,  # bulk gift lists (issue 18)
}


def protected_operations():
    """(method, path) of every storefront operation that is not public, read from the URLconf so a new endpoint
    is covered without editing this test."""
    operations = []
    for pattern in mediastore_urls.urlpatterns:
        view_class = getattr(pattern.callback, "view_class", None)
        if pattern.name in PUBLIC or view_class is None or not issubclass(view_class, MediaStoreView):
            continue
        kwargs = {name: SAMPLE_KWARGS[name] for name in pattern.pattern.converters}
        path = reverse(f"mediastore:{pattern.name}", kwargs=kwargs)
        operations += [
            (method, path) for method in ("get", "post", "patch", "put", "delete") if hasattr(view_class, method)
        ]
    return operations


def test_the_public_storefront_endpoints_are_only_the_expected_ones():
    names = {p.name for p in mediastore_urls.urlpatterns if p.name}
    assert names >= PUBLIC
    customers = next(p for p in mediastore_urls.urlpatterns if p.name == "customers").callback.view_class
    assert not any(hasattr(customers, method) for method in ("get", "patch", "put", "delete"))
    assert len(protected_operations()) >= 18


@pytest.mark.parametrize(("method", "path"), protected_operations())
def test_every_other_storefront_endpoint_needs_a_jwt(method, path):
    CustomerFactory()  # so id 1 may well exist: the answer must not depend on it
    response = getattr(APIClient(), method)(path, content_type="application/json")
    assert_error(response, 401, "AUTH0001")


# --- editing a gift ----------------------------------------------------------------------------------------


def details(**overrides):
    when = int((timezone.now() + timedelta(days=10)).timestamp())
    return {"recipientEmail": "new@example.com", "deliveryDate": when, "personalNote": "Later!", **overrides}


def test_a_gifter_changes_all_three_delivery_details():
    gifter = CustomerFactory()
    gift = make_gift(gifter=gifter, scheduled_at=timezone.now() + timedelta(days=5))
    change = details()
    data = data_of(client_for(gifter).patch(f"/mediastore/gifts/{gift.pk}", {"deliveryDetails": change}, format="json"))
    assert data["deliveryDetails"] == change
    gift.refresh_from_db()
    assert (gift.recipient_email, gift.personal_note, int(gift.scheduled_at.timestamp())) == (
        "new@example.com",
        "Later!",
        change["deliveryDate"],
    )


@pytest.mark.parametrize("missing", ["recipientEmail", "deliveryDate", "personalNote"])
def test_a_gift_change_needs_all_three_delivery_details(missing):
    gifter = CustomerFactory()
    gift = make_gift(gifter=gifter, scheduled_at=timezone.now() + timedelta(days=5))
    before = snapshot(gift)
    change = {key: value for key, value in details().items() if key != missing}
    response = client_for(gifter).patch(f"/mediastore/gifts/{gift.pk}", {"deliveryDetails": change}, format="json")
    body = assert_error(response, 422, "REQ0001")
    assert missing in body["errors"][0]
    assert_error(client_for(gifter).patch(f"/mediastore/gifts/{gift.pk}", {}, format="json"), 422, "REQ0001")
    assert snapshot(gift) == before


@pytest.mark.parametrize(
    "change",
    [
        {"recipientEmail": "not-an-email"},
        {"recipientEmail": "a@example.com\nBcc: b@example.com"},
        {"personalNote": "x" * 256},
        {"deliveryDate": "next week"},
    ],
)
def test_invalid_delivery_details_are_422_and_change_nothing(change):
    gifter = CustomerFactory()
    gift = make_gift(gifter=gifter, scheduled_at=timezone.now() + timedelta(days=5))
    before = snapshot(gift)
    response = client_for(gifter).patch(
        f"/mediastore/gifts/{gift.pk}", {"deliveryDetails": details(**change)}, format="json"
    )
    assert_error(response, 422)
    assert snapshot(gift) == before


def test_a_gift_cannot_be_changed_once_it_was_sent():
    gifter = CustomerFactory()
    gift = delivered_gift(gifter=gifter)
    before = snapshot(gift)
    response = client_for(gifter).patch(f"/mediastore/gifts/{gift.pk}", {"deliveryDetails": details()}, format="json")
    assert_error(response, 409)
    assert snapshot(gift) == before


def test_a_gift_cannot_be_changed_once_it_was_redeemed():
    gifter = CustomerFactory()
    gift = make_gift(gifter=gifter, scheduled_at=timezone.now() + timedelta(days=5))
    data_of(redeem(client_for(CustomerFactory()), gift.code))  # handed over early, in person
    before = snapshot(gift)
    response = client_for(gifter).patch(f"/mediastore/gifts/{gift.pk}", {"deliveryDetails": details()}, format="json")
    assert "redeemed" in assert_error(response, 409)["errors"][0]
    assert snapshot(gift) == before


def test_a_gift_can_be_changed_until_the_end_of_the_day_before_delivery_in_the_gifters_time_zone():
    gifter = CustomerFactory(time_zone="America/New_York")
    delivery = datetime(2026, 6, 11, 9, 0, tzinfo=UTC)  # 05:00 in New York on the 11th
    gift = make_gift(gifter=gifter, now=datetime(2026, 6, 1, tzinfo=UTC), scheduled_at=delivery)
    change = {"deliveryDetails": details(deliveryDate=int(delivery.timestamp()))}
    with time_machine.travel(datetime(2026, 6, 11, 3, 59, 59, tzinfo=UTC), tick=False) as traveller:
        data_of(client_for(gifter).patch(f"/mediastore/gifts/{gift.pk}", change, format="json"))
        traveller.move_to(datetime(2026, 6, 11, 4, 0, tzinfo=UTC))  # midnight in New York
        assert_error(client_for(gifter).patch(f"/mediastore/gifts/{gift.pk}", change, format="json"), 409)


# --- verification ------------------------------------------------------------------------------------------


def gift_whose_code_contains(symbol, **fields):
    """A gift whose code has `symbol` in it (codes are random, so look for a nonce that gives one)."""
    nonce = next(f"nonce-{n}" for n in range(10_000) if symbol in codes.code_for_nonce(f"nonce-{n}"))
    gift = make_gift(**fields)
    gift.assign_code(nonce)
    gift.save(update_fields=["code_nonce", "code_digest", "code_last4"])
    return gift


def test_verification_tells_a_new_subscriber_what_redeeming_would_do():
    gift = make_gift(offer=OfferFactory(period="3months", country="US"))
    recipient = CustomerFactory()
    data = data_of(verify(client_for(recipient), gift.code))
    assert {
        key: data[key] for key in ("redeemable", "redeemMode", "redeemRefusalReason", "extendedSubscriptionId")
    } == {
        "redeemable": True,
        "redeemMode": "NEW",
        "redeemRefusalReason": None,
        "extendedSubscriptionId": None,
    }
    assert data["offerId"] == gift.offer.long_id
    assert snapshot(gift)[0] == GiftStatus.SCHEDULED and not recipient.subscriptions.exists()


def test_verification_tells_a_subscriber_their_subscription_would_be_extended():
    gift = make_gift(offer=OfferFactory(tags=["premium"]))
    recipient = CustomerFactory()
    held = SubscriptionFactory(customer=recipient, offer=OfferFactory(tags=["premium"]))
    data = data_of(verify(client_for(recipient), gift.code))
    assert (data["redeemMode"], data["extendedSubscriptionId"]) == ("EXTEND", held.pk)
    assert data["accessUntil"] == int((held.term_end + relativedelta(months=1)).timestamp())


def test_an_unknown_well_formed_code_is_404():
    gift = make_gift()
    unknown = next(code for code in ("ABCD-EFGH", "ABCD-EFGJ") if code != gift.code)
    client = client_for(CustomerFactory())
    assert_error(verify(client, unknown), 404)
    assert_error(redeem(client, unknown), 404)
    assert snapshot(gift)[0] == GiftStatus.SCHEDULED


@pytest.mark.parametrize("code", ["ABC", "ABCD-EFGU", "ABCD-EFGH-J", "ABCD!EFG", "%20"])
def test_a_malformed_code_is_400(code):
    client = client_for(CustomerFactory())
    assert_error(verify(client, code), 400)
    assert_error(redeem(client, code), 400)


def test_codes_are_normalised_for_case_spaces_and_look_alike_letters():
    gift = gift_whose_code_contains("0")
    client = client_for(CustomerFactory())
    for typed in (
        gift.code.lower(),
        gift.code.replace("-", " "),
        gift.code.replace("-", ""),
        f" {gift.code[:4]} - {gift.code[5:]} ",
        gift.code.replace("0", "O"),
        gift.code.replace("0", "o").lower(),
    ):
        assert data_of(verify(client, typed))["redeemable"] is True, typed
    assert data_of(redeem(client, gift.code.replace("0", "o").lower().replace("-", " ")))["redeemMode"] == "NEW"
    assert snapshot(gift)[0] == GiftStatus.CLAIMED


def test_i_and_l_are_read_as_1():
    gift = gift_whose_code_contains("1")
    client = client_for(CustomerFactory())
    assert data_of(verify(client, gift.code.replace("1", "I")))["redeemable"] is True
    assert data_of(verify(client, gift.code.replace("1", "l")))["redeemable"] is True


def test_verification_and_redemption_need_a_jwt():
    gift = make_gift()
    assert_error(verify(APIClient(), gift.code), 401, "AUTH0001")
    assert_error(redeem(APIClient(), gift.code), 401, "AUTH0001")
    assert snapshot(gift)[0] == GiftStatus.SCHEDULED


# --- redemption and its refusals over HTTP -----------------------------------------------------------------


def test_redeeming_answers_what_happened_and_creates_the_subscription():
    gift = make_gift(offer=OfferFactory(period="month"))
    recipient = CustomerFactory()
    data = data_of(redeem(client_for(recipient), gift.code))
    subscription = Subscription.objects.get(customer=recipient)
    assert (data["redeemMode"], data["subscriptionId"], data["redeemRefusalReason"]) == ("NEW", subscription.pk, None)
    assert data["accessUntil"] == int(subscription.term_end.timestamp())
    gift.refresh_from_db()
    assert (gift.status, gift.receiver, gift.subscription) == (GiftStatus.CLAIMED, recipient, subscription)


def assert_refused(recipient, gift, status, reason):
    """Verification says why the gift cannot be redeemed, redemption refuses with `status`, and nothing changes."""
    client = client_for(recipient)
    verification = data_of(verify(client, gift.code))
    assert (verification["redeemable"], verification["redeemRefusalReason"]) == (False, reason)
    before = snapshot(gift)
    subscriptions = list(Subscription.objects.filter(customer=recipient).values_list("pk", "term_end"))
    body = assert_error(redeem(client, gift.code), status)
    assert body["responseData"]["redeemRefusalReason"] == reason
    assert body["responseData"]["redeemable"] is False
    assert snapshot(gift) == before
    assert list(Subscription.objects.filter(customer=recipient).values_list("pk", "term_end")) == subscriptions


def test_a_redeemed_code_is_refused_with_409():
    gift = make_gift()
    data_of(redeem(client_for(CustomerFactory()), gift.code))
    assert_refused(CustomerFactory(), gift, 409, "REDEEMED")


def test_a_cancelled_gift_is_refused_with_409():
    gift = delivered_gift()
    now = timezone.now()
    assert services.gift_transition(gift_ids=[gift.pk], to=GiftStatus.CANCELLED, now=now, cancelled_at=now)
    assert_refused(CustomerFactory(), gift, 409, "CANCELLED")


def test_an_expired_gift_is_refused_with_410():
    gift = delivered_gift()
    assert services.expire_due_gifts(now=gift.claim_expiry_date + timedelta(seconds=1)) == 1
    assert_refused(CustomerFactory(), gift, 410, "EXPIRED")


def test_a_gift_past_its_claim_expiry_is_refused_with_410_before_the_sweep_ran():
    gift = delivered_gift()
    with time_machine.travel(gift.claim_expiry_date + timedelta(seconds=1)):
        assert_refused(CustomerFactory(), gift, 410, "EXPIRED")
    assert snapshot(gift)[0] == GiftStatus.UNCLAIMED


def test_a_gift_of_an_inactive_offer_is_refused_with_409():
    gift = make_gift()
    type(gift.offer).objects.filter(pk=gift.offer_id).update(active=False)
    assert_refused(CustomerFactory(), gift, 409, "INACTIVE_OFFER")


def test_a_gift_matching_two_subscriptions_is_refused_with_409():
    gift = make_gift(offer=OfferFactory(tags=["premium"]))
    recipient = CustomerFactory()
    SubscriptionFactory.create_batch(2, customer=recipient, offer=OfferFactory(tags=["premium"]))
    assert_refused(recipient, gift, 409, "MORE_THAN_ONE_MATCHING_SUBSCRIPTION")


def test_a_gift_is_refused_while_the_matching_subscription_renews():
    gift = make_gift(offer=OfferFactory(tags=["premium"]))
    recipient = CustomerFactory()
    SubscriptionFactory(customer=recipient, offer=OfferFactory(tags=["premium"]), renewal_started_at=timezone.now())
    assert_refused(recipient, gift, 409, "RECURRING_PROCESS_ALREADY_STARTED")


# --- redemption under concurrency ---------------------------------------------------------------------------


def concurrently(calls):
    """Runs the callables on at most MAX_CONCURRENT threads; the first MAX_CONCURRENT start together behind a
    barrier. Each call closes its thread's database connection when done (or the test database cannot be
    flushed)."""
    barrier = threading.Barrier(min(MAX_CONCURRENT, len(calls)))

    def run(index):
        try:
            if index < barrier.parties:
                barrier.wait(timeout=30)
            return calls[index]()
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=MAX_CONCURRENT) as pool:
        return list(pool.map(run, range(len(calls))))


def redeem_as(token, code, remote_addr="127.0.0.1"):
    def call():
        client = APIClient(REMOTE_ADDR=remote_addr)
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
        response = redeem(client, code)
        return response.status_code, response.json()

    return call


@pytest.mark.django_db(transaction=True)
def test_race_1_a_hundred_concurrent_redeems_of_one_code_by_one_customer_redeem_it_once(settings):
    # The attempt limiter reserves a slot per request before the look-up, so 100 requests of one account at once
    # would mostly get 429; this test is about the redeem race, so the limit is out of the way here.
    settings.GIFT_CODE_ATTEMPT_LIMIT = 1_000
    recipient = CustomerFactory()
    gift = make_gift(recipient_email=recipient.email)
    token = issue_jwt(recipient)

    results = concurrently([redeem_as(token, gift.code) for _ in range(100)])

    assert Counter(status for status, _body in results) == {200: 1, 409: 99}
    assert {body["responseData"]["redeemRefusalReason"] for status, body in results if status == 409} == {"REDEEMED"}
    subscription = Subscription.objects.get(customer=recipient)
    winner = next(body for status, body in results if status == 200)
    assert winner["responseData"]["subscriptionId"] == subscription.pk
    gift.refresh_from_db()
    assert (gift.status, gift.receiver, gift.subscription) == (GiftStatus.CLAIMED, recipient, subscription)
    assert GiftTimeline.objects.filter(gift=gift, status=GiftStatus.CLAIMED).count() == 1
    assert gift.emails.filter(kind="gift_redeemed").count() == 1


@pytest.mark.django_db(transaction=True)
def test_race_2_fifty_customers_redeeming_one_code_at_once_leave_it_to_exactly_one():
    gift = make_gift()
    customers = [CustomerFactory(password=None) for _ in range(50)]
    # Each customer on their own address, as real ones are.
    calls = [redeem_as(issue_jwt(c), gift.code, remote_addr=f"10.0.0.{i + 1}") for i, c in enumerate(customers)]

    results = concurrently(calls)

    assert Counter(status for status, _body in results) == {200: 1, 409: 49}
    winner = customers[next(i for i, (status, _body) in enumerate(results) if status == 200)]
    assert list(Subscription.objects.values_list("customer", flat=True)) == [winner.pk]
    gift.refresh_from_db()
    assert (gift.status, gift.receiver) == (GiftStatus.CLAIMED, winner)
    assert GiftTimeline.objects.filter(gift=gift, status=GiftStatus.CLAIMED).count() == 1


@pytest.mark.django_db(transaction=True)
def test_race_3_two_gifts_redeemed_at_once_both_extend_the_subscription():
    recipient = CustomerFactory()
    # Day 15 of a month: adding one month and three months gives the same date in either order.
    old_end = (timezone.now() + timedelta(days=40)).replace(day=15, hour=12, minute=0, second=0, microsecond=0)
    held = SubscriptionFactory(
        customer=recipient, offer=OfferFactory(tags=["premium"]), term_start=timezone.now(), term_end=old_end
    )
    monthly = make_gift(offer=OfferFactory(tags=["premium"], period="month"))
    quarterly = make_gift(offer=OfferFactory(tags=["premium"], period="3months"))
    token = issue_jwt(recipient)

    results = concurrently([redeem_as(token, monthly.code), redeem_as(token, quarterly.code)])

    assert [status for status, _body in results] == [200, 200]
    assert {body["responseData"]["redeemMode"] for _status, body in results} == {"EXTEND"}
    held.refresh_from_db()
    assert held.term_end == old_end + relativedelta(months=1) + relativedelta(months=3)
    assert Subscription.objects.filter(customer=recipient).count() == 1
    assert set(Gift.objects.values_list("status", "subscription")) == {(GiftStatus.CLAIMED, held.pk)}
