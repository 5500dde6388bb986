"""Gift-code guessing is limited per client and per account, atomically, before the code is looked up (SEC-5..7);
the global budget is in test_code_global_budget.py."""

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from rest_framework.test import APIClient

from accounts.tests.factories import CustomerFactory
from gifts.models import Gift
from gifts.tests.factories import make_gift
from giftshop.mediastore import issue_jwt

CLOSED = "redis://127.0.0.1:1/0"  # nothing listens there: Redis is down


def client_for(customer, ip="10.0.0.1"):
    client = APIClient(REMOTE_ADDR=ip)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {issue_jwt(customer)}")
    return client


@pytest.mark.django_db
def test_the_eleventh_wrong_code_is_429_and_then_even_a_valid_code_is_refused(settings):
    settings.GIFT_CODE_ATTEMPT_LIMIT = 10
    gift = make_gift()
    client = client_for(CustomerFactory())
    statuses = [client.get(f"/mediastore/gifts/verification/AAAA-{n:04d}").status_code for n in range(10)]
    assert statuses == [404] * 10
    response = client.get("/mediastore/gifts/verification/AAAA-9999")
    assert response.status_code == 429
    assert 0 < int(response["Retry-After"]) <= settings.GIFT_CODE_ATTEMPT_WINDOW
    assert response.json()["errors"]
    assert client.post(f"/mediastore/gifts/redeem/{gift.code}").status_code == 429
    gift.refresh_from_db()
    assert gift.status == "scheduled"


@pytest.mark.django_db
def test_valid_codes_do_not_use_up_attempts(settings):
    settings.GIFT_CODE_ATTEMPT_LIMIT = 3
    gift = make_gift()
    client = client_for(CustomerFactory())
    for _ in range(10):
        assert client.get(f"/mediastore/gifts/verification/{gift.code}").status_code == 200


@pytest.mark.django_db
def test_a_rotating_x_forwarded_for_does_not_reset_the_client_limit(settings):
    settings.GIFT_CODE_ATTEMPT_LIMIT = 5
    customer_clients = [client_for(CustomerFactory()) for _ in range(8)]  # other accounts, same address
    statuses = [
        c.get("/mediastore/gifts/verification/ZZZZ-0000", HTTP_X_FORWARDED_FOR=f"192.0.2.{n}").status_code
        for n, c in enumerate(customer_clients)
    ]
    assert statuses.count(404) == 5 and statuses.count(429) == 3


@pytest.mark.django_db
def test_an_ipv6_client_is_limited_per_64_not_per_address(settings):
    settings.GIFT_CODE_ATTEMPT_LIMIT = 5
    # Other accounts, each from another address of one /64: the client's budget is shared.
    same_64 = [client_for(CustomerFactory(), ip=f"2001:db8:1:2::{n:x}") for n in range(1, 9)]
    statuses = [c.get("/mediastore/gifts/verification/ZZZZ-0000").status_code for c in same_64]
    assert statuses.count(404) == 5 and statuses.count(429) == 3
    # Another /64 has its own.
    other = client_for(CustomerFactory(), ip="2001:db8:1:3::1")
    assert other.get("/mediastore/gifts/verification/ZZZZ-0000").status_code == 404


@pytest.mark.django_db(transaction=True)
def test_concurrent_wrong_attempts_evaluate_at_most_the_limit_against_the_database(settings):
    settings.GIFT_CODE_ATTEMPT_LIMIT = 10
    customer = CustomerFactory()
    barrier = threading.Barrier(30)
    lookups = []

    def attempt(n):
        client = client_for(customer)
        barrier.wait()
        with CaptureQueriesContext(connection) as queries:
            status = client.get(f"/mediastore/gifts/verification/BBBB-{n:04d}").status_code
        lookups.append(sum('"gifts_gift"' in q["sql"] for q in queries.captured_queries))
        connection.close()
        return status

    with ThreadPoolExecutor(max_workers=30) as pool:
        statuses = list(pool.map(attempt, range(30)))
    assert statuses.count(404) <= 10 and statuses.count(404) + statuses.count(429) == 30
    assert sum(lookups) <= 10
    assert not Gift.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_without_redis_the_limits_and_the_global_budget_hold_in_process(settings):
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "limits"}}
    cache.clear()
    settings.GIFT_CODE_ATTEMPT_LIMIT = 10
    gift = make_gift()
    customer = CustomerFactory()
    barrier = threading.Barrier(30)

    def attempt(n):
        client = client_for(customer)
        barrier.wait()
        status = client.get(f"/mediastore/gifts/verification/BBBB-{n:04d}").status_code
        connection.close()
        return status

    with ThreadPoolExecutor(max_workers=30) as pool:
        statuses = list(pool.map(attempt, range(30)))
    # Per key the cache's incr is atomic, but not across the two keys: a race may refuse a little early, never late.
    assert 1 <= statuses.count(404) <= 10 and statuses.count(404) + statuses.count(429) == 30
    settings.GIFT_CODE_GLOBAL_FAILURE_LIMIT = statuses.count(404) + 2
    others = [client_for(CustomerFactory(), ip=f"10.0.1.{n}") for n in range(3)]
    assert [c.get("/mediastore/gifts/verification/CCCC-0000").status_code for c in others] == [404, 404, 404]
    paused = others[0].get(f"/mediastore/gifts/verification/{gift.code}")  # over the global budget: paused
    assert paused.status_code == 429 and int(paused["Retry-After"]) == settings.GIFT_CODE_PAUSE_SECONDS
    assert others[1].get(f"/mediastore/gifts/verification/{gift.link_token}").status_code == 200


@pytest.mark.django_db
def test_while_the_counters_cannot_be_reached_codes_are_refused_with_503_not_checked_unlimited(settings, client):
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": CLOSED}}
    gift = make_gift()
    customer = CustomerFactory()
    for request in (
        lambda api: api.get(f"/mediastore/gifts/verification/{gift.code}"),
        lambda api: api.post(f"/mediastore/gifts/redeem/{gift.code}"),
        lambda api: api.post(f"/mediastore/gifts/redeem/{gift.link_token}"),
    ):
        response = request(client_for(customer))
        assert response.status_code == 503, response.content
        assert response["Retry-After"] == "30"
        assert response.json()["errors"] == ["Gift codes cannot be checked just now. Please try again in a minute."]
    client.force_login(customer)
    page = client.post(reverse("gifts:redeem"), {"code": gift.code, "action": "confirm"})
    assert page.status_code == 503 and page["Retry-After"] == "30"
    assert "cannot be checked just now" in page.content.decode()
    gift.refresh_from_db()
    assert gift.status == "scheduled" and gift.subscription_id is None
