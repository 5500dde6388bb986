"""The web checkout, as a guest and as a customer, for oneself and as a gift."""

import re
from datetime import timedelta

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.models import Customer
from accounts.tests.factories import CustomerFactory, PaymentMethodFactory, SubscriptionFactory
from billing.models import Order
from gifts.models import Gift
from offers.tests.factories import CouponFactory, OfferFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def offer():
    return OfferFactory(short_id="S444444444", title="Premium yearly", period="year", price="99.99", tags=["premium"])


def gift_form(client, offer, **fields):
    page = client.get(reverse("billing:gift_checkout", args=[offer.long_id]))
    key = re.search(r'name="checkout_key" value="([^"]+)"', page.content.decode()).group(1)
    tomorrow = (timezone.now() + timedelta(days=2)).date()
    return {
        "checkout_key": key,
        "email": "guest@example.com",
        "recipient_email": "friend@example.com",
        "recipient_email_again": "friend@example.com",
        "delivery_date": tomorrow.isoformat(),
        "delivery_time": "10:00",
        "time_zone": "Europe/Berlin",
        "personal_note": "Happy birthday!",
        "card_number": "4242 4242 4242 4242",
        "exp_month": "12",
        "exp_year": "2030",
        "cvc": "123",
        "action": "pay",
        **fields,
    }


def test_the_offer_page_offers_myself_and_gift_for_a_giftable_offer_and_gift_only_with_access(client, offer):
    def buttons(some_offer):
        body = client.get(reverse("billing:offer_detail", args=[some_offer.long_id])).content.decode()
        return (
            f'href="{reverse("billing:checkout", args=[some_offer.long_id])}"' in body,
            f'href="{reverse("billing:gift_checkout", args=[some_offer.long_id])}"' in body,
        )

    assert buttons(offer) == (True, True)
    assert buttons(OfferFactory(period="week", giftable=False)) == (True, False)
    subscriber = CustomerFactory()
    SubscriptionFactory(customer=subscriber, offer=OfferFactory(tags=["premium"]))
    client.force_login(subscriber)
    assert buttons(offer) == (False, True)


def test_a_guest_buys_a_gift_and_gets_a_receipt_with_a_set_password_link(
    client, offer, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("billing:gift_checkout", args=[offer.long_id]), gift_form(client, offer))
    assert response.status_code == 302, response.content.decode()[:2000]
    gift = Gift.objects.get()
    assert gift.recipient_email == "friend@example.com" and gift.personal_note == "Happy birthday!"
    assert gift.scheduled_at.astimezone(timezone.get_fixed_timezone(0)).hour in (8, 9)  # 10:00 Berlin = 09:00/08:00 UTC
    assert not Customer.objects.get(email="guest@example.com").has_usable_password()
    thanks = client.get(response.url).content.decode()
    assert "friend@example.com" in thanks and "You can change it until" in thanks
    receipt = mail.outbox[0]
    assert receipt.to == ["guest@example.com"] and "/reset/" in receipt.body
    assert Client().get(response.url).status_code == 404  # another browser cannot see the order


def test_a_decline_shows_why_creates_nothing_and_the_same_form_can_pay_again(client, offer):
    form = gift_form(client, offer, card_number="4000 0000 0000 0002")
    response = client.post(reverse("billing:gift_checkout", args=[offer.long_id]), form)
    assert response.status_code == 200 and "Your card was declined" in response.content.decode()
    assert not Gift.objects.exists()
    response = client.post(
        reverse("billing:gift_checkout", args=[offer.long_id]), {**form, "card_number": "4242424242424242"}
    )
    assert response.status_code == 302
    assert Gift.objects.count() == 1 and Order.objects.count() == 1


def test_a_double_submit_of_the_same_form_makes_one_gift_and_shows_the_same_page(client, offer):
    form = gift_form(client, offer)
    first = client.post(reverse("billing:gift_checkout", args=[offer.long_id]), form)
    second = client.post(reverse("billing:gift_checkout", args=[offer.long_id]), form)
    assert first.status_code == second.status_code == 302 and first.url == second.url
    assert Gift.objects.count() == 1


