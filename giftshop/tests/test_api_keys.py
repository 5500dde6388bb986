"""Merchant API keys: created by a command or in admin, shown once, stored as a SHA-256 only, revocable; they are
the HTTP Basic username of the Chargebee-compatible API, whose failures answer in Chargebee's error shape."""

import base64
import hashlib
import io
import re
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.urls import reverse

from accounts.models import Customer
from giftshop.models import ApiKey
from giftshop.services import api_key_create
from offers.tests.factories import OfferFactory

pytestmark = pytest.mark.django_db

KEY_IN_MESSAGE = re.compile(r"The new API key is (\S+) ")


def basic(username, password=""):
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


def get(client, path, key=None, **params):
    headers = {"HTTP_AUTHORIZATION": basic(key)} if key else {}
    return client.get(f"/api/v2/{path}", params, **headers)


def create_key(*args):
    out = io.StringIO()
    call_command("create_api_key", *args, stdout=out)
    return out.getvalue()


def assert_stored_as_hash_only(api_key, raw):
    row = ApiKey.objects.filter(pk=api_key.pk).values().get()
    assert row["key_digest"] == hashlib.sha256(raw.encode()).hexdigest()
    assert not [column for column, value in row.items() if raw in str(value)]
    assert raw.startswith(row["prefix"]) and len(row["prefix"]) < len(raw) // 2


@pytest.fixture
def admin_client(client):
    client.force_login(Customer.objects.create_superuser("admin@example.com"))
    return client


# --- the command --------------------------------------------------------------------------------------------


def test_create_api_key_prints_the_key_once_and_stores_only_its_hash(client):
    output = create_key("back office")

    api_key = ApiKey.objects.get()
    raw = output.strip().splitlines()[-1]
    assert api_key.name == "back office" and api_key.kind == ApiKey.Kind.FULL
    assert output.count(raw) == 1 and "shown once" in output
    assert_stored_as_hash_only(api_key, raw)

    response = get(client, "plans", raw)
    assert response.status_code == 200 and response.json() == {"list": []}
    api_key.refresh_from_db()
    assert api_key.last_used_at is not None


def test_each_key_is_different():
    first = create_key("one").strip().splitlines()[-1]
    second = create_key("two").strip().splitlines()[-1]
    assert first != second
    assert ApiKey.objects.count() == 2


def test_a_read_only_key_reads_but_gets_403_on_writes(client):
    output = create_key("reporting", "--read-only")
    raw = output.strip().splitlines()[-1]
    assert ApiKey.objects.get().kind == ApiKey.Kind.READ_ONLY and "Read-only" in output

    assert get(client, "plans", raw).status_code == 200
    refused = client.post(
        "/api/v2/customers",
        "email=new%40example.com",
        content_type="application/x-www-form-urlencoded",
        HTTP_AUTHORIZATION=basic(raw),
    )

    assert refused.status_code == 403
    assert refused.json()["api_error_code"] == "api_authorization_failed"
    assert refused.json()["http_status_code"] == 403
    assert not Customer.objects.filter(email="new@example.com").exists()


def test_a_full_key_may_write(client):
    _, raw = api_key_create(name="back office")
    created = client.post(
        "/api/v2/customers",
        "email=new%40example.com",
        content_type="application/x-www-form-urlencoded",
        HTTP_AUTHORIZATION=basic(raw),
    )
    assert created.status_code == 200 and created.json()["customer"]["email"] == "new@example.com"


# --- admin --------------------------------------------------------------------------------------------------


def test_a_key_created_in_admin_is_shown_once_in_a_message_and_stored_as_a_hash(admin_client, client):
    response = admin_client.post(
        reverse("admin:giftshop_apikey_add"),
        {"name": "warehouse", "kind": "full", "revoked_at_0": "", "revoked_at_1": ""},
        follow=True,
    )

    assert response.status_code == 200
    raw = KEY_IN_MESSAGE.search(response.content.decode())[1]
    api_key = ApiKey.objects.get()
    assert api_key.name == "warehouse" and raw.startswith(api_key.prefix)
    assert_stored_as_hash_only(api_key, raw)
    assert raw not in admin_client.get(reverse("admin:giftshop_apikey_changelist")).content.decode()
    assert raw not in admin_client.get(reverse("admin:giftshop_apikey_change", args=[api_key.pk])).content.decode()
    assert get(client, "plans", raw).status_code == 200


def test_a_key_created_read_only_in_admin_cannot_write(admin_client, client):
    response = admin_client.post(
        reverse("admin:giftshop_apikey_add"),
        {"name": "reports", "kind": "read_only", "revoked_at_0": "", "revoked_at_1": ""},
        follow=True,
    )
    raw = KEY_IN_MESSAGE.search(response.content.decode())[1]
    assert ApiKey.objects.get().kind == ApiKey.Kind.READ_ONLY
    assert get(client, "plans", raw).status_code == 200
    assert client.post("/api/v2/customers", {"email": "x@example.com"}, HTTP_AUTHORIZATION=basic(raw)).status_code == (
        403
    )


