"""The gifter's checkout as a shopper meets it (issue 12, "The gifter"): names used in the emails, an error summary
at the top in a shopper's words, a gift sent now that says when it went out, and a gift to one's own address that
asks first."""

import re
from decimal import Decimal

import pytest
from django.core import mail
from django.urls import reverse

from accounts.tests.factories import CustomerFactory
from billing.models import Order, Payment
from billing.tests.test_web_checkout import gift_form
from gifts.models import Gift
from gifts.services import deliver_due_gifts
from offers.tests.factories import CouponFactory, OfferFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def offer():
    return OfferFactory(title="Premium yearly", period="year", price="99.99")


def checkout(client, offer, **fields):
    return client.post(reverse("billing:gift_checkout", args=[offer.long_id]), gift_form(client, offer, **fields))


def summary(response):
    """The error summary's items: (link target or None, text)."""
    body = response.content.decode()
    block = re.search(r'<div class="errorlist error-summary" id="error-summary"[^>]*>(.*?)</div>', body, re.S)
    assert block, "no error summary"
    assert body.index('id="error-summary"') < body.index("<form")  # at the top, before the form
    items = re.findall(r"<li>(?:<a href=\"#([^\"]+)\">)?(.*?)(?:</a>)?</li>", block.group(1), re.S)
    return [(target or None, text) for target, text in items]


def test_the_names_given_at_checkout_greet_the_recipient_and_sign_the_gift(
    client, offer, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = checkout(client, offer, recipient_first_name="Peter", signature="Ana", send_now="on")
    assert response.status_code == 302
    gift = Gift.objects.get()
    assert (gift.recipient_first_name, gift.signature) == ("Peter", "Ana")
    with django_capture_on_commit_callbacks(execute=True):
        deliver_due_gifts()
    (delivery,) = [m for m in mail.outbox if m.to == ["friend@example.com"]]
    assert delivery.body.startswith("Hi Peter,") and "Ana has given you a gift" in delivery.body
    html = delivery.alternatives[0][0]
    assert "Peter, you've received a gift" in html and "<strong>Ana</strong> has given you" in html


def test_without_names_the_email_says_hello_and_names_the_gifters_account(client, offer):
    gifter = CustomerFactory(first_name="Nia", last_name="Okafor")
    client.force_login(gifter)
    checkout(client, offer, saved_card="", send_now="on")
    gift = Gift.objects.get()
    assert gift.from_name == "Nia Okafor"


def test_a_decline_shows_a_summary_at_the_top_linking_to_the_card_field(client, offer):
    response = checkout(client, offer, card_number="4000 0000 0000 0002")
    assert response.status_code == 200
    ((target, text),) = summary(response)
    assert target == "id_card_number" and "Your card was declined" in text
    assert 'tabindex="-1"' in response.content.decode()  # focusable, focused by js/error-summary.js


def test_every_invalid_field_is_in_the_summary_in_a_shoppers_words(client, offer):
    response = checkout(client, offer, recipient_email_again="other@example.com", exp_month="13", exp_year="99")
    items = summary(response)
    targets = [target for target, _text in items]
    assert targets == ["id_recipient_email_again", "id_exp_month", "id_exp_year"]
    body = response.content.decode()
    assert "Ensure this value" not in body and "see the README" not in body
    assert "Enter the expiry month as a number from 1 to 12." in body
    assert "Enter the expiry year in four digits" in body


def test_missing_card_details_are_asked_for_once(client, offer):
    response = checkout(client, offer, card_number="", exp_month="", exp_year="")
    body = response.content.decode()
    assert summary(response) == [("id_card_number", "Card number: Enter your card details.")]
    assert body.count("Enter your card details.") == 2  # once in the summary, once under the field
    assert not Order.objects.exists()


def test_an_unknown_card_number_is_refused_in_a_shoppers_words(client, offer):
    response = checkout(client, offer, card_number="4111 1111 1111 1111")  # passes Luhn; not a sandbox card
    body = response.content.decode()
    assert "This card is not accepted" in body and "README" not in body
    assert not Payment.objects.exists()


def test_a_gift_sent_now_says_it_is_on_its_way_and_nothing_about_changing_it(
    client, offer, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = checkout(client, offer, send_now="on", delivery_date="")
    thanks = client.get(response.url).content.decode()
    assert "You can change it until" not in thanks and "Changes" not in thanks
    assert "being sent now" in thanks or "on its way" in thanks


def test_a_scheduled_gift_still_says_until_when_it_can_change(client, offer):
    response = checkout(client, offer)
    thanks = client.get(response.url).content.decode()
    assert "Arrives" in thanks and "You can change it until" in thanks


def test_a_gift_to_ones_own_address_asks_for_confirmation_first(client, offer):
    gifter = CustomerFactory(email="ana@example.com")
    client.force_login(gifter)
    own = {"recipient_email": "Ana@Example.com", "recipient_email_again": "ana@example.com", "saved_card": ""}
    response = checkout(client, offer, **own)
    body = response.content.decode()
    assert response.status_code == 200 and "This is your own email address" in body
    assert 'name="confirm_own_address"' in body and not Order.objects.filter(status=Order.Status.PAID).exists()

    response = checkout(client, offer, **own, confirm_own_address="on")
    assert response.status_code == 302
    assert Gift.objects.get().recipient_email == "ana@example.com"


def test_a_guest_gifting_their_own_address_is_asked_too(client, offer):
    response = checkout(client, offer, email="friend@example.com")
    assert "This is your own email address" in response.content.decode()
    assert not Gift.objects.exists()


def test_the_checkout_does_not_ask_about_ones_own_address_unprompted(client, offer):
    body = client.get(reverse("billing:gift_checkout", args=[offer.long_id])).content.decode()
    assert 'name="confirm_own_address"' not in body


def test_no_discount_line_without_a_coupon(client, offer):
    url = reverse("billing:gift_checkout", args=[offer.long_id])
    body = client.get(url).content.decode()
    assert re.search(r'<dt data-price="discount-label" hidden>', body)
    CouponFactory(code="HALF", percent_off=Decimal("50"))
    body = client.post(url, gift_form(client, offer, coupon="HALF", action="price")).content.decode()
    assert '<dt data-price="discount-label">Discount</dt>' in body and "\N{MINUS SIGN}$50.00" in body
