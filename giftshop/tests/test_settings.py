import os
import subprocess
import sys
from datetime import timedelta

import pytest
from django.conf import settings
from django.contrib.staticfiles import finders
from django.core.cache import cache
from django.db import connection
from django.urls import reverse

from emails import services as outbox
from giftshop import webhooks
from giftshop.celery import app as celery_app


def _django_setup(env_overrides, tmp_path, show="settings.DATABASES['default']['ENGINE']"):
    """Starts Django in a fresh process with `env_overrides` and prints `show`."""
    unset = {
        "SECRET_KEY",
        "ALLOWED_HOSTS",
        "EMAIL_BACKEND",
        "DEBUG",
        "GIFT_CODE_SECRET",
        "SITE_URL",
        "PORT",
        "WEB_PORT",
    }
    env = {k: v for k, v in os.environ.items() if k not in unset}
    for name in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND"):
        env.pop(name, None)
    env.update({"GIFTSHOP_DATA_DIR": str(tmp_path), **env_overrides})
    code = f"import django; django.setup(); from django.conf import settings; print({show})"
    return subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=settings.BASE_DIR, capture_output=True, text=True, timeout=60
    )


@pytest.mark.django_db
def test_it_runs_the_suite_on_postgresql():
    assert connection.vendor == "postgresql"
    with connection.cursor() as cursor:
        cursor.execute("SELECT version()")
        assert cursor.fetchone()[0].startswith("PostgreSQL")


def test_it_uses_redis_for_the_cache_and_the_broker():
    assert settings.CACHES["default"]["BACKEND"] == "django.core.cache.backends.redis.RedisCache"
    cache.set("giftshop-test", "ok", 5)
    assert cache.get("giftshop-test") == "ok"
    assert celery_app.conf.broker_url.startswith("redis://")


def test_celery_is_configured_for_safe_redelivery():
    conf = celery_app.conf
    assert conf.task_acks_late and conf.task_reject_on_worker_lost
    assert conf.worker_prefetch_multiplier == 1
    assert conf.accept_content == ["json"] and conf.task_serializer == "json"
    assert conf.timezone == "UTC" and conf.task_time_limit and conf.task_soft_time_limit


def test_it_refuses_to_start_in_production_without_a_secret_key(tmp_path):
    result = _django_setup({"ALLOWED_HOSTS": "example.com", "EMAIL_BACKEND": "x", "GIFT_CODE_SECRET": "g"}, tmp_path)
    assert result.returncode != 0
    assert "SECRET_KEY is not set" in result.stderr


def test_it_refuses_to_start_in_production_without_allowed_hosts(tmp_path):
    result = _django_setup({"SECRET_KEY": "s" * 50, "EMAIL_BACKEND": "x", "GIFT_CODE_SECRET": "g"}, tmp_path)
    assert result.returncode != 0
    assert "ALLOWED_HOSTS is not set" in result.stderr


def test_it_runs_with_zero_configuration_in_debug_on_sqlite(tmp_path):
    result = _django_setup({"DEBUG": "true"}, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "django.db.backends.sqlite3"


def test_stored_times_are_utc():
    assert settings.USE_TZ is True
    assert celery_app.conf.enable_utc is True


def test_no_task_is_scheduled_days_ahead_through_the_broker():
    """CEL-13: delivery times are rows swept by beat, never `eta`/long `countdown` messages in Redis."""
    import re

    offenders = []
    for path in settings.BASE_DIR.glob("*/**/*.py"):
        if ".venv" in path.parts or "tests" in path.parts:
            continue
        text = path.read_text()
        if re.search(r"\beta\s*=", text) or any(int(n) > 300 for n in re.findall(r"countdown\s*=\s*(\d+)", text)):
            offenders.append(str(path))
    assert offenders == []
    transport = celery_app.conf.broker_transport_options
    assert transport["visibility_timeout"] > celery_app.conf.task_time_limit
    assert timedelta(seconds=celery_app.conf.task_time_limit) < outbox.STUCK_AFTER  # no live task's row is reset
    assert timedelta(seconds=celery_app.conf.task_time_limit) < webhooks.STUCK_AFTER


def test_it_refuses_to_start_when_the_stuck_email_reset_could_overtake_a_live_task(tmp_path):
    result = _django_setup({"DEBUG": "true", "EMAIL_STUCK_AFTER": "60", "CELERY_TASK_TIME_LIMIT": "60"}, tmp_path)
    assert result.returncode != 0
    assert "CELERY_TASK_TIME_LIMIT must be shorter than EMAIL_STUCK_AFTER" in result.stderr


def test_links_in_emails_follow_the_port_the_demo_serves_on(tmp_path):
    result = _django_setup({"DEBUG": "true", "PORT": "8802"}, tmp_path, show="settings.SITE_URL")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "http://127.0.0.1:8802"


def test_links_in_emails_follow_the_web_port_bin_run_exports_not_the_port_honcho_gives_each_process(tmp_path):
    env = {"DEBUG": "true", "WEB_PORT": "8802", "PORT": "5100"}
    result = _django_setup(env, tmp_path, show="settings.SITE_URL")
    assert result.stdout.strip() == "http://127.0.0.1:8802", result.stderr


def test_a_site_url_that_is_set_wins_over_the_port(tmp_path):
    env = {"DEBUG": "true", "PORT": "8802", "SITE_URL": "https://gifts.example.com/"}
    result = _django_setup(env, tmp_path, show="settings.SITE_URL")
    assert result.stdout.strip() == "https://gifts.example.com", result.stderr


def test_the_demo_broker_url_names_a_host_so_kombu_does_not_warn_at_each_connection(tmp_path):
    connection_info = "__import__('giftshop.celery', fromlist=['app']).app.connection_for_write().info()"
    result = _django_setup({"DEBUG": "true"}, tmp_path, show=f"{connection_info}['hostname']")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "localhost"
    assert "No hostname was supplied" not in result.stderr


@pytest.mark.django_db
def test_every_page_names_a_favicon_and_browsers_asking_for_favicon_ico_find_it(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 302
    assert response.url == "/static/favicon.svg"
    assert finders.find("favicon.svg")
    page = client.get(reverse("billing:catalogue")).content.decode()
    assert '<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">' in page