def test_the_admin_revoke_action_makes_the_key_fail_with_401(admin_client, client):
    revoked, revoked_raw = api_key_create(name="leaked")
    kept, kept_raw = api_key_create(name="kept")
    assert get(client, "plans", revoked_raw).status_code == 200

    response = admin_client.post(
        reverse("admin:giftshop_apikey_changelist"), {"action": "revoke", "_selected_action": [revoked.pk]}
    )

    assert response.status_code == 302
    revoked.refresh_from_db()
    kept.refresh_from_db()
    assert revoked.revoked_at is not None and kept.revoked_at is None
    refused = get(client, "plans", revoked_raw)
    assert refused.status_code == 401 and refused.json()["api_error_code"] == "api_authentication_failed"
    assert get(client, "plans", kept_raw).status_code == 200


# --- authentication failures --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "",
        "Basic",
        "Basic " + base64.b64encode(b"gs_live_not-a-real-key:").decode(),
        "Basic " + base64.b64encode(b":").decode(),
        "Basic %%%-not-base64-%%%",
        "Basic " + base64.b64encode(b"\xff\xfe\xfd:").decode(),
        "Bearer some.jwt.token",
        "Digest username=someone",
    ],
    ids=[
        "missing",
        "empty",
        "no-credentials",
        "unknown-key",
        "empty-username",
        "garbage",
        "not-utf8",
        "bearer",
        "digest",
    ],
)
def test_a_request_without_a_valid_key_gets_401_in_chargebees_error_shape(client, authorization):
    api_key_create(name="back office")  # a valid key exists; it is just not the one sent
    headers = {"HTTP_AUTHORIZATION": authorization} if authorization is not None else {}

    response = client.get("/api/v2/plans", **headers)

    assert response.status_code == 401
    assert response["Content-Type"].startswith("application/json")
    assert response["WWW-Authenticate"].startswith("Basic")
    body = response.json()
    assert body["api_error_code"] == body["error_code"] == "api_authentication_failed"
    assert body["http_status_code"] == 401
    assert body["message"] == body["error_msg"] and body["message"].startswith("Sorry, authentication failed")
    assert body.get("type", "invalid_request") in ("invalid_request", "payment", "operation_failed")


def test_the_key_sent_as_the_password_instead_of_the_username_is_refused(client):
    _, raw = api_key_create(name="back office")
    response = client.get("/api/v2/plans", HTTP_AUTHORIZATION=basic("", raw))
    assert response.status_code == 401 and response.json()["api_error_code"] == "api_authentication_failed"


def test_writes_without_a_key_get_401_not_403(client):
    response = client.post("/api/v2/customers", {"email": "x@example.com"})
    assert response.status_code == 401 and response.json()["api_error_code"] == "api_authentication_failed"
    assert not Customer.objects.filter(email="x@example.com").exists()


# --- plans ---------------------------------------------------------------------------------------------------


@pytest.fixture
def key():
    return api_key_create(name="back office")[1]


def test_plans_are_listed_as_chargebee_plans_with_minor_unit_prices(client, key):
    OfferFactory(short_id="S123456789", country="US", price=Decimal("9.99"), currency="USD", period="month")
    OfferFactory(short_id="S123456790", price=Decimal("1200"), currency="JPY", period="year")
    OfferFactory(short_id="S123456791", price=Decimal("4.50"), period="week", giftable=False)
    OfferFactory(short_id="S123456792", price=Decimal("24.00"), period="3months", active=False)

    response = get(client, "plans", key)

    assert response.status_code == 200
    plans = {entry["plan"]["id"]: entry["plan"] for entry in response.json()["list"]}
    assert set(plans) == {"S123456789_US", "S123456790", "S123456791", "S123456792"}
    assert all(plan["object"] == "plan" for plan in plans.values())
    assert all(isinstance(plan["price"], int) and isinstance(plan["giftable"], bool) for plan in plans.values())
    assert {pid: (p["price"], p["currency_code"]) for pid, p in plans.items()} == {
        "S123456789_US": (999, "USD"),
        "S123456790": (1200, "JPY"),
        "S123456791": (450, "USD"),
        "S123456792": (2400, "USD"),
    }
    assert {pid: p["giftable"] for pid, p in plans.items()} == {
        "S123456789_US": True,
        "S123456790": True,
        "S123456791": False,
        "S123456792": True,
    }
    assert (plans["S123456792"]["period"], plans["S123456792"]["period_unit"]) == (3, "month")
    assert plans["S123456792"]["status"] == "archived" and plans["S123456789_US"]["status"] == "active"
    giftable = get(client, "plans", key, **{"giftable[is]": "true"}).json()["list"]
    assert {entry["plan"]["id"] for entry in giftable} == {"S123456789_US", "S123456790", "S123456792"}


def test_a_plan_is_retrieved_by_its_short_or_long_id(client, key):
    OfferFactory(short_id="S123456789", country="US", price=Decimal("9.99"), currency="USD", giftable=True)

    by_long = get(client, "plans/S123456789_US", key)
    by_short = get(client, "plans/S123456789", key)

    assert by_long.status_code == by_short.status_code == 200
    assert by_long.json() == by_short.json()
    plan = by_long.json()["plan"]
    assert plan["id"] == "S123456789_US" and plan["object"] == "plan"
    assert plan["price"] == 999 and plan["giftable"] is True


def test_an_unknown_plan_is_404_resource_not_found(client, key):
    for plan_id in ("S999999999", "nonsense"):
        response = get(client, f"plans/{plan_id}", key)
        assert response.status_code == 404
        assert response.json()["api_error_code"] == "resource_not_found"
