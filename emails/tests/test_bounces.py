"""Bounces: Mailgun's tracking webhook (a recorded permanent-failure payload, signed here with the test's key) marks
the delivery email bounced and, through the gifts app's hook, asks the gifter once to correct the address; forged,
duplicate, temporary and unknown events change nothing. (The gifter's correction: gifts/tests/test_bounces.py.)"""

import json

import pytest
from django.core import mail
from django.urls import reverse

from emails.models import Email
from emails.tests.mailgun import (
    BOUNCED_ADDRESS,
    MESSAGE_ID,
    RECORDED,
    bounce_of,
    delivery_of,
    post_webhook,
    signed,
)
from gifts.models import GiftStatus
from giftshop.models import Event

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("mailgun")]


def notices_to(address):
    return [m for m in mail.outbox if m.to == [address] and m.subject == "We could not deliver your gift"]


def snapshot(gift):
    return (
        sorted(Email.objects.filter(gift=gift).values_list("key", "status")),
        Event.objects.filter(gift=gift).count(),
        len(mail.outbox),
    )


def test_it_records_the_esps_message_id_of_the_delivery_email(delivered):
    email = delivery_of(delivered)
    assert email.status == Email.Status.SENT and email.provider_message_id == MESSAGE_ID


def test_a_signed_bounce_marks_the_delivery_bounced_and_asks_the_gifter_once_to_correct_the_address(
    client, delivered, gifter, django_capture_on_commit_callbacks
):
    email = delivery_of(delivered)

    with django_capture_on_commit_callbacks(execute=True):
        response = post_webhook(client, bounce_of(email))

    assert response.status_code == 200
    email.refresh_from_db()
    assert email.status == Email.Status.BOUNCED and "does not exist" in email.last_error
    [notice] = notices_to(gifter.email)
    correct_path = reverse("gifts:correct_recipient", args=[delivered.pk])
    body, html = notice.body, notice.alternatives[0][0]
    assert f"We could not deliver your gift of {delivered.offer.title} to {BOUNCED_ADDRESS}" in body
    assert correct_path in body and correct_path in html
    assert Email.objects.get(key=f"gift:{delivered.pk}:bounced:{email.pk}").status == Email.Status.SENT
    assert Event.objects.filter(gift=delivered, event_type="gift_updated").count() == 1
    delivered.refresh_from_db()
    assert delivered.status == GiftStatus.UNCLAIMED  # the code still works, for the right person


def test_a_duplicate_webhook_changes_nothing(client, delivered, gifter, django_capture_on_commit_callbacks):
    payload = bounce_of(delivery_of(delivered))
    with django_capture_on_commit_callbacks(execute=True):
        assert post_webhook(client, payload).status_code == 200
    before = snapshot(delivered)

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        assert post_webhook(client, payload).status_code == 200  # answered 2xx, or the ESP retries for days

    assert snapshot(delivered) == before and callbacks == []
    assert len(notices_to(gifter.email)) == 1


def test_it_finds_the_email_by_message_id_when_the_esp_echoes_no_metadata(client, delivered, gifter):
    payload = bounce_of(delivery_of(delivered))
    payload["event-data"]["user-variables"] = {}

    assert post_webhook(client, signed(payload)).status_code == 200

    assert delivery_of(delivered).status == Email.Status.BOUNCED
    assert Email.objects.filter(kind=Email.Kind.GIFT_BOUNCED, gift=delivered, to_email=gifter.email).count() == 1


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda p: signed(p, key="someone-elses-key"), id="signed with another key"),
        pytest.param(lambda p: {**p, "signature": {**p["signature"], "token": "f" * 50}}, id="token changed"),
        pytest.param(lambda p: {k: v for k, v in p.items() if k != "signature"}, id="unsigned"),
    ],
)
def test_it_refuses_a_wrongly_signed_webhook_and_changes_nothing(client, delivered, tamper):
    before = snapshot(delivered)

    response = post_webhook(client, tamper(bounce_of(delivery_of(delivered))))

    assert response.status_code in (400, 403)
    assert snapshot(delivered) == before


@pytest.mark.parametrize("auth", [None, "anymail-user:wrong-password"], ids=["no basic auth", "wrong password"])
def test_it_refuses_a_correctly_signed_webhook_without_the_basic_auth_secret(client, delivered, auth):
    before = snapshot(delivered)

    response = post_webhook(client, bounce_of(delivery_of(delivered)), auth=auth)

    assert response.status_code in (400, 403)
    assert snapshot(delivered) == before


def test_a_temporary_failure_is_not_a_bounce(client, delivered):
    # Mailgun keeps retrying a temporary failure; anymail calls it "deferred".
    payload = bounce_of(delivery_of(delivered), severity="temporary", reason="generic")
    before = snapshot(delivered)

    assert post_webhook(client, payload).status_code == 200

    assert snapshot(delivered) == before


def test_a_bounce_of_an_email_we_never_sent_is_acknowledged_and_ignored(client, delivered):
    payload = json.loads(json.dumps(RECORDED))
    payload["event-data"]["message"]["headers"]["message-id"] = "20260101000000.1.UNKNOWN@mg.giftshop.example"
    before = snapshot(delivered)

    assert post_webhook(client, signed(payload)).status_code == 200

    assert snapshot(delivered) == before
