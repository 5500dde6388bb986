"""The shop's words to shoppers (issue 12, the gifter): a price reads "$2.99 a week", a gift "one 6-month term",
the offer id stays the shop's own, and a refunded gift shows in the gifter's transactions as money back (a minus)."""

import re
import uuid
from decimal import Decimal

import pytest
from django.core import mail
from django.urls import reverse

from accounts.tests.web import page
from billing import gift_sales
from gifts.services import deliver_due_gifts
from gifts.tests.factories import make_gift
from gifts.tests.merchant import gifter_with_card
from offers.tests.factories import OfferFactory

pytestmark = pytest.mark.django_db


def text(html):
    """The page's words, without tags and with whitespace collapsed, as a shopper reads them."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_the_catalogue_prices_each_plan_per_period_in_words(client):
    OfferFactory(title="Weekly pass", period="week", price=Decimal("2.99"), giftable=False)
    OfferFactory(title="Half-year", period="6months", price=Decimal("44.99"))
    OfferFactory(title="Annual", period="year", price=Decimal("99.99"))

    body = text(page(client, reverse("billing:catalogue")))

    assert "$2.99 a week" in body
    assert "$44.99 every 6 months" in body
    assert "$99.99 a year" in body
    assert "/ weekly" not in body and "6 months term" not in body


def test_an_offer_page_says_what_a_gift_gives_and_hides_the_offer_id(client):
    offer = OfferFactory(short_id="S123456789", country="US", title="Half-year", period="6months")

    body = text(page(client, reverse("billing:offer_detail", args=[offer.long_id])))

    assert "Yes — one 6-month term for the recipient" in body
    assert "$9.99 every 6 months" in body
    assert "Offer id" not in body and "S123456789" not in body  # only in links (tags are not text)


@pytest.mark.parametrize(
    ("period", "term", "price"),
    [
        ("month", "one monthly term", "$9.99 a month"),
        ("3months", "one 3-month term", "$9.99 every 3 months"),
        ("6months", "one 6-month term", "$9.99 every 6 months"),
        ("year", "one yearly term", "$9.99 a year"),
    ],
)
def test_every_gift_period_reads_as_one_term(client, period, term, price):
    offer = OfferFactory(period=period)

    body = text(page(client, reverse("billing:offer_detail", args=[offer.long_id])))

    assert f"Yes — {term} for the recipient" in body and price in body


def test_the_gift_email_names_the_term_as_the_offer_page_does(django_capture_on_commit_callbacks):
    make_gift(offer=OfferFactory(title="Half-year", period="6months"), recipient_email="peter@example.com")
    with django_capture_on_commit_callbacks(execute=True):
        deliver_due_gifts()

    (delivery,) = [message for message in mail.outbox if message.to == ["peter@example.com"]]
    assert "Half-year — one 6-month term." in delivery.body
    assert "<strong>Half-year</strong> — one 6-month term." in delivery.alternatives[0][0]


def test_a_refunded_gift_shows_in_the_gifters_transactions_as_money_back(client, django_capture_on_commit_callbacks):
    gifter = gifter_with_card()
    offer = OfferFactory(title="Annual", period="year", price=Decimal("99.99"))
    bought = gift_sales.gift_purchase(
        gifter=gifter,
        offer=offer,
        receiver=None,
        recipient_email="friend@example.com",
        idempotency_key=uuid.uuid4().hex,
    )
    with django_capture_on_commit_callbacks(execute=True):  # the refund goes through once the cancellation commits
        gift_sales.gift_cancel(gift_id=bought.gift.pk)
    client.force_login(gifter)

    cards = page(client, reverse("accounts:transactions")).split('<li class="card">')[1:]

    refund, purchase = map(text, cards)  # newest first
    assert "Gift refund" in refund and "Type Refund" in refund
    assert "Amount \u2212$99.99" in refund and "Refunded to Visa" in refund  # a true minus sign
    assert "Paid with" not in refund and "+99.99" not in refund
    assert "Gift purchase" in purchase and "Amount $99.99" in purchase and "Paid with Visa" in purchase
