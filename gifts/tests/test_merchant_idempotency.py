"""Idempotency keys, authentication and rate limits of the merchant API (RELIABILITY.md IDEM-1 to IDEM-10):
one request runs at most once per (API key, idempotency key), however often and however concurrently it is
sent."""

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.db import connection
from django.utils import timezone

from accounts.models import Subscription, Transaction
from billing.models import Payment
from emails.models import Email
from gifts import services
from gifts.models import Gift, GiftStatus, GiftTimeline
from gifts.tests.merchant import (
    MerchantClient,
    assert_error,
    basic_auth,
    gift_params,
    gifter_with_card,
    new_api_key,
)
from giftshop.chargebee import REPLAYED_HEADER, idempotency_reap
from giftshop.models import ApiKey, IdempotencyRecord
from giftshop.services import api_key_create
from offers.tests.factories import OfferFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def api():
    return MerchantClient()


@pytest.fixture
def gifter():
    return gifter_with_card()


@pytest.fixture
def offer():
    return OfferFactory(price="9.99", period="month")


def charges():
    return Payment.objects.filter(kind=Payment.Kind.CHARGE)


# --- IDEM-1, IDEM-2: sequential repeats ---------------------------------------------------------------------


def test_idem_1_a_repeated_purchase_is_replayed_byte_for_byte_and_runs_once(api, gifter, offer):
    params = gift_params(gifter, offer)

    first = api.post("gifts", params, idempotency_key="purchase-1")
    second = api.post("gifts", params, idempotency_key="purchase-1")

    assert first.status_code == second.status_code == 200
    assert second.content == first.content
    assert REPLAYED_HEADER not in first
    assert second[REPLAYED_HEADER] == "true"
    assert Gift.objects.count() == 1
    assert Email.objects.filter(kind=Email.Kind.GIFT_RECEIPT).count() == 1
    assert charges().count() == 1
    assert Transaction.objects.count() == 1


def test_idem_2_the_same_key_with_another_request_is_422_and_keeps_the_first_answer(api, gifter, offer):
    first = api.post("gifts", gift_params(gifter, offer), idempotency_key="purchase-2")

    other = api.post(
        "gifts",
        gift_params(gifter, offer, **{"gift_receiver[email]": "other@example.com"}),
        idempotency_key="purchase-2",
    )

    assert_error(other, 422, "unable_to_process_request")
    assert REPLAYED_HEADER not in other
    assert list(Gift.objects.values_list("recipient_email", flat=True)) == ["friend@example.com"]
    assert charges().count() == 1
    replay = api.post("gifts", gift_params(gifter, offer), idempotency_key="purchase-2")
    assert (replay.status_code, replay.content, replay[REPLAYED_HEADER]) == (200, first.content, "true")


def test_the_same_key_on_another_endpoint_is_422(api, gifter, offer):
    api.post("gifts", gift_params(gifter, offer), idempotency_key="shared")
    gift = Gift.objects.get()

    response = api.post(f"gifts/{gift.pk}/cancel", idempotency_key="shared")

    assert_error(response, 422, "unable_to_process_request")
    assert Gift.objects.get().status == GiftStatus.SCHEDULED


def test_the_order_of_form_fields_does_not_make_another_request(api, gifter, offer):
    params = gift_params(gifter, offer)
    first = api.post("gifts", params, idempotency_key="reordered")

    again = api.post("gifts", dict(reversed(list(params.items()))), idempotency_key="reordered")

    assert (again.status_code, again.content, again[REPLAYED_HEADER]) == (200, first.content, "true")
    assert Gift.objects.count() == 1


def test_requests_without_a_key_are_not_deduplicated(api, gifter, offer):
    api.post("gifts", gift_params(gifter, offer))
    api.post("gifts", gift_params(gifter, offer))

    assert Gift.objects.count() == 2
    assert charges().count() == 2
    assert not IdempotencyRecord.objects.exists()


# --- IDEM-3: concurrent duplicates --------------------------------------------------------------------------


def at_once(calls):
    """Runs the callables on their own threads, all released together by a barrier; each thread closes its
    database connection when done (or the test database cannot be flushed)."""
    barrier = threading.Barrier(len(calls))

    def run(call):
        try:
            barrier.wait(timeout=30)
            return call()
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(run, calls))