def test_it_refuses_mismatched_emails_a_past_time_and_a_long_note(client, offer):
    yesterday = (timezone.now() - timedelta(days=1)).date().isoformat()
    response = client.post(
        reverse("billing:gift_checkout", args=[offer.long_id]),
        gift_form(
            client, offer, recipient_email_again="other@example.com", delivery_date=yesterday, personal_note="x" * 151
        ),
    )
    body = response.content.decode()
    assert response.status_code == 200
    assert "The two email addresses are different." in body and "This time has passed" in body
    assert "at most 150 characters" in body
    assert not Order.objects.exists()


def test_send_now_schedules_the_gift_for_now(client, offer):
    client.post(
        reverse("billing:gift_checkout", args=[offer.long_id]),
        gift_form(client, offer, send_now="on", delivery_date=""),
    )
    gift = Gift.objects.get()
    assert abs((gift.scheduled_at - timezone.now()).total_seconds()) < 60


def test_a_customer_pays_with_a_saved_card_and_buys_for_themselves(client, offer):
    customer = CustomerFactory()
    card = PaymentMethodFactory(customer=customer, token="tok_sandbox_success_abc")
    client.force_login(customer)
    page = client.get(reverse("billing:checkout", args=[offer.long_id]))
    key = re.search(r'name="checkout_key" value="([^"]+)"', page.content.decode()).group(1)
    response = client.post(
        reverse("billing:checkout", args=[offer.long_id]),
        {"checkout_key": key, "saved_card": str(card.pk), "action": "pay"},
    )
    assert response.status_code == 302
    order = Order.objects.get()
    assert order.status == "paid" and not order.buy_as_gift
    assert customer.subscriptions.get().status == "active"


def test_the_coupon_reprices_the_summary_with_and_without_javascript(client, offer):
    CouponFactory(code="HALF", percent_off="50")
    response = client.post(
        reverse("billing:gift_checkout", args=[offer.long_id]), gift_form(client, offer, coupon="half", action="price")
    )
    assert "$49.99" in response.content.decode() and not Order.objects.exists()
    price = client.get(reverse("billing:price", args=[offer.long_id]), {"coupon": "HALF"}).json()
    assert price["total"] == "49.99" and price["error"] is None  # 99.99 - 50.00 (the discount rounds half up)
    assert client.get(reverse("billing:price", args=[offer.long_id]), {"coupon": "NOPE"}).json()["error"]


def test_a_guest_using_the_email_of_an_account_is_asked_to_log_in(client, offer):
    CustomerFactory(email="member@example.com")
    response = client.post(
        reverse("billing:gift_checkout", args=[offer.long_id]), gift_form(client, offer, email="member@example.com")
    )
    assert "This email has an account" in response.content.decode() and not Order.objects.exists()


def test_checkout_without_a_csrf_token_is_refused(offer):
    client = Client(enforce_csrf_checks=True)
    client.force_login(CustomerFactory())
    response = client.post(reverse("billing:gift_checkout", args=[offer.long_id]), {"action": "pay"})
    assert response.status_code == 403 and not Order.objects.exists()


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"card_number": "4242 4242 4242 4241"}, "card_number", "This card number is not valid"),
        ({"exp_month": "1", "exp_year": "2020"}, "exp_month", "This card has expired"),
    ],
    ids=["fails the check digit", "expired"],
)
def test_a_card_that_cannot_pay_is_refused_on_the_form_before_any_charge(client, offer, fields, field, message):
    from billing.models import Payment

    response = client.post(reverse("billing:gift_checkout", args=[offer.long_id]), gift_form(client, offer, **fields))
    assert response.status_code == 200
    body = response.content.decode()
    assert message in body and f'id="id_{field}_error"' in body
    assert not Payment.objects.exists() and not Order.objects.filter(status=Order.Status.PAID).exists()


def test_the_checkout_fields_tell_the_browser_what_to_fill_in(client, offer):
    body = client.get(reverse("billing:gift_checkout", args=[offer.long_id])).content.decode()
    for token in ('autocomplete="email"', 'autocomplete="cc-number"', 'autocomplete="cc-exp-month"',
                  'autocomplete="cc-exp-year"', 'autocomplete="cc-csc"'):  # fmt: skip
        assert token in body
