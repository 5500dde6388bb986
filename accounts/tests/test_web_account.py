"""The account pages: each shows only its owner's things, times in the owner's time zone, and changes go through
the services (gift edits until the cutoff, cards through the sandbox gateway)."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from urllib.parse import quote

import pytest
from django.utils import timezone

from accounts.models import PaymentMethod, Transaction
from accounts.tests.factories import CustomerFactory, PaymentMethodFactory, SubscriptionFactory
from gifts.models import GiftStatus
from gifts.tests.factories import GiftFactory, GuestFactory, make_gift

pytestmark = pytest.mark.django_db

CLOSED = "Delivery details can be changed until the end of the day before the delivery day."


def utc(*args):
    return datetime(*args, tzinfo=UTC)


@pytest.fixture
def customer(client):
    customer = CustomerFactory(time_zone="America/New_York")
    client.force_login(customer)
    return customer


def page(client, url):
    response = client.get(url)
    assert response.status_code == 200, response
    return response.content.decode()


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


def test_it_hides_another_customers_gift_behind_a_404(client, customer):
    gift = make_gift(scheduled_at=timezone.now() + timedelta(days=5))
    url = f"/account/gifts/{gift.pk}/edit/"
    assert client.get(url).status_code == 404
    response = client.post(url, {"recipient_email": "me@example.com", "recipient_email_again": "me@example.com"})
    assert response.status_code == 404
    gift.refresh_from_db()
    assert gift.recipient_email == "friend@example.com"
    assert gift.recipient_email not in page(client, "/account/gifts/")


# --- my gifts ----------------------------------------------------------------------------------------------


def test_it_lists_my_gifts_with_their_status_in_plain_words_and_times_in_my_zone(client, time_machine):
    time_machine.move_to(utc(2026, 6, 1, 12, 0), tick=False)
    gifter = CustomerFactory(time_zone="Europe/Berlin")
    client.force_login(gifter)
    make_gift(gifter=gifter, scheduled_at=utc(2026, 7, 1, 10, 0), recipient_email="later@example.com")
    sent_at = utc(2026, 5, 20, 7, 0)
    GiftFactory(gifter=gifter, status=GiftStatus.UNCLAIMED, scheduled_at=sent_at, recipient_email="sent@example.com")
    GiftFactory(
        gifter=gifter,
        status=GiftStatus.CLAIMED,
        receiver=GuestFactory(),
        claimed_at=sent_at,
        recipient_email="redeemed@example.com",
    )
    GiftFactory(gifter=gifter, status=GiftStatus.EXPIRED, expired_at=sent_at, recipient_email="late@example.com")
    GiftFactory(gifter=gifter, status=GiftStatus.CANCELLED, cancelled_at=sent_at, recipient_email="no@example.com")
    make_gift(recipient_email="someone.elses@example.com")

    body = page(client, "/account/gifts/")
    assert "Scheduled for 1 Jul 2026, 12:00" in body  # 10:00 UTC is noon in Berlin in summer
    assert "20 May 2026, 09:00 (Europe/Berlin)" in body
    for words in ("<dd>Sent</dd>", "<dd>Redeemed</dd>", "<dd>Expired</dd>", "<dd>Cancelled</dd>"):
        assert words in body
    assert "The gift has already been sent." in body and "The gift has already been redeemed." in body
    assert body.count("Edit delivery details") == 1
    assert "someone.elses@example.com" not in body


def test_it_lets_the_gifter_edit_a_gift_until_the_cutoff_in_their_zone(client, time_machine):
    # New York is on EDT (UTC-4) from 8 March: the delivery day, 12 March, starts at 04:00 UTC.
    time_machine.move_to(utc(2026, 3, 1, 12, 0), tick=False)
    gifter = CustomerFactory(time_zone="America/New_York")
    client.force_login(gifter)
    gift = make_gift(gifter=gifter, scheduled_at=utc(2026, 3, 12, 15, 0), personal_note="Happy birthday")
    url = f"/account/gifts/{gift.pk}/edit/"

    time_machine.move_to(utc(2026, 3, 12, 3, 59, 59), tick=False)
    form = page(client, url)
    assert 'value="2026-03-12"' in form and 'value="11:00"' in form and "America/New_York" in form
    assert 'maxlength="150"' in form
    response = client.post(
        url,
        {
            "recipient_email": "new.friend@example.com",
            "recipient_email_again": "New.Friend@example.com",
            "delivery_date": "2026-03-14",
            "delivery_time": "09:30",
            "personal_note": "Changed my mind",
        },
    )
    assert response.status_code == 302 and response["Location"] == "/account/gifts/"
    gift.refresh_from_db()
    assert (gift.recipient_email, gift.personal_note, gift.scheduled_at) == (
        "new.friend@example.com",
        "Changed my mind",
        utc(2026, 3, 14, 13, 30),
    )
    assert "Scheduled for 14 Mar 2026, 09:30" in page(client, "/account/gifts/")

    # The new delivery day starts at 04:00 UTC on 14 March: from then on, editing is closed.
    time_machine.move_to(utc(2026, 3, 14, 4, 0), tick=False)
    body = page(client, url)
    assert CLOSED in body and '<form method="post" class="gift-edit"' not in body
    assert CLOSED in page(client, "/account/gifts/")
    response = client.post(
        url,
        {
            "recipient_email": "too.late@example.com",
            "recipient_email_again": "too.late@example.com",
            "send_now": "on",
            "personal_note": "Too late",
        },
    )
    assert response.status_code == 200 and CLOSED in response.content.decode()
    gift.refresh_from_db()
    assert gift.recipient_email == "new.friend@example.com" and gift.personal_note == "Changed my mind"


@pytest.mark.parametrize(
    ("day", "clock", "instant"),
    [
        ("2026-03-08", "02:30", utc(2026, 3, 8, 7, 0)),  # no 02:30 that night: the first instant after the gap
        ("2026-11-01", "01:30", utc(2026, 11, 1, 5, 30)),  # 01:30 happens twice: the first (EDT) one
    ],
    ids=["spring_forward_gap", "fall_back_twice"],
)
def test_it_reads_a_delivery_time_that_a_clock_change_skips_or_repeats(
    client, customer, time_machine, day, clock, instant
):
    time_machine.move_to(utc(2026, 3, 1, 12, 0), tick=False)
    gift = make_gift(gifter=customer, scheduled_at=utc(2026, 12, 1, 15, 0))
    data = {"recipient_email": "a@example.com", "recipient_email_again": "a@example.com"}
    response = client.post(f"/account/gifts/{gift.pk}/edit/", {**data, "delivery_date": day, "delivery_time": clock})
    assert response.status_code == 302
    gift.refresh_from_db()
    assert gift.scheduled_at == instant


def test_it_sends_a_gift_now_when_asked(client, customer, time_machine):
    time_machine.move_to(utc(2026, 3, 1, 12, 0), tick=False)
    gift = make_gift(gifter=customer, scheduled_at=utc(2026, 3, 20, 15, 0))
    data = {"recipient_email": "friend@example.com", "recipient_email_again": "friend@example.com", "send_now": "on"}
    assert client.post(f"/account/gifts/{gift.pk}/edit/", data).status_code == 302
    gift.refresh_from_db()
    assert gift.scheduled_at == utc(2026, 3, 1, 12, 0) and gift.status == GiftStatus.SCHEDULED


def test_it_ties_form_and_service_errors_to_their_fields(client, customer):
    gift = make_gift(gifter=customer, scheduled_at=timezone.now() + timedelta(days=5))
    url = f"/account/gifts/{gift.pk}/edit/"
    body = client.post(
        url, {"recipient_email": "a@example.com", "recipient_email_again": "b@example.com", "send_now": "on"}
    ).content.decode()
    assert 'id="id_recipient_email_again_error"' in body and "different" in body
    assert 'aria-describedby="id_recipient_email_again_error"' in body

    # The form lets a bell character through; the service refuses it and names the field.
    data = {"recipient_email": "a@example.com", "recipient_email_again": "a@example.com", "send_now": "on"}
    body = client.post(url, {**data, "personal_note": "Ding \x07"}).content.decode()
    assert 'id="id_personal_note_error"' in body and "control characters" in body
    gift.refresh_from_db()
    assert gift.recipient_email == "friend@example.com"


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
    assert "9.99 USD" in body


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


# --- payment methods ---------------------------------------------------------------------------------------


def add_card(client, number, exp_month=12, exp_year=2030):
    return client.post(
        "/account/payment-methods/", {"card_number": number, "exp_month": exp_month, "exp_year": exp_year}
    )


def test_it_adds_a_sandbox_card_as_the_default(client, customer):
    old = PaymentMethodFactory(customer=customer, last4="4444", brand="Mastercard")
    response = add_card(client, "4242 4242 4242 4242")
    assert response.status_code == 302
    new = customer.payment_methods.get(is_default=True)
    assert (new.brand, new.last4) == ("Visa", "4242") and new.pk != old.pk
    body = page(client, "/account/payment-methods/")
    assert "Visa •••• 4242" in body and "Mastercard •••• 4444" in body


def test_it_shows_a_refused_card_number_on_its_field_without_echoing_it(client, customer):
    body = add_card(client, "1234").content.decode()
    assert 'id="id_card_number_error"' in body and "sandbox test card" in body
    assert 'aria-describedby="id_card_number_helptext id_card_number_error"' in body
    assert 'value="1234"' not in body
    assert not customer.payment_methods.exists()


def test_it_saves_a_card_that_declines_only_when_charged(client, customer):
    # 4000 0000 0000 0002 tokenises fine; the gateway declines it at charge time (billing's tests cover that).
    assert add_card(client, "4000000000000002").status_code == 302
    assert customer.payment_methods.get().last4 == "0002"


def test_it_removes_my_card_and_not_someone_elses(client, customer):
    mine = PaymentMethodFactory(customer=customer)
    theirs = PaymentMethodFactory()
    assert client.get(f"/account/payment-methods/{mine.pk}/remove/").status_code == 405
    assert client.post(f"/account/payment-methods/{theirs.pk}/remove/").status_code == 404
    response = client.post(f"/account/payment-methods/{mine.pk}/remove/")
    assert response.status_code == 302 and response["Location"] == "/account/payment-methods/"
    assert list(PaymentMethod.objects.all()) == [theirs]