@pytest.mark.django_db(transaction=True)
def test_idem_3_twenty_concurrent_duplicates_create_one_gift_and_never_fail():
    raw_key = new_api_key()
    params = gift_params(gifter_with_card(), OfferFactory())

    def purchase():
        response = MerchantClient(raw_key, raise_request_exception=False).post(
            "gifts", params, idempotency_key="concurrent"
        )
        return response.status_code, response.content, response.get(REPLAYED_HEADER), response

    results = at_once([purchase] * 20)

    statuses = Counter(status for status, *_ in results)
    assert set(statuses) <= {200, 409}, statuses
    fresh = [content for status, content, replayed, _ in results if status == 200 and replayed is None]
    assert len(fresh) == 1
    assert {content for status, content, *_ in results if status == 200} == {fresh[0]}
    for status, _content, _replayed, response in results:
        if status == 409:
            assert_error(response, 409, "request_in_progress")
    assert Gift.objects.count() == 1
    assert charges().count() == 1
    assert Email.objects.filter(kind=Email.Kind.GIFT_RECEIPT).count() == 1
    replay = MerchantClient(raw_key).post("gifts", params, idempotency_key="concurrent")
    assert (replay.status_code, replay.content) == (200, fresh[0])


# --- IDEM-4, IDEM-5, IDEM-6: scope, failures and crashes ----------------------------------------------------


def test_idem_4_two_api_keys_may_use_the_same_idempotency_key(gifter, offer):
    merchant_a, merchant_b = MerchantClient(), MerchantClient()
    params = gift_params(gifter, offer)

    answer_a = merchant_a.post("gifts", params, idempotency_key="order-1")
    answer_b = merchant_b.post("gifts", params, idempotency_key="order-1")

    assert answer_a.status_code == answer_b.status_code == 200
    assert REPLAYED_HEADER not in answer_a and REPLAYED_HEADER not in answer_b
    assert answer_a.json()["gift"]["id"] != answer_b.json()["gift"]["id"]
    assert Gift.objects.count() == 2
    assert charges().filter(status=Payment.Status.SUCCEEDED).count() == 2
    assert merchant_a.post("gifts", params, idempotency_key="order-1").content == answer_a.content
    assert merchant_b.post("gifts", params, idempotency_key="order-1").content == answer_b.content


def test_idem_5_a_request_that_failed_validation_leaves_its_key_free_for_the_corrected_one(api, gifter, offer):
    refused = api.post("gifts", gift_params(gifter, offer, **{"gift_receiver[email]": None}), idempotency_key="K5")
    assert_error(refused, 400, "param_wrong_value", param="gift_receiver[email]")
    assert not IdempotencyRecord.objects.exists()

    corrected = api.post("gifts", gift_params(gifter, offer), idempotency_key="K5")

    assert corrected.status_code == 200
    assert REPLAYED_HEADER not in corrected
    assert Gift.objects.count() == 1
    assert charges().count() == 1


def test_idem_5_a_malformed_recipient_email_is_refused_before_any_money_moves(api, gifter, offer):
    refused = api.post(
        "gifts", gift_params(gifter, offer, **{"gift_receiver[email]": "not-an-email"}), idempotency_key="K5b"
    )

    assert_error(refused, 400, "param_wrong_value", param="gift_receiver[email]")
    assert not charges().exists()
    corrected = api.post(
        "gifts", gift_params(gifter, offer, **{"gift_receiver[email]": "friend@example.com"}), idempotency_key="K5b"
    )
    assert corrected.status_code == 200
    assert charges().get().amount == Decimal("9.99")


class ProcessKilled(BaseException):
    """A crash: the process dies mid-request (SIGKILL, OOM), so no `except Exception` of the flow runs, unlike
    a failure the flow sees (that one refunds at once: billing/tests/test_refund_on_failure.py)."""


def crash_in_flight(api, *args, **kwargs):
    """Sends the request; the crash kills it. The idempotency record it started stays, as after a real crash."""
    with pytest.raises(ProcessKilled):
        api.post(*args, **kwargs)


def killed(**kwargs):
    raise ProcessKilled


