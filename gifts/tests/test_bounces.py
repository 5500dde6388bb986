"""Bounces, the gifter's side: once the ESP's tracking webhook marked a delivery email bounced (emails/tests/
test_bounces.py), the gifter's account and support see the gift as undeliverable, and the gifter's correction
resends the same code."""

import pytest
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from accounts.tests.factories import CustomerFactory
from emails.tests.mailgun import BOUNCED_ADDRESS, START, bounce_of, delivery_of, post_webhook
from gifts import services
from gifts.models import Gift, GiftStatus
from gifts.tests.factories import make_gift

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("mailgun")]


@pytest.fixture
def bounced(client, delivered, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        assert post_webhook(client, bounce_of(delivery_of(delivered))).status_code == 200
    mail.outbox.clear()
    return delivered


def test_the_gifters_gifts_page_shows_the_bounce_with_a_link_to_correct_it(client, bounced, gifter):
    client.force_login(gifter)

    body = client.get(reverse("gifts:gifts")).content.decode()

    assert "<dd>Bounced</dd>" in body
    assert reverse("gifts:correct_recipient", args=[bounced.pk]) in body


def test_the_correction_resends_the_same_code_to_the_new_address(
    client, bounced, gifter, django_capture_on_commit_callbacks
):
    client.force_login(gifter)
    url = reverse("gifts:correct_recipient", args=[bounced.pk])
    assert "could not deliver" in client.get(url).content.decode()
    data = {"recipient_email": "friend@example.org", "recipient_email_again": "Friend@example.org"}

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url, data)

    assert response.status_code == 302 and response["Location"] == reverse("gifts:gifts")
    bounced.refresh_from_db()
    assert bounced.recipient_email == "friend@example.org" and bounced.status == GiftStatus.UNCLAIMED
    [resent] = mail.outbox
    assert resent.to == ["friend@example.org"] and bounced.code in resent.body
    assert delivery_of(bounced).key == f"gift:{bounced.pk}:delivery:resend:1"
    body = client.get(reverse("gifts:gifts")).content.decode()
    assert "<dd>Sent</dd>" in body and "<dd>Bounced</dd>" not in body


def test_the_correction_asks_for_the_same_address_twice(client, bounced, gifter):
    client.force_login(gifter)
    data = {"recipient_email": "friend@example.org", "recipient_email_again": "fiend@example.org"}

    response = client.post(reverse("gifts:correct_recipient", args=[bounced.pk]), data)

    assert response.status_code == 200 and "The two email addresses are different." in response.content.decode()
    assert Gift.objects.get(pk=bounced.pk).recipient_email == BOUNCED_ADDRESS and mail.outbox == []


def test_the_correction_page_is_404_for_another_gifter_and_refuses_forged_posts(client, bounced):
    client.force_login(CustomerFactory())
    url = reverse("gifts:correct_recipient", args=[bounced.pk])
    data = {"recipient_email": "thief@example.org", "recipient_email_again": "thief@example.org"}

    assert client.get(url).status_code == 404
    assert client.post(url, data).status_code == 404
    assert Gift.objects.get(pk=bounced.pk).recipient_email == BOUNCED_ADDRESS and mail.outbox == []


def test_the_correction_page_needs_a_login_and_a_csrf_token(bounced, gifter):
    from django.test import Client

    url = reverse("gifts:correct_recipient", args=[bounced.pk])
    data = {"recipient_email": "friend@example.org", "recipient_email_again": "friend@example.org"}
    assert Client().get(url).status_code == 302
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(gifter)
    assert strict.post(url, data).status_code == 403
    assert Gift.objects.get(pk=bounced.pk).recipient_email == BOUNCED_ADDRESS


def test_the_admins_undeliverable_filter_lists_the_bounced_gift_until_it_is_corrected(client, bounced, gifter):
    other = make_gift(recipient_email="fine@example.com", now=START)
    services.deliver_due_gifts()
    client.force_login(CustomerFactory(is_staff=True, is_superuser=True))
    url = reverse("admin:gifts_gift_changelist")

    body = client.get(url, {"undeliverable": "yes"}).content.decode()

    assert BOUNCED_ADDRESS in body and "fine@example.com" not in body
    services.gift_change_recipient(gift_id=bounced.pk, recipient_email="friend@example.org", actor="test")
    body = client.get(url, {"undeliverable": "yes"}).content.decode()
    assert "friend@example.org" not in body and other.recipient_email not in body


def test_an_expired_gift_is_sent_again_to_a_corrected_address_with_the_same_code_and_a_new_window(
    client, bounced, gifter, django_capture_on_commit_callbacks
):
    services.expire_due_gifts(now=bounced.claim_expiry_date)
    client.force_login(gifter)
    url = reverse("gifts:correct_recipient", args=[bounced.pk])
    data = {"recipient_email": "friend@example.org", "recipient_email_again": "friend@example.org"}
    assert client.get(url).status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(url, data).status_code == 302
    gift = Gift.objects.get(pk=bounced.pk)
    assert gift.status == "unclaimed" and gift.recipient_email == "friend@example.org"
    assert gift.claim_expiry_date > timezone.now() and gift.expired_at is None
    assert list(gift.timeline.order_by("pk").values_list("status", flat=True))[-2:] == ["expired", "unclaimed"]
    resent = [m for m in mail.outbox if m.to == ["friend@example.org"]]
    assert len(resent) == 1 and gift.code in resent[0].body
    redeemed = services.gift_redeem(customer=CustomerFactory(email="friend@example.org"), code=gift.code)
    assert redeemed.gift.status == "claimed"
