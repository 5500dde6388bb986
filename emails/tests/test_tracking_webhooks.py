"""The ESPs' tracking webhooks exist only with a webhook secret: without one, anymail would take unsigned posts and
anyone could mark a delivery bounced (and email the gifter) by guessing an email key."""

import base64
import json
import warnings

import pytest
from django.core import mail

from emails.models import Email
from gifts import services
from gifts.tests.factories import make_gift

pytestmark = pytest.mark.django_db

SECRET = "anymail-user:anymail-webhook-password"


def postmark_bounce(email):
    return {
        "RecordType": "Bounce",
        "Type": "HardBounce",
        "TypeCode": 1,
        "MessageID": "00000000-0000-0000-0000-000000000000",
        "Email": email.to_email,
        "Metadata": {"email_key": email.key},
        "Description": "The server was unable to deliver your message (ex: unknown user, mailbox not found).",
        "BouncedAt": "2026-12-04T10:00:00Z",
    }


@pytest.fixture
def delivery():
    make_gift(recipient_email="robin@example.com")
    assert services.deliver_due_gifts() == 1
    mail.outbox.clear()
    return Email.objects.get(kind=Email.Kind.GIFT_DELIVERY)


def post(client, payload, auth=None):
    headers = {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(auth.encode()).decode()} if auth else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # anymail's own "insecure webhook" warning, the hole this file closes
        body = json.dumps(payload)
        return client.post("/anymail/postmark/tracking/", body, content_type="application/json", **headers)


def test_without_a_webhook_secret_the_tracking_webhooks_do_not_exist(client, settings, delivery):
    settings.ANYMAIL = {}
    response = post(client, postmark_bounce(delivery))
    assert response.status_code == 404
    delivery.refresh_from_db()
    assert delivery.status == Email.Status.SENT
    assert mail.outbox == []


def test_with_a_secret_an_unsigned_post_is_refused_and_a_signed_one_is_taken(client, settings, delivery):
    settings.ANYMAIL = {"WEBHOOK_SECRET": SECRET}
    assert post(client, postmark_bounce(delivery)).status_code == 400
    assert post(client, postmark_bounce(delivery), auth="anymail-user:guess").status_code == 400
    delivery.refresh_from_db()
    assert delivery.status == Email.Status.SENT
    assert post(client, postmark_bounce(delivery), auth=SECRET).status_code == 200
    delivery.refresh_from_db()
    assert delivery.status == Email.Status.BOUNCED