def test_idem_6_a_crash_after_the_gift_insert_rolls_back_and_the_retry_creates_one_gift(gifter, offer, monkeypatch):
    api = MerchantClient(raise_request_exception=False)
    params = gift_params(gifter, offer)

    gifts_at_crash = []

    def crash(**kwargs):
        gifts_at_crash.append(Gift.objects.count())
        raise ProcessKilled

    with monkeypatch.context() as patch:
        patch.setattr(Transaction.objects, "create", crash)
        crash_in_flight(api, "gifts", params, idempotency_key="K6")

    assert gifts_at_crash == [1]  # the gift row was written in the transaction before the crash
    assert not Gift.objects.exists()
    assert not Subscription.objects.exists()
    retried = api.post("gifts", params, idempotency_key="K6")
    assert retried.status_code == 200
    assert REPLAYED_HEADER not in retried
    assert Gift.objects.count() == 1
    assert charges().count() == 1  # the retry reuses the first attempt's charge rather than charging again
    assert Transaction.objects.count() == 1
    assert Email.objects.filter(kind=Email.Kind.GIFT_RECEIPT).count() == 1


def test_idem_6_a_crashed_request_cannot_be_retried_with_another_body(gifter, offer, monkeypatch):
    api = MerchantClient(raise_request_exception=False)
    with monkeypatch.context() as patch:
        patch.setattr(Transaction.objects, "create", killed)
        crash_in_flight(api, "gifts", gift_params(gifter, offer), idempotency_key="K6b")

    other = api.post("gifts", gift_params(gifter, OfferFactory(price="50.00")), idempotency_key="K6b")

    assert_error(other, 422, "unable_to_process_request")
    assert not Gift.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_idem_6_concurrent_retries_of_a_crashed_request_take_it_over_once(monkeypatch):
    raw_key = new_api_key()
    params = gift_params(gifter_with_card(), OfferFactory())
    with monkeypatch.context() as patch:
        patch.setattr(Transaction.objects, "create", killed)
        crash_in_flight(MerchantClient(raw_key, raise_request_exception=False), "gifts", params, idempotency_key="K6c")

    def retry():
        response = MerchantClient(raw_key, raise_request_exception=False).post("gifts", params, idempotency_key="K6c")
        return response.status_code

    statuses = Counter(at_once([retry] * 10))

    assert set(statuses) <= {200, 409} and statuses[200] >= 1, statuses
    assert Gift.objects.count() == 1
    assert charges().count() == 1
    assert Transaction.objects.count() == 1


# --- IDEM-7: retention --------------------------------------------------------------------------------------


def test_idem_7_after_the_retention_window_a_key_is_reaped_and_runs_anew(api, gifter, offer):
    start = datetime(2030, 3, 1, 12, 0, tzinfo=UTC)
    params = gift_params(gifter, offer)
    with time_machine.travel(start, tick=False):
        first = api.post("gifts", params, idempotency_key="old")
    with time_machine.travel(start + timedelta(hours=23), tick=False):
        api.post("gifts", params, idempotency_key="recent")

    with time_machine.travel(start + timedelta(hours=24, minutes=1), tick=False):
        reaped = idempotency_reap()
        assert reaped == 1
        assert list(IdempotencyRecord.objects.values_list("key", flat=True)) == ["recent"]
        again = api.post("gifts", params, idempotency_key="old")

    assert again.status_code == 200
    assert REPLAYED_HEADER not in again
    assert again.json()["gift"]["id"] != first.json()["gift"]["id"]
    assert Gift.objects.count() == 3
    assert charges().filter(status=Payment.Status.SUCCEEDED).count() == 3


def test_idem_7_a_reaped_key_reused_with_another_request_buys_what_that_request_asks_for(api, gifter, offer):
    start = datetime(2030, 3, 1, 12, 0, tzinfo=UTC)
    yearly = OfferFactory(price="99.00", period="year")
    with time_machine.travel(start, tick=False):
        api.post("gifts", gift_params(gifter, offer), idempotency_key="reused")
    with time_machine.travel(start + timedelta(days=2), tick=False):
        idempotency_reap()
        again = api.post("gifts", gift_params(gifter, yearly), idempotency_key="reused")

    assert again.status_code == 200
    assert again.json()["invoice"]["total"] == 9900
    assert Gift.objects.filter(offer=yearly).count() == 1
    assert sorted(charges().values_list("amount", flat=True)) == [Decimal("9.99"), Decimal("99.00")]


