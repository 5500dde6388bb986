"""POST /api/v2/gifts and friends at the HTTP level (Chargebee API v2 contract): the date rules, the site's
defaults, unknown and refused references, the state rules of update, claim and cancel, the money and the terms
a gift moves, list filters and pages, and the shape of every answer."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from urllib.parse import urlencode

import pytest
import time_machine
from dateutil.relativedelta import relativedelta

from accounts.models import Customer, Subscription, Transaction
from billing.models import Invoice, Payment
from gifts import services
from gifts.models import Gift, GiftStatus
from gifts.tests.factories import GiftFactory, GuestFactory
from gifts.tests.merchant import (
    MerchantClient,
    assert_error,
    assert_every_object_is_typed,
    gift_params,
    gifter_with_card,
)
from giftshop.models import SiteSettings
from offers.tests.factories import AddonFactory, CouponFactory, OfferFactory

pytestmark = pytest.mark.django_db
# A fixed "now" keeps terms and dates exact; gifts are scheduled relative to it.
NOW = datetime(2030, 3, 10, 12, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _frozen_time():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def api():
    return MerchantClient()


@pytest.fixture
def gifter():
    return gifter_with_card()


@pytest.fixture
def offer():
    return OfferFactory(price="9.99", period="month", currency="USD")


def ts(when):
    return int(when.timestamp())


def at(seconds):
    return datetime.fromtimestamp(seconds, tz=UTC)


def buy(api, gifter, offer, **extra):
    response = api.post("gifts", gift_params(gifter, offer, **extra))
    assert response.status_code == 200, response.content
    return response.json()


def deliver(until):
    with time_machine.travel(until, tick=False):
        services.deliver_due_gifts(send=False)


def status_of(gift_id):
    return Gift.objects.get(pk=gift_id).status


# --- dates and defaults -------------------------------------------------------------------------------------


def test_a_claim_expiry_date_must_come_after_the_delivery(api, gifter, offer):
    scheduled = ts(NOW + timedelta(days=3))

    for expiry in (scheduled, scheduled - 60):
        response = api.post("gifts", gift_params(gifter, offer, scheduled_at=scheduled, claim_expiry_date=expiry))
        assert_error(response, 400, "param_wrong_value", param="claim_expiry_date")

    assert not Gift.objects.exists()
    assert not Payment.objects.exists()  # refused before any money moved


@pytest.mark.parametrize("flag", ["auto_claim", "no_expiry"])
def test_a_claim_expiry_date_cannot_come_with_auto_claim_or_no_expiry(flag, api, gifter, offer):
    expiry = ts(NOW + timedelta(days=30))

    response = api.post("gifts", gift_params(gifter, offer, claim_expiry_date=expiry, **{flag: "true"}))

    assert_error(response, 400, "param_wrong_value", param="claim_expiry_date")
    assert not Payment.objects.exists()


def test_auto_claim_and_no_expiry_together_are_refused(api, gifter, offer):
    response = api.post("gifts", gift_params(gifter, offer, auto_claim="true", no_expiry="true"))

    assert_error(response, 400, "param_wrong_value", param="no_expiry")


def test_a_boolean_must_be_true_or_false(api, gifter, offer):
    assert_error(
        api.post("gifts", gift_params(gifter, offer, auto_claim="yes")), 400, "param_wrong_value", param="auto_claim"
    )


def test_a_chosen_claim_expiry_date_is_kept(api, gifter, offer):
    scheduled, expiry = ts(NOW + timedelta(days=3)), ts(NOW + timedelta(days=40))

    gift = buy(api, gifter, offer, scheduled_at=scheduled, claim_expiry_date=expiry)["gift"]

    assert (gift["scheduled_at"], gift["claim_expiry_date"]) == (scheduled, expiry)
    assert (gift["auto_claim"], gift["no_expiry"]) == (False, False)


def test_without_choices_the_site_settings_decide_claim_expiry(api, gifter, offer):
    SiteSettings.objects.update_or_create(pk=1, defaults={"default_auto_claim": False, "default_claim_expiry_days": 30})
    scheduled = ts(NOW + timedelta(days=3))

    gift = buy(api, gifter, offer, scheduled_at=scheduled)["gift"]

    assert (gift["auto_claim"], gift["no_expiry"]) == (False, False)
    assert gift["claim_expiry_date"] == scheduled + 30 * 86400


def test_a_site_without_a_claim_expiry_period_gives_gifts_that_never_expire(api, gifter, offer):
    SiteSettings.objects.update_or_create(pk=1, defaults={"default_claim_expiry_days": None})

    gift = buy(api, gifter, offer)["gift"]

    assert (gift["auto_claim"], gift["no_expiry"]) == (False, True)
    assert "claim_expiry_date" not in gift


def test_a_site_that_auto_claims_makes_auto_claim_the_default_and_the_request_can_override_it(api, gifter, offer):
    SiteSettings.objects.update_or_create(pk=1, defaults={"default_auto_claim": True, "default_claim_expiry_days": 30})

    by_default = buy(api, gifter, offer)["gift"]
    overridden = buy(api, gifter, offer, auto_claim="false")["gift"]

    assert (by_default["auto_claim"], "claim_expiry_date" in by_default) == (True, False)
    assert (overridden["auto_claim"], overridden["claim_expiry_date"]) == (False, ts(NOW) + 30 * 86400)


def test_a_delivery_time_in_the_past_means_now(api, gifter, offer):
    gift = buy(api, gifter, offer, scheduled_at=ts(NOW - timedelta(days=2)))["gift"]

    assert gift["scheduled_at"] == ts(NOW)


@pytest.mark.parametrize("value", ["tomorrow", "-5", "99999999999"])
def test_a_malformed_timestamp_is_400(value, api, gifter, offer):
    response = api.post("gifts", gift_params(gifter, offer, scheduled_at=value))

    assert_error(response, 400, "param_wrong_value", param="scheduled_at")


# --- references ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "status", "param"),
    [
        ({"subscription[plan_id]": "S999999999"}, 404, "subscription[plan_id]"),
        ({"subscription[plan_id]": "nonsense"}, 404, "subscription[plan_id]"),
        ({"subscription[plan_id]": None}, 400, "subscription[plan_id]"),
        ({"gifter[customer_id]": "999999999"}, 404, "gifter[customer_id]"),
        ({"gifter[customer_id]": "abc"}, 404, "gifter[customer_id]"),
        ({"gifter[customer_id]": None}, 400, "gifter[customer_id]"),
        ({"gift_receiver[customer_id]": "999999999"}, 404, "gift_receiver[customer_id]"),
        ({"gifter[payment_src_id]": "pm_999999999"}, 404, "gifter[payment_src_id]"),
        ({"addons[id][0]": "no-such-addon"}, 404, "addons[id][0]"),
        ({"coupon_ids[0]": "NO-SUCH-COUPON"}, 400, "coupon_ids[0]"),
        ({"subscription[plan_quantity]": "2"}, 400, "subscription[plan_quantity]"),
        ({"gift_receiver[email]": "not-an-email"}, 400, "gift_receiver[email]"),
        ({"gift_receiver[first_name]": "Rita\r\nBcc: x@example.com"}, 400, "gift_receiver[first_name]"),
        ({"gifter[note]": "n" * 1000}, 400, "gifter[note]"),
    ],
)
def test_an_unknown_or_invalid_reference_names_the_param_and_charges_nothing(change, status, param, api, gifter, offer):
    response = api.post("gifts", gift_params(gifter, offer, **change))

    assert_error(response, status, "resource_not_found" if status == 404 else "param_wrong_value", param=param)
    assert not Gift.objects.exists()
    assert not Payment.objects.exists()


def test_another_customers_card_cannot_pay(api, gifter, offer):
    stranger = gifter_with_card()

    response = api.post(
        "gifts", gift_params(gifter, offer, **{"gifter[payment_src_id]": f"pm_{stranger.payment_methods.get().pk}"})
    )

    assert_error(response, 404, "resource_not_found", param="gifter[payment_src_id]")


def test_a_plan_that_is_not_giftable_or_not_on_sale_is_400(api, gifter):
    for plan in (OfferFactory(giftable=False), OfferFactory(period="week", giftable=False), OfferFactory(active=False)):
        response = api.post("gifts", gift_params(gifter, plan))
        assert_error(response, 400, "param_wrong_value", param="subscription[plan_id]")
    assert not Payment.objects.exists()


def test_an_addon_of_another_plan_or_an_inactive_one_is_refused(api, gifter, offer):
    other_plans = AddonFactory(code="mug")
    other_plans.offers.add(OfferFactory())
    AddonFactory(code="retired", active=False)

    for code in ("mug", "retired"):
        response = api.post("gifts", gift_params(gifter, offer, **{"addons[id][0]": code}))
        assert_error(response, 400, "param_wrong_value")
    assert not Payment.objects.exists()


def test_a_gifter_without_a_card_gets_a_payment_error(api, offer):
    response = api.post("gifts", gift_params(GuestFactory(), offer))

    body = assert_error(response, 400, "payment_processing_failed")
    assert (body["type"], body["error_code"]) == ("payment", "payment_method_not_present")


def test_a_receiver_given_by_customer_id_gets_the_future_subscription(api, gifter, offer):
    receiver = Customer.objects.create_user("rita@example.com", first_name="Rita")

    body = buy(api, gifter, offer, **{"gift_receiver[customer_id]": receiver.pk, "gift_receiver[email]": None})

    assert body["gift"]["gift_receiver"]["customer_id"] == str(receiver.pk)
    assert body["gift"]["gift_receiver"]["email"] == "rita@example.com"
    assert body["subscription"]["customer_id"] == str(receiver.pk)


# --- money and terms ----------------------------------------------------------------------------------------


def test_a_purchase_charges_the_gifter_and_answers_in_minor_units(api, gifter):
    offer = OfferFactory(price="19.99", period="year")
    AddonFactory(code="card", price="2.50")
    CouponFactory(code="TEN", percent_off="10")

    body = buy(api, gifter, offer, **{"addons[id][0]": "card", "addons[quantity][0]": "2", "coupon_ids[0]": "TEN"})

    invoice = body["invoice"]
    assert (invoice["sub_total"], invoice["total"], invoice["amount_paid"]) == (2499, 2249, 2249)
    assert all(isinstance(invoice[k], int) for k in ("sub_total", "total", "amount_paid", "amount_due", "tax"))
    assert [(line["entity_type"], line["amount"]) for line in invoice["line_items"]] == [("plan", 1999), ("addon", 500)]
    assert body["subscription"]["plan_unit_price"] == 1999
    assert invoice["customer_id"] == str(gifter.pk)
    assert (invoice["is_gifted"], invoice["term_finalized"]) == (True, False)
    payment = Payment.objects.get()
    assert (payment.kind, payment.status, payment.amount) == ("charge", "succeeded", Decimal("22.49"))
    ledger = Transaction.objects.get()
    assert (ledger.customer, ledger.amount, ledger.target_type, ledger.target_id) == (
        gifter,
        Decimal("22.49"),
        "giftId",
        body["gift"]["id"],
    )


def test_a_zero_decimal_currency_is_not_multiplied(api, gifter):
    offer = OfferFactory(price="1200", currency="JPY")

    assert buy(api, gifter, offer)["invoice"]["total"] == 1200


def test_the_future_subscription_runs_one_plan_period_from_the_delivery(api, gifter, offer):
    scheduled = NOW + timedelta(days=3)

    body = buy(api, gifter, offer, scheduled_at=ts(scheduled))

    subscription = body["subscription"]
    assert subscription["status"] == "future"
    assert (subscription["current_term_start"], subscription["current_term_end"]) == (
        ts(scheduled),
        ts(scheduled + relativedelta(months=1)),
    )
    assert body["gift"]["gift_receiver"]["subscription_id"] == subscription["id"]
    assert body["gift"]["status"] == "scheduled"
    assert [t["status"] for t in body["gift"]["gift_timelines"]] == ["scheduled"]


def test_a_claim_restarts_the_term_at_the_claim_and_finalises_the_invoice(api, gifter, offer):
    body = buy(api, gifter, offer, scheduled_at=ts(NOW + timedelta(days=3)))
    gift_id, invoice_id = body["gift"]["id"], body["invoice"]["id"]
    deliver(NOW + timedelta(days=3))
    claimed_at = NOW + timedelta(days=5, hours=2)

    with time_machine.travel(claimed_at, tick=False):
        claimed = api.post(f"gifts/{gift_id}/claim")

    assert claimed.status_code == 200
    subscription = claimed.json()["subscription"]
    assert subscription["status"] == "non_renewing"
    assert (subscription["current_term_start"], subscription["current_term_end"]) == (
        ts(claimed_at),
        ts(claimed_at + relativedelta(months=1)),
    )
    assert [t["status"] for t in claimed.json()["gift"]["gift_timelines"]] == ["scheduled", "unclaimed", "claimed"]
    assert api.get(f"invoices/{invoice_id}").json()["invoice"]["term_finalized"] is True
    assert Invoice.objects.get().term_finalized is True


def test_expiry_cancels_the_future_subscription(api, gifter, offer):
    expiry = NOW + timedelta(days=10)
    gift_id = buy(api, gifter, offer, claim_expiry_date=ts(expiry))["gift"]["id"]
    deliver(NOW + timedelta(seconds=1))

    assert services.expire_due_gifts(now=expiry - timedelta(seconds=1)) == 0
    assert services.expire_due_gifts(now=expiry) == 1

    body = api.get(f"gifts/{gift_id}").json()
    assert body["gift"]["status"] == "expired"
    assert body["subscription"]["status"] == "cancelled"
    assert Subscription.objects.get().status == Subscription.Status.CANCELLED


# --- claim, cancel, update: allowed states ------------------------------------------------------------------


def test_only_an_unclaimed_gift_can_be_claimed(api, gifter, offer):
    gift_id = buy(api, gifter, offer, scheduled_at=ts(NOW + timedelta(days=1)))["gift"]["id"]

    assert_error(api.post(f"gifts/{gift_id}/claim"), 409, "invalid_state_for_request")
    deliver(NOW + timedelta(days=1))
    assert api.post(f"gifts/{gift_id}/claim").status_code == 200
    assert_error(api.post(f"gifts/{gift_id}/claim"), 409, "invalid_state_for_request")
    assert_error(api.post("gifts/999999999/claim"), 404, "resource_not_found")


def test_cancelling_refunds_the_gifter_in_full(api, gifter, offer):
    body = buy(api, gifter, offer)
    gift_id = body["gift"]["id"]

    cancelled = api.post(f"gifts/{gift_id}/cancel")

    assert cancelled.status_code == 200
    assert cancelled.json()["gift"]["status"] == "cancelled"
    assert cancelled.json()["subscription"]["status"] == "cancelled"
    invoice = Invoice.objects.get()
    assert invoice.amount_refunded == invoice.total == Decimal("9.99")
    refund = Payment.objects.get(kind=Payment.Kind.REFUND)
    assert (refund.status, refund.amount, refund.invoice) == (Payment.Status.SUCCEEDED, Decimal("9.99"), invoice)
    ledger = Transaction.objects.get(kind=Transaction.Kind.REFUND)
    assert (ledger.customer, ledger.amount, ledger.target_id) == (gifter, Decimal("9.99"), gift_id)
    assert api.get(f"invoices/{body['invoice']['id']}").json()["invoice"]["amount_refunded"] == 999


def test_an_unclaimed_gift_can_be_cancelled(api, gifter, offer):
    gift_id = buy(api, gifter, offer)["gift"]["id"]
    deliver(NOW + timedelta(seconds=1))

    assert api.post(f"gifts/{gift_id}/cancel").status_code == 200
    assert status_of(gift_id) == GiftStatus.CANCELLED


def test_a_claimed_expired_or_cancelled_gift_cannot_be_cancelled(api, gifter, offer):
    claimed = buy(api, gifter, offer)["gift"]["id"]
    expired = buy(api, gifter, offer, claim_expiry_date=ts(NOW + timedelta(days=1)))["gift"]["id"]
    cancelled = buy(api, gifter, offer)["gift"]["id"]
    deliver(NOW + timedelta(seconds=1))
    api.post(f"gifts/{claimed}/claim")
    services.expire_due_gifts(now=NOW + timedelta(days=2))
    api.post(f"gifts/{cancelled}/cancel")

    for gift_id, status in ((claimed, "claimed"), (expired, "expired"), (cancelled, "cancelled")):
        assert status_of(gift_id) == status
        assert_error(api.post(f"gifts/{gift_id}/cancel"), 409, "invalid_state_for_request")
    assert Payment.objects.filter(kind=Payment.Kind.REFUND).count() == 1  # the one real cancellation
    assert Invoice.objects.filter(amount_refunded__gt=0).count() == 1


def test_update_gift_changes_a_scheduled_gift(api, gifter, offer):
    gift_id = buy(api, gifter, offer, scheduled_at=ts(NOW + timedelta(days=3)))["gift"]["id"]
    later = NOW + timedelta(days=4)

    response = api.post(
        f"gifts/{gift_id}/update_gift",
        {"scheduled_at": ts(later), "comment": "a day later", "gift_receiver[email]": "New@Example.com"},
    )

    assert response.status_code == 200
    body = response.json()
    assert (body["gift"]["scheduled_at"], body["gift"]["gift_receiver"]["email"]) == (ts(later), "new@example.com")
    assert body["subscription"]["current_term_start"] == ts(later)
    assert body["subscription"]["current_term_end"] == ts(later + relativedelta(months=1))
    assert_every_object_is_typed(body)


@pytest.mark.parametrize(
    "scheduled_at",
    [NOW - timedelta(hours=1), NOW, NOW + timedelta(days=20), NOW + timedelta(days=30)],
    ids=["past", "now", "at-claim-expiry", "after-claim-expiry"],
)
def test_update_gift_needs_a_delivery_in_the_future_and_before_the_claim_expiry(scheduled_at, api, gifter, offer):
    gift_id = buy(
        api, gifter, offer, scheduled_at=ts(NOW + timedelta(days=3)), claim_expiry_date=ts(NOW + timedelta(days=20))
    )["gift"]["id"]

    response = api.post(f"gifts/{gift_id}/update_gift", {"scheduled_at": ts(scheduled_at)})

    assert_error(response, 400, "param_wrong_value", param="scheduled_at")
    assert Gift.objects.get().scheduled_at == NOW + timedelta(days=3)


def test_update_gift_refuses_a_gift_that_is_no_longer_scheduled(api, gifter, offer):
    gift_id = buy(api, gifter, offer)["gift"]["id"]
    deliver(NOW + timedelta(seconds=1))

    response = api.post(f"gifts/{gift_id}/update_gift", {"gift_receiver[email]": "late@example.com"})

    assert_error(response, 409, "invalid_state_for_request")
    assert Gift.objects.get().recipient_email == "friend@example.com"


def test_update_gift_validates_the_new_email(api, gifter, offer):
    gift_id = buy(api, gifter, offer, scheduled_at=ts(NOW + timedelta(days=3)))["gift"]["id"]

    response = api.post(f"gifts/{gift_id}/update_gift", {"gift_receiver[email]": "nope"})

    assert_error(response, 400, "param_wrong_value", param="gift_receiver[email]")


# --- lists --------------------------------------------------------------------------------------------------


@pytest.fixture
def listed():
    """Four gifts of two gifters, one in each state but claimed (newest last)."""
    ann, ben = GuestFactory(), GuestFactory()
    gifts = {
        "scheduled": GiftFactory(gifter=ann, recipient_email="alice@example.com"),
        "unclaimed": GiftFactory(gifter=ann, recipient_email="bob@example.com", status=GiftStatus.UNCLAIMED),
        "cancelled": GiftFactory(
            gifter=ben, recipient_email="carol@example.com", status=GiftStatus.CANCELLED, cancelled_at=NOW
        ),
        "expired": GiftFactory(
            gifter=ben, recipient_email="alice.b@example.com", status=GiftStatus.EXPIRED, expired_at=NOW
        ),
    }
    return ann, ben, {state: str(gift.pk) for state, gift in gifts.items()}


def ids_of(response):
    assert response.status_code == 200, response.content
    return [entry["gift"]["id"] for entry in response.json()["list"]]


def test_status_filters_accept_every_list_notation(api, listed):
    _ann, _ben, g = listed
    newest_first = lambda *states: sorted((g[s] for s in states), key=int, reverse=True)  # noqa: E731

    assert ids_of(api.get("gifts", {"status[is]": "scheduled"})) == [g["scheduled"]]
    assert ids_of(api.get("gifts", {"status[is_not]": "scheduled"})) == newest_first(
        "unclaimed", "cancelled", "expired"
    )
    for notation in ("[scheduled,unclaimed]", '["scheduled", "unclaimed"]', "['scheduled', 'unclaimed']"):
        assert ids_of(api.get("gifts", {"status[in]": notation})) == newest_first("scheduled", "unclaimed"), notation
    for notation in ("[cancelled,expired]", '["cancelled","expired"]', "['cancelled','expired']"):
        assert ids_of(api.get("gifts", {"status[not_in]": notation})) == newest_first("scheduled", "unclaimed")


def test_receiver_email_and_gifter_filters(api, listed):
    ann, ben, g = listed

    assert ids_of(api.get("gifts", {"gift_receiver[email][is]": "bob@example.com"})) == [g["unclaimed"]]
    assert g["unclaimed"] not in ids_of(api.get("gifts", {"gift_receiver[email][is_not]": "bob@example.com"}))
    assert set(ids_of(api.get("gifts", {"gift_receiver[email][starts_with]": "alice"}))) == {
        g["scheduled"],
        g["expired"],
    }
    assert set(ids_of(api.get("gifts", {"gifter[customer_id][is]": ann.pk}))) == {g["scheduled"], g["unclaimed"]}
    assert set(ids_of(api.get("gifts", {"gifter[customer_id][in]": f"[{ann.pk},{ben.pk}]"}))) == set(g.values())
    assert ids_of(api.get("gifts", {"gifter[customer_id][is]": ben.pk, "status[is]": "expired"})) == [g["expired"]]


@pytest.mark.parametrize(
    "query",
    [
        {"status[is]": "lost"},
        {"status[in]": "[scheduled,lost]"},
        {"status[in]": "scheduled"},
        {"status[bigger_than]": "x"},
        {"status": "scheduled"},
        {"gift_receiver[email][contains]": "a"},
    ],
)
def test_a_malformed_filter_is_400(query, api):
    assert_error(api.get("gifts", query), 400, "param_wrong_value")


def test_limit_is_1_to_100_and_defaults_to_10(api):
    GiftFactory.create_batch(12)

    assert len(ids_of(api.get("gifts"))) == 10
    assert "next_offset" in api.get("gifts").json()
    assert len(ids_of(api.get("gifts", {"limit": 1}))) == 1
    assert len(ids_of(api.get("gifts", {"limit": 100}))) == 12
    assert "next_offset" not in api.get("gifts", {"limit": 100}).json()
    for limit in ("0", "101", "-1", "ten"):
        assert_error(api.get("gifts", {"limit": limit}), 400, "param_wrong_value", param="limit")
    assert_error(api.get("gifts", {"offset": "not-an-offset"}), 400, "param_wrong_value", param="offset")


def test_next_offset_walks_every_gift_exactly_once(api):
    every = {str(gift.pk) for gift in GiftFactory.create_batch(23)}
    seen, pages, params = [], [], {"limit": 5}

    while True:
        body = api.get("gifts", params).json()
        pages.append(len(body["list"]))
        seen += [entry["gift"]["id"] for entry in body["list"]]
        if "next_offset" not in body:
            break
        params = {"limit": 5, "offset": body["next_offset"]}

    assert pages == [5, 5, 5, 5, 3]
    assert sorted(seen, key=int) == sorted(every, key=int)
    assert seen == sorted(seen, key=int, reverse=True)


def test_a_gift_made_between_pages_neither_repeats_nor_shifts_the_walk(api):
    first_batch = GiftFactory.create_batch(4)
    page = api.get("gifts", {"limit": 2}).json()
    GiftFactory()  # newer than every listed gift

    rest = api.get("gifts", {"limit": 10, "offset": page["next_offset"]}).json()

    walked = [e["gift"]["id"] for e in page["list"] + rest["list"]]
    assert sorted(walked, key=int) == sorted((str(g.pk) for g in first_batch), key=int)


# --- the shape of every answer ------------------------------------------------------------------------------


def test_every_object_in_every_answer_has_an_object_key(api, gifter, offer):
    AddonFactory(code="bow", price="1.00")
    CouponFactory(code="FIVE", percent_off="5")
    created = buy(api, gifter, offer, **{"addons[id][0]": "bow", "coupon_ids[0]": "FIVE", "gifter[note]": "Hi"})
    gift_id = created["gift"]["id"]
    other_id = buy(api, gifter, offer)["gift"]["id"]
    deliver(NOW + timedelta(seconds=1))

    answers = [
        created,
        api.get(f"gifts/{gift_id}").json(),
        api.get("gifts").json(),
        api.post(f"gifts/{gift_id}/claim").json(),
        api.post(f"gifts/{other_id}/cancel").json(),
        api.get("gifts", {"limit": 1}).json(),
        api.get(f"invoices/{created['invoice']['id']}").json(),
        api.get("invoices").json(),
        api.get(f"subscriptions/{created['subscription']['id']}").json(),
        api.get("subscriptions").json(),
        api.get(f"customers/{gifter.pk}").json(),
        api.get("customers").json(),
        api.get(f"plans/{offer.long_id}").json(),
        api.get("plans").json(),
    ]

    for answer in answers:
        assert_every_object_is_typed(answer)
    assert created["gift"]["object"] == "gift"
    assert created["subscription"]["object"] == "subscription"
    assert created["invoice"]["object"] == "invoice"


@pytest.mark.parametrize("path", ["nope", "gifts/1/explode", "gifts/1/claim/again", "v3/gifts", ""])
def test_an_unknown_path_is_a_json_404(path, api):
    for response in (api.get(path), api.post(path), MerchantClient("").get(path)):
        assert_error(response, 404, "resource_not_found")


@pytest.mark.parametrize(
    "path",
    ["gifts/abc", "gifts/999999999", "gifts/-1", "invoices/999999999", "subscriptions/x", "customers/0", "plans/S1"],
)
def test_an_unknown_resource_is_a_json_404_naming_the_id(path, api):
    assert_error(api.get(path), 404, "resource_not_found", param="id")


@pytest.mark.parametrize("action", ["claim", "cancel", "update_gift"])
def test_acting_on_an_unknown_gift_is_a_json_404(action, api):
    assert_error(api.post(f"gifts/999999999/{action}"), 404, "resource_not_found", param="id")


@pytest.mark.parametrize(
    ("method", "path"),
    [("delete", "gifts"), ("put", "gifts"), ("get", "gifts/1/claim"), ("get", "gifts/1/cancel"), ("patch", "gifts/1")],
)
def test_a_wrong_method_is_a_json_405(method, path, api):
    response = getattr(api.client, method)(f"/api/v2/{path}", **api.headers())

    assert_error(response, 405, "http_method_not_supported")


def test_a_json_body_is_accepted_too(api, gifter, offer):
    response = api.client.post(
        "/api/v2/gifts",
        {
            "gifter": {"customer_id": str(gifter.pk)},
            "gift_receiver": {"email": "json@example.com"},
            "subscription": {"plan_id": offer.long_id},
        },
        content_type="application/json",
        **api.headers(),
    )

    assert response.status_code == 200, response.content
    assert response.json()["gift"]["gift_receiver"]["email"] == "json@example.com"


@pytest.mark.parametrize("flat_first", [True, False])
def test_a_param_that_is_both_a_value_and_a_group_is_400(flat_first, api, gifter, offer):
    grouped = list(gift_params(gifter, offer).items())
    items = [("gifter", "flat"), *grouped] if flat_first else [*grouped, ("gifter", "flat")]

    response = api.client.post(
        "/api/v2/gifts", urlencode(items), content_type="application/x-www-form-urlencoded", **api.headers()
    )

    assert_error(response, 400, "param_wrong_value")
    assert not Payment.objects.exists()


@pytest.mark.parametrize("name", ["gifter", "gift_receiver", "subscription", "addons"])
def test_a_plain_value_where_a_group_belongs_is_400(name, api, gifter, offer):
    params = {k: v for k, v in gift_params(gifter, offer).items() if not k.startswith(f"{name}[")}

    response = api.post("gifts", {**params, name: "flat"})

    assert_error(response, 400, "param_wrong_value", param=name)
    assert not Payment.objects.exists()


@pytest.mark.parametrize(
    "nested",
    [
        "subscription[plan_id][0]",
        "gift_receiver[email][x]",
        "gifter[signature][0]",
        "gifter[customer_id][is]",
        "coupon_ids[0][code]",
        "addons[id][0][code]",
    ],
)
def test_a_group_where_a_single_value_belongs_is_400(nested, api, gifter, offer):
    name = nested.split("[")[0]
    field = nested.split("[")[1].rstrip("]")
    params = {k: v for k, v in gift_params(gifter, offer).items() if not k.startswith(f"{name}[{field}]")}

    response = api.post("gifts", {**params, nested: "x"})

    assert_error(response, 400, "param_wrong_value")
    assert not Payment.objects.exists()


def test_update_gift_refuses_a_plain_value_where_gift_receiver_belongs(api, gifter, offer):
    gift_id = buy(api, gifter, offer, scheduled_at=ts(NOW + timedelta(days=3)))["gift"]["id"]

    response = api.post(f"gifts/{gift_id}/update_gift", {"gift_receiver": "flat"})

    assert_error(response, 400, "param_wrong_value", param="gift_receiver")


@pytest.mark.parametrize("body", ["[1, 2]", '"text"', "{not json"])
def test_a_json_body_that_is_not_an_object_is_400(body, api):
    response = api.client.post("/api/v2/gifts", body, content_type="application/json", **api.headers())

    assert_error(response, 400, "param_wrong_value")
