"""The account pages: each shows only its owner's things, times in the owner's time zone, and changes go through
the services. The gifts given have their own pages (gifts/tests/test_web_gifts.py), the saved cards theirs
(billing/tests/test_web_cards.py)."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from urllib.parse import quote

import pytest
from django.utils import timezone

from accounts.models import Customer, PaymentMethod, Transaction
from accounts.tests.factories import CustomerFactory, PaymentMethodFactory, SubscriptionFactory
from accounts.tests.web import page
from gifts.tests.factories import make_gift

pytestmark = pytest.mark.django_db


def utc(*args):
    return datetime(*args, tzinfo=UTC)


def account_pages(gift):
    return [
        "/account/",
        "/account/subscriptions/",
        "/account/transactions/",
        "/account/gifts/",
        f"/account/gifts/{gift.pk}/edit/",
        "/account/payment-methods/",
    ]


# --- access ------------------------------------------------------------------------------------------------


def test_it_shows_every_account_page_to_its_owner(client, customer):
    gift = make_gift(gifter=customer, scheduled_at=timezone.now() + timedelta(days=5))
    for url in account_pages(gift):
        assert 'aria-label="Your account"' in page(client, url)


def test_it_sends_an_anonymous_visitor_to_log_in_first(client):
    gift = make_gift(scheduled_at=timezone.now() + timedelta(days=5))
    card = PaymentMethodFactory(customer=gift.gifter)
    for url in account_pages(gift):
        response = client.get(url)
        assert response.status_code == 302 and response["Location"] == f"/login/?next={quote(url)}", url
    remove = f"/account/payment-methods/{card.pk}/remove/"
    assert client.post(remove)["Location"] == f"/login/?next={quote(remove)}"
    assert PaymentMethod.objects.filter(pk=card.pk).exists()


# --- transactions, subscriptions ---------------------------------------------------------------------------


def record(customer, offer, target_type, target_id):
    return Transaction.objects.create(
        customer=customer,
        offer=offer,
        amount=Decimal("9.99"),
        currency="USD",
        payment_method_label="Visa •••• 4242",
        target_type=target_type,
        target_id=str(target_id),
    )


def test_it_marks_gift_purchases_among_transactions_and_links_to_the_gift(client, customer):
    gift = make_gift(gifter=customer, scheduled_at=timezone.now() + timedelta(days=5))
    subscription = SubscriptionFactory(customer=customer)
    bought_gift = record(customer, gift.offer, Transaction.TargetType.GIFT, gift.pk)
    record(customer, subscription.offer, Transaction.TargetType.SUBSCRIPTION, subscription.pk)
    someone_else = record(CustomerFactory(), subscription.offer, Transaction.TargetType.SUBSCRIPTION, 1)

    body = page(client, "/account/transactions/")
    assert bought_gift.transaction_id in body and someone_else.transaction_id not in body
    assert body.count("Gift purchase") == 1
    assert f'href="/account/gifts/{gift.pk}/edit/"' in body
    assert "$9.99" in body


def test_it_lists_my_subscriptions_with_status_term_and_auto_renew(client, customer):
    start = utc(2026, 1, 10, 15, 0)
    mine = SubscriptionFactory(
        customer=customer, status="non_renewing", auto_renew=False, term_start=start, origin="gift"
    )
    theirs = SubscriptionFactory()
    body = page(client, "/account/subscriptions/")
    assert mine.offer.title in body and theirs.offer.title not in body
    assert "Non-renewing" in body and "<dd>Off</dd>" in body and "<dd>Gift</dd>" in body
    assert "10 Jan 2026, 10:00 to 9 Feb 2026, 10:00" in body  # New York, EST


def test_it_pages_long_lists(client, customer):
    offer = SubscriptionFactory(customer=customer).offer
    for n in range(30):
        record(customer, offer, Transaction.TargetType.SUBSCRIPTION, n)
    first = page(client, "/account/transactions/")
    assert 'href="?page=2"' in first and first.count('class="card"') == 25
    second = page(client, "/account/transactions/?page=2")
    assert second.count('class="card"') == 5 and 'href="?page=1"' in second
    assert page(client, "/account/transactions/?page=nonsense").count('class="card"') == 25


# --- details -----------------------------------------------------------------------------------------------


def test_it_saves_my_details_and_time_zone(client, customer):
    response = client.post("/account/", {"first_name": "Nia", "last_name": "Lee", "time_zone": "Asia/Tokyo"})
    assert response.status_code == 302
    customer.refresh_from_db()
    assert (customer.first_name, customer.last_name, customer.time_zone) == ("Nia", "Lee", "Asia/Tokyo")
    body = client.post("/account/", {"time_zone": "Mars/Olympus_Mons"}).content.decode()
    assert 'id="id_time_zone_error"' in body


def test_a_zone_stored_under_an_old_alias_can_be_kept_and_common_zones_come_first(client, customer):
    Customer.objects.filter(pk=customer.pk).update(time_zone="US/Pacific")  # saved before canonical names only
    page = client.get("/account/").content.decode()
    assert page.index('<optgroup label="Common">') < page.index('value="US/Pacific"') < page.index("All time zones")
    assert "GB-Eire" not in page
    response = client.post("/account/", {"first_name": "Nia", "last_name": "", "time_zone": "US/Pacific"})
    assert response.status_code == 302
    customer.refresh_from_db()
    assert customer.time_zone == "US/Pacific"
