"""Mailgun's tracking webhook, as the bounce tests post it: a recorded permanent-failure payload, signed here with
the test's key, and anymail's test ESP answering with Mailgun-style message ids. Use it with the `mailgun` fixture
(`settings.EMAIL_BACKEND = "emails.tests.mailgun.MailgunLikeBackend"` and `settings.ANYMAIL = ANYMAIL`); the bounce
tests of both sides (emails' webhook, the gifts app's correction) start from the `delivered` gift."""

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from anymail.backends.test import EmailBackend as AnymailTestBackend
from django.core import mail

from accounts.tests.factories import CustomerFactory
from emails.models import Email
from gifts import services
from gifts.tests.factories import make_gift

START = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
RECORDED = json.loads((Path(__file__).parent / "data" / "mailgun_permanent_failure.json").read_text())
BOUNCED_ADDRESS = RECORDED["event-data"]["recipient"]
# What Mailgun's send API answered for the delivery email the recording is about (anymail keeps the <>).
MESSAGE_ID = f"<{RECORDED['event-data']['message']['headers']['message-id']}>"
SIGNING_KEY = "key-test-mailgun-webhook-signing-key"
BASIC_AUTH = "anymail-user:anymail-webhook-password"
ANYMAIL = {"WEBHOOK_SECRET": BASIC_AUTH, "MAILGUN_WEBHOOK_SIGNING_KEY": SIGNING_KEY}
WEBHOOK = "/anymail/mailgun/tracking/"


class MailgunLikeBackend(AnymailTestBackend):
    """anymail's test ESP, answering with Mailgun-style message ids: the recorded one for the recorded address."""

    def get_esp_message_id(self, message):
        if message.to == [BOUNCED_ADDRESS]:
            return MESSAGE_ID
        return f"<{START:%Y%m%d%H%M%S}.{len(mail.outbox)}.TEST@mg.giftshop.example>"


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
def mailgun(settings):
    settings.EMAIL_BACKEND = "emails.tests.mailgun.MailgunLikeBackend"
    settings.ANYMAIL = ANYMAIL


@pytest.fixture
def gifter():
    return CustomerFactory(email="gifter@example.com")


@pytest.fixture
def delivered(mailgun, gifter, time_machine):
    """A gift delivered at START to an address that does not exist (the ESP accepted the message)."""
    time_machine.move_to(START, tick=False)
    gift = make_gift(gifter=gifter, recipient_email=BOUNCED_ADDRESS, now=START)
    assert services.deliver_due_gifts() == 1
    mail.outbox.clear()
    return gift


def delivery_of(gift):
    return Email.objects.filter(gift=gift, kind=Email.Kind.GIFT_DELIVERY).latest("pk")
