"""Hostile input gets a 4xx in the contract's error shape, never a 500 (issue 11, item 9)."""

import json

import pytest
from django.test import Client

from gifts.tests.merchant import MerchantClient

pytestmark = pytest.mark.django_db

DEEP = "[" * 3000 + "]" * 3000


@pytest.mark.parametrize("path", ["/mediastore/auths", "/mediastore/customers", "/mediastore/auths/refresh_token"])
def test_json_nested_3000_deep_is_refused_like_any_malformed_body(path):
    malformed = Client().post(path, "{not json", content_type="application/json")
    response = Client().post(path, DEEP, content_type="application/json")
    assert response.status_code == malformed.status_code == 422
    assert response.json()["code"] == "REQ0001" and response.json()["errors"]


def test_json_nested_3000_deep_is_a_400_in_chargebees_shape():
    api = MerchantClient()
    response = api.client.post("/api/v2/customers", DEEP, content_type="application/json", **api.headers(None))
    assert response.status_code == 400
    assert response.json()["api_error_code"] in {"param_wrong_value", "invalid_request"}
    assert json.loads(response.content)["http_status_code"] == 400
