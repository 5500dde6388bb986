"""A gifter may send a gift to another address a few times, not without end: each change of a delivered gift emails
a stranger (issue 11, item 11). Per gift (RECIPIENT_CHANGES_PER_GIFT) and per gifter per hour
(RECIPIENT_CHANGES_PER_HOUR), on the web and the storefront API; support is not limited."""

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.tests.factories import CustomerFactory
from gifts import services
from gifts.models import Gift, GiftStatus
from gifts.tests.factories import GiftFactory
from giftshop.mediastore import issue_jwt

pytestmark = pytest.mark.django_db


@pytest.fixture
def gifter():
    return CustomerFactory()


def correct(client, gift, address):
    url = f"/account/gifts/{gift.pk}/recipient/"
    return client.post(url, {"recipient_email": address, "recipient_email_again": address})


def test_the_sixth_correction_of_a_delivered_gift_is_refused_and_emails_nobody(
    client, gifter, settings, django_capture_on_commit_callbacks
):
    settings.RECIPIENT_CHANGES_PER_GIFT, settings.RECIPIENT_CHANGES_PER_HOUR = 5, 100
    gift = GiftFactory(gifter=gifter, status=GiftStatus.UNCLAIMED)
    client.force_login(gifter)
    with django_capture_on_commit_callbacks(execute=True):
        statuses = [correct(client, gift, f"stranger{n}@example.com").status_code for n in range(6)]

    assert statuses == [302] * 5 + [429]
    # Five strangers, and the gifter once: this gift (made by the factory) never had its "delivered" notice, which
    # now follows the first delivery email the provider accepts.
    assert sorted(m.to[0] for m in mail.outbox) == sorted(
        [gifter.email] + [f"stranger{n}@example.com" for n in range(5)]
    )
    refused = correct(client, gift, "stranger9@example.com")
    assert "the most we allow" in refused.content.decode()
    assert Gift.objects.get(pk=gift.pk).recipient_email == "stranger4@example.com"


def test_the_storefront_api_counts_the_same_budget(gifter, settings):
    settings.RECIPIENT_CHANGES_PER_GIFT, settings.RECIPIENT_CHANGES_PER_HOUR = 2, 100
    gift = GiftFactory(gifter=gifter, scheduled_at=timezone.now() + timedelta(days=10))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {issue_jwt(gifter)}")
    when = int((timezone.now() + timedelta(days=10)).timestamp())

    def patch(address):
        details = {"recipientEmail": address, "deliveryDate": when, "personalNote": "Enjoy"}
        return client.patch(f"/mediastore/gifts/{gift.pk}", {"deliveryDetails": details}, format="json")

    assert [patch(f"a{n}@example.com").status_code for n in range(3)] == [200, 200, 429]
    assert patch("A1@example.com").status_code == 200  # the same address in other letters is no change
    assert patch("a1@example.com").json()["errors"] == []


def test_a_gifter_has_an_hourly_budget_over_all_their_gifts(client, gifter, settings):
    settings.RECIPIENT_CHANGES_PER_GIFT, settings.RECIPIENT_CHANGES_PER_HOUR = 5, 3
    gifts = GiftFactory.create_batch(4, gifter=gifter, status=GiftStatus.UNCLAIMED)
    client.force_login(gifter)
    assert [correct(client, g, "new@example.com").status_code for g in gifts] == [302, 302, 302, 429]
    assert "in the last hour" in correct(client, gifts[3], "new@example.com").content.decode()


def test_support_is_not_limited(settings):
    settings.RECIPIENT_CHANGES_PER_GIFT = 1
    gift = GiftFactory(status=GiftStatus.UNCLAIMED, recipient_changes=1)
    services.gift_change_recipient(gift_id=gift.pk, recipient_email="fixed@example.com", actor="admin:1")
    assert Gift.objects.get(pk=gift.pk).recipient_email == "fixed@example.com"
