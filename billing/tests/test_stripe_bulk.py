"""Gift lists and group codes paid with Stripe (issues 18 and 20): the pay form takes no card number, the browser
pays on Stripe's payment page (3-D Secure included), and whoever sees the PaymentIntent succeed first (the webhook,
or the browser's return) completes the order once, with what it pays for: the list's gifts, or the group code. The
order carries that fulfilment (Order.fulfilment), so the webhook needs nothing from the request that made it."""

import io
import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from accounts.tests.factories import CustomerFactory
from billing.models import Invoice, Order, Payment
from billing.tests.stripe_fixtures import browser_authenticate, browser_confirm, post_event
from gifts.models import BulkList, Gift, GroupCode
from offers.tests.factories import OfferFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def gifter(client):
    customer = CustomerFactory(email="hr@example.com", time_zone="Europe/Berlin")
    client.force_login(customer)
    return customer


@pytest.fixture
def offer():
    return OfferFactory(title="Premium monthly", price=Decimal("10.00"), currency="EUR")


def _secret(client, response):
    page = client.get(response["Location"])
    return re.search(r'data-client-secret="([^"]+)"', page.content.decode()).group(1)


def test_a_gift_list_paid_with_3d_secure_is_completed_by_the_webhook_once_and_its_gifts_made(
    client, gifter, offer, fake_stripe, django_capture_on_commit_callbacks
):
    day = (timezone.now() + timedelta(days=5)).date().isoformat()
    text = f"email,first_name,date\nana@example.com,Ana,{day}\nbo@example.com,Bo,{day}\ncy@example.com,Cy,{day}\n"
    made = client.post(
        reverse("billing:bulk_new", args=[offer.long_id]),
        {"file": SimpleUploadedFile("team.csv", text.encode(), "text/csv")},
    )
    review = made["Location"]
    page = client.get(review).content.decode()
    assert 'name="card_number"' not in page and "to Stripe" in page  # the card goes to Stripe, not to us
    total = re.search(r'name="shown_total" value="([^"]+)"', page).group(1)

    to_stripe = client.post(review, {"action": "pay", "shown_total": total})
    order = Order.objects.get()
    assert to_stripe.status_code == 302 and to_stripe["Location"] == reverse("billing:stripe_pay", args=[order.pk])
    assert order.fulfilment["kind"] == "bulk_list" and order.quantity == 3
    secret = _secret(client, to_stripe)
    assert browser_confirm(fake_stripe, secret, "pm_card_threeDSecure2Required")["status"] == "requires_action"
    assert BulkList.objects.get().status == BulkList.Status.DRAFT  # nothing before the bank's challenge is passed
    paid = browser_authenticate(fake_stripe, secret)

    event = fake_stripe.event_of("payment_intent.succeeded", paid["id"])
    with django_capture_on_commit_callbacks(execute=True):
        assert post_event(client, event).status_code == 200  # the webhook tells first
    with django_capture_on_commit_callbacks(execute=True):
        assert post_event(client, event).status_code == 200  # and twice
    bulk_list = BulkList.objects.get()
    assert bulk_list.status == BulkList.Status.DONE and bulk_list.gifts_created == 3
    assert Gift.objects.filter(bulk_row__bulk_list=bulk_list).count() == 3
    assert Invoice.objects.count() == 1 and Payment.objects.filter(status=Payment.Status.SUCCEEDED).count() == 1
    assert Invoice.objects.get().total == Decimal("30.00")

    back = client.get(reverse("billing:stripe_return", args=[order.pk]), {"payment_intent": paid["id"]})
    assert back["Location"] == reverse("billing:thanks", args=[order.pk])
    assert client.get(back["Location"])["Location"] == reverse("gifts:bulk_list", args=[bulk_list.pk])


def test_a_group_code_paid_on_stripes_page_is_made_when_the_browser_comes_back(client, gifter, offer, fake_stripe):
    url = reverse("billing:group_new", args=[offer.long_id])
    key = re.search(r'name="checkout_key" value="([^"]+)"', client.get(url).content.decode()).group(1)
    form = {"checkout_key": key, "seats": "4", "personal_note": "Welcome to the team", "action": "pay"}
    to_stripe = client.post(url, form | {"shown_total": "40.00"})
    assert to_stripe.status_code == 302, to_stripe.content.decode()[:2000]
    order = Order.objects.get()
    assert order.fulfilment == {"kind": "group_code", "expires_at": None, "personal_note": "Welcome to the team"}
    paid = browser_confirm(fake_stripe, _secret(client, to_stripe), "pm_card_visa")
    assert not GroupCode.objects.exists()

    back = client.get(reverse("billing:stripe_return", args=[order.pk]), {"payment_intent": paid["id"]})
    group = GroupCode.objects.get()
    assert (group.seats, group.personal_note, group.order_id) == (4, "Welcome to the team", order.pk)
    assert client.get(back["Location"])["Location"] == reverse("gifts:group_code", args=[group.pk])
    assert Invoice.objects.get().total == Decimal("40.00")


def test_with_the_sandbox_the_list_is_still_paid_on_its_own_page(client, gifter, offer):
    day = (timezone.now() + timedelta(days=5)).date().isoformat()
    text = io.BytesIO(f"email,date\nana@example.com,{day}\n".encode())
    made = client.post(
        reverse("billing:bulk_new", args=[offer.long_id]),
        {"file": SimpleUploadedFile("team.csv", text.read(), "text/csv")},
    )
    page = client.get(made["Location"]).content.decode()
    assert 'name="card_number"' in page and "to Stripe" not in page