def test_the_reaper_deletes_old_records_in_batches():
    owner, _raw = api_key_create(name="back office")
    now = timezone.now()
    IdempotencyRecord.objects.bulk_create(
        [
            IdempotencyRecord(api_key=owner, key=f"k{i}", method="POST", path="/api/v2/gifts", fingerprint="x")
            for i in range(7)
        ]
    )
    IdempotencyRecord.objects.filter(key__in=["k0", "k1", "k2", "k3", "k4"]).update(created_at=now - timedelta(days=2))

    assert idempotency_reap(now=now, batch_size=2) == 5
    assert sorted(IdempotencyRecord.objects.values_list("key", flat=True)) == ["k5", "k6"]


# --- IDEM-8, IDEM-9: malformed keys and reads ---------------------------------------------------------------


@pytest.mark.parametrize(
    "key",
    ["k" * 101, "", "line\r\nbreak", "new\nline", "tab\tkey", "schlüssel", "ключ", "key\x00nul"],
    ids=["101-chars", "empty", "crlf", "lf", "tab", "latin-1", "cyrillic", "nul"],
)
def test_idem_8_a_malformed_key_is_400_and_nothing_is_stored(key, gifter, offer):
    api = MerchantClient(raise_request_exception=False)

    response = api.post("gifts", gift_params(gifter, offer), idempotency_key=key)

    assert_error(response, 400, "param_wrong_value", param="chargebee-idempotency-key")
    assert not IdempotencyRecord.objects.exists()
    assert not Gift.objects.exists()
    assert not Payment.objects.exists()


def test_idem_8_a_key_of_exactly_100_printable_characters_is_accepted(api, gifter, offer):
    key = "".join(chr(33 + i % 94) for i in range(100))

    first = api.post("gifts", gift_params(gifter, offer), idempotency_key=key)
    second = api.post("gifts", gift_params(gifter, offer), idempotency_key=key)

    assert first.status_code == 200
    assert (second.content, second[REPLAYED_HEADER]) == (first.content, "true")
    assert Gift.objects.count() == 1


def test_idem_9_reads_ignore_the_key_header_and_store_nothing(api, gifter, offer):
    created = api.post("gifts", gift_params(gifter, offer))
    gift_id = created.json()["gift"]["id"]

    for path in ["gifts", f"gifts/{gift_id}", "customers", "plans", "invoices", "subscriptions"]:
        first = api.get(path, idempotency_key="read-key")
        second = api.get(path, idempotency_key="read-key")
        assert first.status_code == second.status_code == 200, path
        assert REPLAYED_HEADER not in first and REPLAYED_HEADER not in second
    assert api.get("gifts", idempotency_key="x" * 500).status_code == 200  # not even validated on reads
    assert not IdempotencyRecord.objects.exists()


# --- IDEM-10: claim -----------------------------------------------------------------------------------------


def test_idem_10_a_repeated_claim_replays_the_stored_answer_and_claims_once(api, gifter, offer):
    gift_id = api.post("gifts", gift_params(gifter, offer)).json()["gift"]["id"]
    services.deliver_due_gifts(now=timezone.now() + timedelta(seconds=1), send=False)

    first = api.post(f"gifts/{gift_id}/claim", idempotency_key="claim-1")
    second = api.post(f"gifts/{gift_id}/claim", idempotency_key="claim-1")

    assert first.status_code == 200
    assert first.json()["gift"]["status"] == "claimed"
    assert (second.status_code, second.content, second[REPLAYED_HEADER]) == (200, first.content, "true")
    assert GiftTimeline.objects.filter(gift_id=gift_id, status=GiftStatus.CLAIMED).count() == 1
    assert Subscription.objects.count() == 1
    assert Subscription.objects.get().status == Subscription.Status.NON_RENEWING
    assert Email.objects.filter(kind=Email.Kind.GIFT_REDEEMED).count() == 1
    without_key = api.post(f"gifts/{gift_id}/claim")
    assert_error(without_key, 409, "invalid_state_for_request")


def test_a_refused_claim_is_not_stored_so_the_key_works_once_the_gift_is_claimable(api, gifter, offer):
    gift_id = api.post("gifts", gift_params(gifter, offer)).json()["gift"]["id"]

    too_early = api.post(f"gifts/{gift_id}/claim", idempotency_key="claim-2")
    assert_error(too_early, 409, "invalid_state_for_request")
    services.deliver_due_gifts(now=timezone.now() + timedelta(seconds=1), send=False)

    assert api.post(f"gifts/{gift_id}/claim", idempotency_key="claim-2").status_code == 200


