"""Helpers for tests of the merchant API (Chargebee API v2 contract): API keys, a client that posts form-encoded
bracket notation with HTTP Basic auth as Chargebee's clients do, gifters with a card, and Chargebee's error shape."""

import base64
import uuid
from urllib.parse import urlencode

from django.test import Client

from accounts.models import Customer, PaymentMethod
from giftshop.services import api_key_create

ERROR_FIELDS = {"message", "api_error_code", "error_code", "error_msg", "http_status_code"}
ERROR_TYPES = {"invalid_request", "payment", "operation_failed"}


def new_api_key(kind="full"):
    return api_key_create(name=f"back office {uuid.uuid4().hex[:8]}", kind=kind)[1]


def basic_auth(raw_key):
    return "Basic " + base64.b64encode(f"{raw_key}:".encode()).decode()


class MerchantClient:
    """Django's test client speaking to /api/v2/ with one API key."""

    def __init__(self, raw_key=None, **client_options):
        self.raw_key = new_api_key() if raw_key is None else raw_key
        self.client = Client(**client_options)

    def headers(self, idempotency_key=None):
        headers = {"HTTP_AUTHORIZATION": basic_auth(self.raw_key)} if self.raw_key else {}
        if idempotency_key is not None:
            headers["HTTP_CHARGEBEE_IDEMPOTENCY_KEY"] = idempotency_key
        return headers

    def post(self, path, params=None, *, idempotency_key=None):
        return self.client.post(
            f"/api/v2/{path}",
            urlencode(params or {}),
            content_type="application/x-www-form-urlencoded",
            **self.headers(idempotency_key),
        )

    def get(self, path, params=None, *, idempotency_key=None):
        return self.client.get(f"/api/v2/{path}", params or {}, **self.headers(idempotency_key))


def gifter_with_card(outcome="success", email=None):
    """A password-less customer (quick to make) whose default card the sandbox gateway answers with `outcome`
    (success, card_declined, insufficient_funds)."""
    customer = Customer.objects.create_user(email or f"gifter-{uuid.uuid4().hex[:10]}@example.com")
    PaymentMethod.objects.create(
        customer=customer,
        token=f"tok_sandbox_{outcome}_{uuid.uuid4().hex[:16]}",
        brand="Visa",
        last4="4242",
        exp_month=12,
        exp_year=2030,
        is_default=True,
    )
    return customer


def gift_params(gifter, offer, **extra):
    """The form of POST /gifts, in bracket notation; `extra` adds or replaces keys (None drops one)."""
    params = {
        "gifter[customer_id]": gifter.pk,
        "gifter[signature]": "Gina",
        "gift_receiver[email]": "friend@example.com",
        "gift_receiver[first_name]": "Rita",
        "gift_receiver[last_name]": "Receiver",
        "subscription[plan_id]": offer.long_id,
    }
    params.update(extra)
    return {key: value for key, value in params.items() if value is not None}


def assert_error(response, status, api_error_code, param=None):
    """A JSON error in Chargebee's shape; returns its body."""
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) >= ERROR_FIELDS, body
    assert (body["http_status_code"], body["api_error_code"]) == (status, api_error_code), body
    assert body["message"] and body["error_msg"] == body["message"]
    assert body.get("type", "invalid_request") in ERROR_TYPES
    if param is not None:
        assert body.get("param") == param, body
    return body


def assert_every_object_is_typed(body):
    """Every resource in a response, and every object nested in one, carries Chargebee's `object` key."""
    entries = body.get("list", [body])
    for entry in entries:
        for resource in entry.values():
            _assert_typed(resource)


def _assert_typed(node):
    assert "object" in node, node
    for key, value in node.items():
        if key in ("meta_data", "content"):  # free-form JSON (meta_data), or an event's payload of resources
            continue
        children = value if isinstance(value, list) else [value]
        for child in children:
            if isinstance(child, dict):
                _assert_typed(child)
