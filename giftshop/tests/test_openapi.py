"""The storefront API's OpenAPI schema: generated without warnings, valid, and describing what clients need
(where the API lives, the bearer JWT, the error responses); and its docs page renders."""

import json
import subprocess
import sys

import pytest
from django.conf import settings
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db
PUBLIC_OPERATIONS = {
    ("post", "/auths"),
    ("post", "/auths/refresh_token"),
    ("post", "/customers"),
    ("get", "/v2/offers/{offer_id}"),
    # What Cleeng's SDK asks before anyone logs in (accounts/tests/test_mediastore_sdk.py).
    ("get", "/locales"),
    ("put", "/customers/passwords"),
    ("get", "/publishers/{publisher_id}/consents"),
    ("get", "/offers"),
}
METHODS = {"get", "post", "put", "patch", "delete"}


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    """The schema as `manage.py spectacular` writes it, failing on any warning and validating the result."""
    target = tmp_path_factory.mktemp("openapi") / "mediastore.json"
    command = [
        sys.executable,
        "manage.py",
        "spectacular",
        "--urlconf",
        "giftshop.mediastore_urls",
        "--validate",
        "--fail-on-warn",
        "--format",
        "openapi-json",
        "--file",
        str(target),
    ]
    result = subprocess.run(command, cwd=settings.BASE_DIR, capture_output=True, text=True, timeout=120, check=False)
    return result, target


@pytest.fixture
def schema():
    response = APIClient().get("/mediastore/schema", {"format": "json"})
    assert response.status_code == 200, response.content
    return json.loads(response.content)


def operations(schema):
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            if method in METHODS:
                yield method, path, operation


def test_the_management_command_generates_a_valid_schema_without_warnings(generated):
    result, target = generated
    assert result.returncode == 0, result.stderr
    assert "warning" not in result.stderr.lower(), result.stderr
    assert "error" not in result.stderr.lower(), result.stderr
    written = json.loads(target.read_text())
    assert written["openapi"].startswith("3.")
    assert "/gifts/redeem/{code}" in written["paths"]


def test_the_served_schema_is_the_generated_one_and_says_where_the_api_lives(generated, schema):
    _result, target = generated
    assert schema["paths"] == json.loads(target.read_text())["paths"]
    # Paths are relative to the storefront's mount point, so a client (or the docs' "Try it out") needs it.
    assert [server["url"] for server in schema.get("servers", [])] == ["/mediastore"]


def test_it_documents_the_bearer_jwt_and_requires_it_except_on_public_operations(schema):
    assert schema["components"]["securitySchemes"]["customerJWT"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
    }
    assert "security" not in schema  # no global default: each operation says what it needs
    for method, path, operation in operations(schema):
        if (method, path) in PUBLIC_OPERATIONS:
            assert not any(operation.get("security") or [{}]), (method, path)
        else:
            assert operation.get("security") == [{"customerJWT": []}], (method, path)
            assert "401" in operation["responses"], (method, path)


def test_it_documents_404_for_every_object_in_a_path_and_422_for_every_body(schema):
    for method, path, operation in operations(schema):
        responses = operation["responses"]
        if "{" in path:
            assert "404" in responses, (method, path)
        if operation.get("requestBody"):
            assert "422" in responses, (method, path)


def test_the_documented_errors_have_the_envelope_shape(schema):
    envelope = schema["components"]["schemas"]["MediaStoreError"]
    assert set(envelope["required"]) == {"responseData", "errors"}
    assert envelope["properties"]["errors"] == {"type": "array", "items": {"type": "string"}}
    assert "code" in envelope["properties"]
    not_found = schema["paths"]["/gifts/{gift_id}"]["get"]["responses"]["404"]
    assert not_found["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/MediaStoreError"}


def component(schema, ref_holder):
    return schema["components"]["schemas"][ref_holder["$ref"].rsplit("/", 1)[1]]


def test_every_success_response_documents_its_response_data(schema):
    for method, path, operation in operations(schema):
        success = next(body for status, body in operation["responses"].items() if status.startswith("2"))
        envelope = component(schema, success["content"]["application/json"]["schema"])
        assert {"responseData", "errors"} <= set(envelope["required"]), (method, path)


def test_redeem_refusals_document_the_verification_body(schema):
    responses = schema["paths"]["/gifts/redeem/{code}"]["post"]["responses"]
    assert {"200", "400", "401", "404", "409", "410", "429"} <= set(responses)
    for status in ("409", "410"):
        refused = component(schema, responses[status]["content"]["application/json"]["schema"])
        verification = component(schema, refused["properties"]["responseData"])
        assert {"redeemable", "redeemMode", "redeemRefusalReason"} <= set(verification["properties"])


def test_the_docs_page_renders():
    response = APIClient().get("/mediastore/docs")
    assert response.status_code == 200
    assert "text/html" in response["Content-Type"]
    # Swagger UI's start-up script is served apart from the page (no inline script under the CSP); it names the schema.
    assert '<script src="/mediastore/docs?script=">' in response.content.decode()
    assert "/mediastore/schema" in APIClient().get("/mediastore/docs?script=").content.decode()


def test_the_merchant_api_schema_generates_without_warnings_and_documents_idempotency(tmp_path, client):
    target = tmp_path / "merchant.json"
    command = [
        sys.executable,
        "manage.py",
        "spectacular",
        "--urlconf",
        "giftshop.merchant_urls",
        "--validate",
        "--fail-on-warn",
        "--format",
        "openapi-json",
        "--file",
        str(target),
    ]
    result = subprocess.run(command, cwd=settings.BASE_DIR, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    schema = json.loads(target.read_text())
    create = schema["paths"]["/gifts"]["post"]
    assert {"400", "401", "404", "409", "422", "429"} <= set(create["responses"])
    assert any(p["name"] == "chargebee-idempotency-key" for p in create["parameters"])
    assert schema["components"]["securitySchemes"]["apiKey"]["scheme"] == "basic"
    assert client.get("/api/v2/docs").status_code == 200
