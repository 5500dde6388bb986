"""The redeem page: opened from the emailed link, verified and confirmed with POSTs, never redeemed by a GET."""

from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.models import Subscription
from accounts.tests.factories import CustomerFactory, SubscriptionFactory
from gifts import services
from gifts.tests.factories import make_gift
from offers.tests.factories import OfferFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def delivered_gift():
    gift = make_gift(offer=OfferFactory(title="Premium monthly", tags=["premium"]))
    services.deliver_due_gifts(send=False)
    gift.refresh_from_db()
    return gift


def test_opening_the_emailed_link_many_times_never_redeems(client, delivered_gift):
    url = f"{reverse('gifts:redeem')}?giftCode={delivered_gift.code}"
    for _ in range(5):
        response = client.get(url)
        assert response.status_code == 200 and delivered_gift.code in response.content.decode()
    client.force_login(CustomerFactory())
    assert delivered_gift.code in client.get(url).content.decode()
    delivered_gift.refresh_from_db()
    assert delivered_gift.status == "unclaimed"


def test_a_visitor_is_sent_to_log_in_or_register_and_back_with_the_code(client, delivered_gift):
    body = client.get(f"{reverse('gifts:redeem')}?giftCode={delivered_gift.code}").content.decode()
    assert f"next=/redeem/%3FgiftCode%3D{delivered_gift.code}" in body
    response = client.post(reverse("gifts:redeem"), {"code": delivered_gift.code, "action": "confirm"})
    assert response.status_code == 302 and response.url.startswith(reverse("accounts:login"))
    delivered_gift.refresh_from_db()
    assert delivered_gift.status == "unclaimed"


def test_verify_then_confirm_redeems_once_into_a_new_subscription(client, delivered_gift):
    recipient = CustomerFactory()
    client.force_login(recipient)
    verified = client.post(reverse("gifts:redeem"), {"code": delivered_gift.code.lower(), "action": "verify"})
    assert "Redeeming starts a new Premium monthly subscription" in verified.content.decode()
    done = client.post(reverse("gifts:redeem"), {"code": delivered_gift.code, "action": "confirm"})
    assert done.status_code == 302
    page = client.get(done.url).content.decode()
    assert "add a payment method" in page
    assert Subscription.objects.get(customer=recipient).status == "active"
    again = client.post(reverse("gifts:redeem"), {"code": delivered_gift.code, "action": "confirm"})
    assert again.status_code == 409 and "already been redeemed" in again.content.decode()
    assert Subscription.objects.filter(customer=recipient).count() == 1


def test_a_subscriber_is_told_the_gift_extends_their_subscription(client, delivered_gift):
    subscriber = CustomerFactory()
    held = SubscriptionFactory(
        customer=subscriber,
        offer=OfferFactory(title="Premium yearly", tags=["premium"]),
        term_end=timezone.now() + timedelta(days=30),
    )
    client.force_login(subscriber)
    body = client.post(reverse("gifts:redeem"), {"code": delivered_gift.code, "action": "verify"}).content.decode()
    assert "extends your Premium yearly subscription to" in body
    client.post(reverse("gifts:redeem"), {"code": delivered_gift.code, "action": "confirm"})
    held.refresh_from_db()
    assert held.term_end > timezone.now() + timedelta(days=50)


def test_the_redeem_page_leaks_no_referrer_and_loads_nothing_foreign(client, delivered_gift):
    response = client.get(f"{reverse('gifts:redeem')}?giftCode={delivered_gift.code}")
    assert response["Referrer-Policy"] == "same-origin"  # "no-referrer" makes the page's own POSTs fail CSRF
    csp = response["Content-Security-Policy"]
    assert "object-src 'none'" in csp and "base-uri 'none'" in csp
    assert response["X-Content-Type-Options"] == "nosniff"


def test_redeeming_without_a_csrf_token_or_from_a_foreign_origin_is_refused(delivered_gift):
    client = Client(enforce_csrf_checks=True)
    client.force_login(CustomerFactory())
    response = client.post(reverse("gifts:redeem"), {"code": delivered_gift.code, "action": "confirm"})
    assert response.status_code == 403
    page = client.get(reverse("gifts:redeem"))
    token = page.cookies["csrftoken"].value
    foreign = client.post(
        reverse("gifts:redeem"),
        {"code": delivered_gift.code, "action": "confirm", "csrfmiddlewaretoken": token},
        HTTP_ORIGIN="https://evil.example",
    )
    assert foreign.status_code == 403
    delivered_gift.refresh_from_db()
    assert delivered_gift.status == "unclaimed"
    ok = client.post(
        reverse("gifts:redeem"), {"code": delivered_gift.code, "action": "confirm", "csrfmiddlewaretoken": token}
    )
    assert ok.status_code == 302


def test_guessing_codes_on_the_page_is_limited(client, settings, delivered_gift):
    settings.GIFT_CODE_ATTEMPT_LIMIT = 3
    client.force_login(CustomerFactory())
    statuses = [
        client.post(reverse("gifts:redeem"), {"code": f"ZZZZ-000{n}", "action": "verify"}).status_code for n in range(4)
    ]
    assert statuses == [404, 404, 404, 429]
    response = client.post(reverse("gifts:redeem"), {"code": delivered_gift.code, "action": "verify"})
    assert response.status_code == 429 and "Too many attempts" in response.content.decode()
