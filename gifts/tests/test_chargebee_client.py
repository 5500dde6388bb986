"""Chargebee's own Python client, pointed at a live server of ours, drives the gift lifecycle."""

from datetime import timedelta

import chargebee
import pytest
from chargebee import Chargebee
from django.utils import timezone

from gifts import services
from giftshop.services import api_key_create
from offers.tests.factories import AddonFactory, CouponFactory, OfferFactory

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def cb(live_server, monkeypatch):
    _, raw = api_key_create(name="back office")
    monkeypatch.setattr(Chargebee, "verify_ca_certs", False)
    client = Chargebee(api_key=raw, site="giftshop")
    client.env.protocol = "http"
    client.env.api_endpoint = f"{live_server.url}/api/v2"
    return client


def _customer(cb, email, card="4242424242424242"):
    customer = cb.Customer.create({"email": email, "first_name": "Gina", "last_name": "Gifter"}).customer
    if card:
        cb.PaymentSource.create_card(
            {"customer_id": customer.id, "card": {"number": card, "expiry_month": 12, "expiry_year": 2030}}
        )
    return customer


def test_the_official_client_creates_reads_lists_claims_cancels_and_updates_gifts(cb):
    OfferFactory(short_id="S222222222", period="year", price="99.99", giftable=True)
    AddonFactory(code="printed-card", price="2.50")
    CouponFactory(code="XMAS10", percent_off="10")
    gifter = _customer(cb, "gifter@example.com")
    receiver = _customer(cb, "receiver@example.com", card=None)
    scheduled = int((timezone.now() + timedelta(days=3)).timestamp())

    created = cb.Gift.create(
        {
            "scheduled_at": scheduled,
            "gifter": {"customer_id": gifter.id, "signature": "Gina", "note": "Enjoy!"},
            "gift_receiver": {
                "customer_id": receiver.id,
                "first_name": "Rita",
                "last_name": "Receiver",
                "email": "receiver@example.com",
            },
            "subscription": {"plan_id": "S222222222"},
            "addons": [{"id": "printed-card", "quantity": 2}],
            "coupon_ids": ["XMAS10"],
        }
    )
    gift, subscription, invoice = created.gift, created.subscription, created.invoice
    assert gift.status == "scheduled" and gift.scheduled_at == scheduled
    assert gift.gifter.customer_id == gifter.id and gift.gift_receiver.email == "receiver@example.com"
    assert subscription.status == "future" and subscription.customer_id == receiver.id
    assert subscription.current_term_end - subscription.current_term_start >= 365 * 86400
    assert invoice.is_gifted is True and invoice.term_finalized is False
    assert invoice.total == 9449  # (99.99 + 2 x 2.50) - 10 % = 94.49, in cents
    assert [line.entity_type for line in invoice.line_items] == ["plan", "addon"]

    assert cb.Gift.retrieve(gift.id).gift.id == gift.id
    listed = cb.Gift.list({"status[is]": "scheduled", "gifter[customer_id][is]": gifter.id})
    assert [entry.gift.id for entry in listed.list] == [gift.id]
    assert cb.Gift.list({"status[in]": "['claimed', 'expired']"}).list == []
    assert cb.Gift.list({"gift_receiver[email][starts_with]": "receiver@"}).list[0].gift.id == gift.id

    later = scheduled + 86400
    updated = cb.Gift.update_gift(gift.id, {"scheduled_at": later, "comment": "a day later"}).gift
    assert updated.scheduled_at == later

    with pytest.raises(chargebee.InvalidRequestError) as refused:  # only unclaimed gifts can be claimed
        cb.Gift.claim(gift.id)
    assert refused.value.api_error_code == "invalid_state_for_request" and refused.value.http_status_code == 409

    services.deliver_due_gifts(now=timezone.now() + timedelta(days=5), send=False)
    claimed = cb.Gift.claim(gift.id)
    assert claimed.gift.status == "claimed"
    assert claimed.subscription.status == "non_renewing"
    assert abs(claimed.subscription.current_term_start - int(timezone.now().timestamp())) < 60
    assert cb.Invoice.retrieve(invoice.id).invoice.term_finalized is True

    second = cb.Gift.create(
        {
            "gifter": {"customer_id": gifter.id, "signature": "G"},
            "gift_receiver": {
                "customer_id": receiver.id,
                "first_name": "R",
                "last_name": "R",
                "email": "receiver@example.com",
            },
            "subscription": {"plan_id": "S222222222"},
        }
    ).gift
    cancelled = cb.Gift.cancel(second.id)
    assert cancelled.gift.status == "cancelled" and cancelled.subscription.status == "cancelled"
    assert cb.Invoice.retrieve(cancelled.gift.gifter.invoice_id).invoice.amount_refunded == 9999


def test_the_official_client_gets_typed_errors(cb):
    OfferFactory(short_id="S333333333", giftable=True)
    OfferFactory(short_id="S333333334", giftable=False, period="week")
    declined = _customer(cb, "declined@example.com", card="4000000000000002")
    with pytest.raises(chargebee.PaymentError) as payment_error:
        cb.Gift.create(
            {
                "gifter": {"customer_id": declined.id, "signature": "D"},
                "gift_receiver": {
                    "customer_id": declined.id,
                    "first_name": "A",
                    "last_name": "B",
                    "email": "a@example.com",
                },
                "subscription": {"plan_id": "S333333333"},
            }
        )
    assert payment_error.value.api_error_code == "payment_processing_failed"
    with pytest.raises(chargebee.InvalidRequestError) as bad:
        cb.Gift.create(
            {
                "gifter": {"customer_id": declined.id, "signature": "D"},
                "gift_receiver": {
                    "customer_id": declined.id,
                    "first_name": "A",
                    "last_name": "B",
                    "email": "a@example.com",
                },
                "subscription": {"plan_id": "S333333334"},
            }
        )
    assert bad.value.http_status_code == 400 and bad.value.api_error_code == "param_wrong_value"
    with pytest.raises(chargebee.InvalidRequestError) as missing:
        cb.Gift.retrieve("999999")
    assert missing.value.api_error_code == "resource_not_found" and missing.value.http_status_code == 404
