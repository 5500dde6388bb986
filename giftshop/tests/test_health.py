"""Health endpoints (issue 19, "Health"): /health/live for a restart policy, /health/ready for a load balancer
(every check of settings.HEALTH_CHECKS; details only with HEALTH_TOKEN), and `manage.py healthcheck` for the
worker and beat containers."""

from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone

from emails.models import Email
from gifts import health as gift_health
from gifts.models import Gift
from gifts.tests.factories import make_gift

pytestmark = pytest.mark.django_db
TOKEN = "health-token-for-tests"
CLOSED = "redis://127.0.0.1:1/0"  # nothing listens there


@pytest.fixture
def swept(settings):
    settings.HEALTH_TOKEN = TOKEN
    gift_health.sweep_ran()  # beat's delivery sweep ran a moment ago


def overdue(by):
    """A scheduled gift whose delivery time passed `by` ago (no worker delivered it)."""
    gift = make_gift()
    Gift.objects.filter(pk=gift.pk).update(scheduled_at=timezone.now() - by)


def ready(token=None):
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}
    return Client().get("/health/ready", **headers)


def test_live_answers_without_asking_anything():
    response = Client().get("/health/live")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


def test_ready_when_every_check_passes_with_details_only_for_the_token(swept):
    plain = ready()
    assert plain.status_code == 200 and plain.json() == {"status": "ok"}
    assert ready("wrong-token").json() == {"status": "ok"}
    checks = ready(TOKEN).json()["checks"]
    assert set(checks) == {"database", "migrations", "cache", "broker", "delivery", "outbox"}
    assert all(check["ok"] for check in checks.values()), checks


def test_not_ready_when_the_delivery_sweep_has_not_run(settings):
    settings.HEALTH_TOKEN = TOKEN
    response = ready(TOKEN)
    assert response.status_code == 503 and response.json()["status"] == "unavailable"
    assert response.json()["checks"]["delivery"] == {**response.json()["checks"]["delivery"], "ok": False}
    assert "no sweep has run" in response.json()["checks"]["delivery"]["detail"]


def test_not_ready_when_a_gift_is_overdue_too_long(swept, settings):
    overdue(timedelta(seconds=settings.HEALTH_DELIVERY_MAX_AGE + 60))
    response = ready(TOKEN)
    assert response.status_code == 503
    assert not response.json()["checks"]["delivery"]["ok"]


def test_not_ready_when_an_email_waits_past_its_time_too_long(swept, settings):
    old = timezone.now() - timedelta(seconds=settings.HEALTH_OUTBOX_MAX_AGE + 60)
    Email.objects.create(key="old", kind=Email.Kind.SET_PASSWORD, to_email="a@example.com", next_attempt_at=old)
    response = ready(TOKEN)
    assert response.status_code == 503
    outbox = response.json()["checks"]["outbox"]
    assert not outbox["ok"] and "waiting" in outbox["detail"]


def test_not_ready_when_the_cache_is_unreachable(swept, settings):
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": CLOSED}}
    response = ready()
    assert response.status_code == 503 and response.json() == {"status": "unavailable"}


def test_the_command_exits_0_when_ready_and_1_when_not(swept, capsys):
    call_command("healthcheck")
    assert "ok   database" in capsys.readouterr().out
    overdue(timedelta(hours=1))
    with pytest.raises(CommandError, match="not ready"):
        call_command("healthcheck")
    assert "FAIL delivery" in capsys.readouterr().out
    call_command("healthcheck", only=["database", "broker"])  # a worker's container may ask only what it needs
