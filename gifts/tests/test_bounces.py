"""Bounces: Mailgun's tracking webhook (a recorded permanent-failure payload, signed here with the test's key) marks
the delivery email bounced and asks the gifter, once, to correct the address; the gifter's correction resends the
same code; support and the gifter's account see the gift as undeliverable until then."""

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from anymail.backends.test import EmailBackend as AnymailTestBackend
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from accounts.tests.factories import CustomerFactory
from gifts import services, support
from gifts.models import Email, Event, Gift, GiftStatus
from gifts.tests.factories import make_gift

pytestmark = pytest.mark.django_db

START = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
RECORDED = json.loads((Path(__file__).parent / "data" / "mailgun_permanent_failure.json").read_text())
BOUNCED_ADDRESS = RECORDED["event-data"]["recipient"]
# What Mailgun's send API answered for the delivery email the recording is about (anymail keeps the <>).
MESSAGE_ID = f"<{RECORDED['event-data']['message']['headers']['message-id']}>"
SIGNING_KEY = "key-test-mailgun-webhook-signing-key"
BASIC_AUTH = "anymail-user:anymail-webhook-password"
WEBHOOK = "/anymail/mailgun/tracking/"


class MailgunLikeBackend(AnymailTestBackend):
    """anymail's test ESP, answering with Mailgun-style message ids: the recorded one for the recorded address."""

    def get_esp_message_id(self, message):
        if message.to == [BOUNCED_ADDRESS]:
            return MESSAGE_ID
        return f"<{START:%Y%m%d%H%M%S}.{len(mail.outbox)}.TEST@mg.giftshop.example>"


@pytest.fixture(autouse=True)
def mailgun(settings):
    settings.EMAIL_BACKEND = "gifts.tests.test_bounces.MailgunLikeBackend"
    settings.ANYMAIL = {"WEBHOOK_SECRET": BASIC_AUTH, "MAILGUN_WEBHOOK_SIGNING_KEY": SIGNING_KEY}


def signed(payload, *, key=SIGNING_KEY):
    """The payload with its `signature` block computed as Mailgun does: HMAC-SHA256(key, timestamp + token)."""
    payload = json.loads(json.dumps(payload))
    block = payload["signature"]
    block["signature"] = hmac.new(
        key.encode(), f"{block['timestamp']}{block['token']}".encode(), hashlib.sha256
    ).hexdigest()
    return payload


def bounce_of(email, **changes):
    """The recorded payload as Mailgun sends it for `email`: the metadata we sent comes back in user-variables."""
    payload = json.loads(json.dumps(RECORDED))
    payload["event-data"]["user-variables"] = {"email_key": email.key}
    payload["event-data"].update(changes)
    return signed(payload)


def post_webhook(client, payload, *, auth=BASIC_AUTH):
    headers = {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(auth.encode()).decode()} if auth else {}
    return client.post(WEBHOOK, data=json.dumps(payload), content_type="application/json", **headers)


@pytest.fixture
def gifter():
    return CustomerFactory(email="gifter@example.com")


@pytest.fixture
def delivered(gifter, time_machine):
    """A gift delivered at START to an address that does not exist (the ESP accepted the message)."""
    time_machine.move_to(START, tick=False)
    gift = make_gift(gifter=gifter, recipient_email=BOUNCED_ADDRESS, now=START)
    assert services.deliver_due_gifts() == 1
    mail.outbox.clear()
    return gift


def delivery_of(gift):
    return Email.objects.filter(gift=gift, kind=Email.Kind.GIFT_DELIVERY).latest("pk")


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


@pytest.fixture
def bounced(client, delivered, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        assert post_webhook(client, bounce_of(delivery_of(delivered))).status_code == 200
    mail.outbox.clear()
    return delivered


def test_the_gifters_gifts_page_shows_the_bounce_with_a_link_to_correct_it(client, bounced, gifter):
    client.force_login(gifter)

    body = client.get(reverse("accounts:gifts")).content.decode()

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

    assert response.status_code == 302 and response["Location"] == reverse("accounts:gifts")
    bounced.refresh_from_db()
    assert bounced.recipient_email == "friend@example.org" and bounced.status == GiftStatus.UNCLAIMED
    [resent] = mail.outbox
    assert resent.to == ["friend@example.org"] and bounced.code in resent.body
    assert delivery_of(bounced).key == f"gift:{bounced.pk}:delivery:resend:1"
    body = client.get(reverse("accounts:gifts")).content.decode()
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
    support.gift_change_recipient(gift_id=bounced.pk, recipient_email="friend@example.org", actor="test")
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
