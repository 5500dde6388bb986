"""An idempotency key's request fingerprint: repeated parameters keep their order (the last one wins, so
`a=1&a=2` and `a=2&a=1` ask for different things), and a multipart body counts by its fields, not its boundary."""

from urllib.parse import urlencode

import pytest
from django.test.client import encode_multipart

from gifts.tests.merchant import MerchantClient
from giftshop.chargebee import REPLAYED_HEADER

pytestmark = pytest.mark.django_db


def post_form(api, pairs, key):
    body = urlencode(pairs)
    return api.client.post(
        "/api/v2/customers", body, content_type="application/x-www-form-urlencoded", **api.headers(key)
    )


def post_multipart(api, fields, key, boundary):
    body = encode_multipart(boundary, fields)
    content_type = f"multipart/form-data; boundary={boundary}"
    return api.client.post("/api/v2/customers", body, content_type=content_type, **api.headers(key))


def test_repeated_parameters_in_another_order_are_another_request():
    api = MerchantClient()
    first = post_form(api, [("email", "ada@example.com"), ("first_name", "Ada"), ("first_name", "Grace")], "k1")
    assert first.status_code == 200 and first.json()["customer"]["first_name"] == "Grace"

    swapped = post_form(api, [("email", "ada@example.com"), ("first_name", "Grace"), ("first_name", "Ada")], "k1")

    assert swapped.status_code == 422
    assert REPLAYED_HEADER not in swapped


def test_other_parameters_may_come_in_any_order():
    api = MerchantClient()
    first = post_form(api, [("email", "ada@example.com"), ("first_name", "Ada")], "k2")
    again = post_form(api, [("first_name", "Ada"), ("email", "ada@example.com")], "k2")
    assert (again.status_code, again.content, again[REPLAYED_HEADER]) == (200, first.content, "true")


def test_a_multipart_body_is_the_same_request_whatever_its_boundary():
    api = MerchantClient()
    fields = {"email": "ada@example.com", "first_name": "Ada"}
    first = post_multipart(api, fields, "k3", "BoundaryOne")
    again = post_multipart(api, fields, "k3", "AnotherBoundary")
    assert first.status_code == 200
    assert (again.status_code, again.content, again[REPLAYED_HEADER]) == (200, first.content, "true")
    other = post_multipart(api, {**fields, "first_name": "Grace"}, "k3", "BoundaryOne")
    assert other.status_code == 422