def test_a_repeated_cancel_replays_and_refunds_once(api, gifter, offer):
    gift_id = api.post("gifts", gift_params(gifter, offer)).json()["gift"]["id"]

    first = api.post(f"gifts/{gift_id}/cancel", idempotency_key="cancel-1")
    second = api.post(f"gifts/{gift_id}/cancel", idempotency_key="cancel-1")

    assert first.status_code == 200
    assert (second.content, second[REPLAYED_HEADER]) == (first.content, "true")
    assert Payment.objects.filter(kind=Payment.Kind.REFUND, status=Payment.Status.SUCCEEDED).count() == 1


# --- payment declines ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["decline-1", "d" * 100], ids=["short-key", "100-char-key"])
def test_a_payment_decline_is_stored_and_replayed_like_stripe(key, api, offer):
    declined = gifter_with_card("card_declined")
    params = gift_params(declined, offer)

    first = api.post("gifts", params, idempotency_key=key)
    second = api.post("gifts", params, idempotency_key=key)

    body = assert_error(first, 400, "payment_processing_failed")
    assert (body["type"], body["error_code"]) == ("payment", "card_declined")
    assert (second.status_code, second.content, second[REPLAYED_HEADER]) == (400, first.content, "true")
    assert REPLAYED_HEADER not in first
    assert charges().get().status == Payment.Status.FAILED  # the gateway was asked once
    assert not Gift.objects.exists()


def test_after_a_decline_a_new_key_charges_the_fixed_card(api, offer):
    gifter = gifter_with_card("card_declined")
    params = gift_params(gifter, offer)
    api.post("gifts", params, idempotency_key="attempt-1")
    gifter.payment_methods.update(token="tok_sandbox_success_fixedcard0001")

    retried = api.post("gifts", params, idempotency_key="attempt-2")

    assert retried.status_code == 200
    assert sorted(charges().values_list("status", flat=True)) == [Payment.Status.FAILED, Payment.Status.SUCCEEDED]


# --- authentication, permissions, rate limits ---------------------------------------------------------------


def test_a_read_only_key_may_read_but_not_write(gifter, offer):
    read_only = MerchantClient(new_api_key(kind="read_only"))

    assert read_only.get("gifts").status_code == 200
    refused = read_only.post("gifts", gift_params(gifter, offer), idempotency_key="ro")
    assert_error(refused, 403, "api_authorization_failed")
    assert not Gift.objects.exists()
    assert not IdempotencyRecord.objects.exists()


@pytest.mark.parametrize("method", ["get", "post"])
@pytest.mark.parametrize(
    "authorization",
    [None, basic_auth("gs_live_not-a-key"), "Basic !!!", "Bearer gs_live_x", basic_auth("")],
    ids=["missing", "unknown-key", "bad-base64", "bearer", "empty-username"],
)
def test_a_missing_or_wrong_key_is_401(method, authorization, gifter, offer):
    api = MerchantClient("")
    headers = {"HTTP_AUTHORIZATION": authorization} if authorization else {}

    if method == "get":
        response = api.client.get("/api/v2/gifts", **headers)
    else:
        response = api.client.post(
            "/api/v2/gifts",
            "subscription[plan_id]=x",
            content_type="application/x-www-form-urlencoded",
            HTTP_CHARGEBEE_IDEMPOTENCY_KEY="unauthenticated",
            **headers,
        )

    assert_error(response, 401, "api_authentication_failed")
    assert response["WWW-Authenticate"].startswith("Basic")
    assert not IdempotencyRecord.objects.exists()


def test_a_revoked_key_is_401():
    api = MerchantClient()
    ApiKey.objects.update(revoked_at=timezone.now())

    assert_error(api.get("gifts"), 401, "api_authentication_failed")


def test_the_fourth_request_in_a_minute_is_429_with_retry_after(settings):
    settings.MERCHANT_API_RATE_LIMIT = 3
    api, other = MerchantClient(), MerchantClient()

    with time_machine.travel(datetime(2030, 3, 1, 12, 0, 15, tzinfo=UTC), tick=False):
        assert [api.get("gifts").status_code for _ in range(3)] == [200, 200, 200]
        limited = api.get("gifts")
        assert other.get("gifts").status_code == 200  # the limit is per key

    assert_error(limited, 429, "api_request_limit_exceeded")
    assert limited["Retry-After"] == "45"
    with time_machine.travel(datetime(2030, 3, 1, 12, 1, 0, tzinfo=UTC), tick=False):
        assert api.get("gifts").status_code == 200  # a new minute, a new window
