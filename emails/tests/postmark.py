"""Postmark's tracking webhooks as its documentation shows them (developer docs, "Webhooks": Delivery, Open, Click
and SpamComplaint), for the tracking tests of both sides: the email timed (emails/tests/test_tracking.py) and the
gift's path on "My gifts" (gifts/tests/test_gift_path.py). Posted to anymail's Postmark tracking URL with the
webhook's Basic secret, as Postmark sends them."""

import base64
import json

import pytest

BASIC_AUTH = "anymail-user:anymail-webhook-password"
WEBHOOK = "/anymail/postmark/tracking/"
MESSAGE_ID = "883953f4-6105-42a2-a16a-77a8eac79483"


def _common(email, record_type):
    return {
        "RecordType": record_type,
        "MessageStream": "outbound",
        "MessageID": email.provider_message_id or MESSAGE_ID,
        "Tag": "",
        "Metadata": {"email_key": email.key},
    }


def delivery(email, at):
    return {
        **_common(email, "Delivery"),
        "ServerID": 23,
        "Recipient": email.to_email,
        "DeliveredAt": at,
        "Details": "smtp;250 2.0.0 OK  1607603311 a1si1234567qkj.123 - gsmtp",
    }


def open_(email, at):
    return {
        **_common(email, "Open"),
        "FirstOpen": True,
        "Client": {"Name": "Chrome 35.0.1916.153", "Company": "Google", "Family": "Chrome"},
        "OS": {"Name": "OS X 10.7 Lion", "Company": "Apple Computer, Inc.", "Family": "OS X 10"},
        "Platform": "WebMail",
        "UserAgent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_7_5) AppleWebKit/537.36 Chrome/35.0.1916.153",
        "ReadSeconds": 5,
        "Geo": {"CountryISOCode": "RS", "Country": "Serbia", "City": "Novi Sad", "IP": "188.2.95.4"},
        "ReceivedAt": at,
        "Recipient": email.to_email,
    }


def click(email, at):
    return {
        **_common(email, "Click"),
        "ClickLocation": "HTML",
        "Client": {"Name": "Chrome 35.0.1916.153", "Company": "Google", "Family": "Chrome"},
        "OS": {"Name": "OS X 10.7 Lion", "Company": "Apple Computer, Inc.", "Family": "OS X 10"},
        "Platform": "Desktop",
        "UserAgent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_7_5) AppleWebKit/537.36 Chrome/35.0.1916.153",
        "OriginalLink": "https://giftshop.example/gifts/redeem/",
        "Geo": {"CountryISOCode": "RS", "Country": "Serbia", "City": "Novi Sad", "IP": "188.2.95.4"},
        "ReceivedAt": at,
        "Recipient": email.to_email,
    }


def spam_complaint(email, at):
    return {
        **_common(email, "SpamComplaint"),
        "ID": 42,
        "Type": "SpamComplaint",
        "TypeCode": 512,
        "Name": "Spam complaint",
        "ServerID": 1234,
        "Description": "The subscriber explicitly marked this message as spam.",
        "Details": "Test spam complaint details",
        "Email": email.to_email,
        "From": "gifts@giftshop.example",
        "BouncedAt": at,
        "DumpAvailable": True,
        "Inactive": True,
        "CanActivate": False,
        "Subject": "You've received a gift",
    }


def post_event(client, payload, *, auth=BASIC_AUTH):
    headers = {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(auth.encode()).decode()}
    return client.post(WEBHOOK, data=json.dumps(payload), content_type="application/json", **headers)


@pytest.fixture
def postmark_webhooks(settings):
    settings.ANYMAIL = {"WEBHOOK_SECRET": BASIC_AUTH}
