"""Helpers for the storefront (MediaStore) HTTP tests: an API client per customer, and the error envelope."""

from django.conf import settings
from rest_framework.test import APIClient

from giftshop.mediastore import issue_jwt

PASSWORD = "a-long-Passw0rd!"


def publisher_id():
    return settings.GIFTSHOP_PUBLISHER_ID


def client_for(customer):
    """An API client carrying a fresh JWT of `customer`, as a storefront front end holds after login."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {issue_jwt(customer)}")
    return client


def register(email, password=PASSWORD, **fields):
    """Registers over HTTP: (an authorised client, the customer id, the whole responseData)."""
    response = APIClient().post(
        "/mediastore/customers",
        {"email": email, "password": password, "publisherId": publisher_id(), **fields},
        format="json",
    )
    assert response.status_code == 200, response.json()
    data = response.json()["responseData"]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {data['jwt']}")
    return client, data["customerId"], data


def assert_error(response, status, code=None):
    """The response is an error of `status` in the storefront envelope (with the top-level `code`, if given);
    returns its body."""
    assert response.status_code == status, (response.status_code, response.content)
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert "responseData" in body
    assert isinstance(body["errors"], list) and body["errors"], body
    assert all(isinstance(message, str) and message for message in body["errors"]), body
    if code is not None:
        assert body.get("code") == code, body
    return body


def data_of(response, status=200):
    """The responseData of a successful response (which has an empty `errors` list)."""
    assert response.status_code == status, (response.status_code, response.content)
    body = response.json()
    assert body["errors"] == [], body
    return body["responseData"]
