"""GET /metrics: only with the token; every request counted by view and status (never by path: paths carry gift
codes); the apps' gauges read at the scrape; and the counts of every process of a machine added up, as gunicorn's
workers and a Celery worker's pool record them (prometheus_client's multiprocess mode, in real subprocesses)."""

import os
import socket
import subprocess
import sys
import textwrap
import urllib.request
from datetime import timedelta

import pytest
from django.utils import timezone
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from emails.models import Email
from gifts.models import GiftStatus
from gifts.tests.factories import GiftFactory
from giftshop import metrics
from giftshop.models import Event, WebhookDelivery, WebhookEndpoint

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOKEN = "metrics-test-token-0123456789"


@pytest.fixture
def token(settings):
    settings.METRICS_TOKEN = TOKEN
    return {"HTTP_AUTHORIZATION": f"Bearer {TOKEN}"}


def scrape(client, token):
    response = client.get("/metrics", **token)
    assert response.status_code == 200, response.status_code
    assert response["Content-Type"].startswith("text/plain; version=")
    return response.content.decode()


def samples(text):
    """{(sample name, frozenset of labels): value} of an exposition."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(text, name, **labels):
    return samples(text).get((name, frozenset(labels.items())))


def run_python(code, *, metrics_dir):
    """Runs `code` in a new Python process with Django set up, recording into `metrics_dir`."""
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}
    script = "import django\ndjango.setup()\n" + textwrap.dedent(code)
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


# --- the endpoint -------------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_it_does_not_exist_while_no_token_is_configured(client, settings):
    settings.METRICS_TOKEN = ""
    assert client.get("/metrics").status_code == 404
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer ").status_code == 404


@pytest.mark.django_db
def test_it_answers_401_without_the_token_or_with_a_wrong_one(client, token):
    for header in ("", "Bearer", "Bearer wrong", TOKEN, f"Basic {TOKEN}", f"Bearer {TOKEN}x"):
        assert client.get("/metrics", HTTP_AUTHORIZATION=header).status_code == 401, header
    assert client.get("/metrics", HTTP_AUTHORIZATION=f"bearer {TOKEN}").status_code == 200
    response = client.get("/metrics")
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert b"giftshop_" not in response.content


@pytest.mark.django_db
def test_it_serves_the_apps_gauges_read_at_the_scrape(client, token):
    now = timezone.now()
    GiftFactory.create_batch(2, status=GiftStatus.SCHEDULED, scheduled_at=now - timedelta(seconds=90))
    GiftFactory(status=GiftStatus.UNCLAIMED)
    Email.objects.create(
        key="a", kind="gift_receipt", to_email="a@example.com", next_attempt_at=now - timedelta(seconds=600)
    )
    Email.objects.create(
        key="b", kind="gift_receipt", to_email="b@example.com", next_attempt_at=now + timedelta(seconds=1)
    )
    Email.objects.create(
        key="c", kind="gift_receipt", to_email="c@example.com", status="sending", sending_started_at=now
    )
    endpoint = WebhookEndpoint.objects.create(url="https://merchant.example.com/hook", secret="s" * 32)
    event = Event.objects.create(event_type="gift_scheduled", occurred_at=now, content={})
    WebhookDelivery.objects.create(event=event, endpoint=endpoint, next_attempt_at=now - timedelta(seconds=30))

    text = scrape(client, token)

    assert value(text, "giftshop_gifts", status="scheduled") == 2
    assert value(text, "giftshop_gifts", status="unclaimed") == 1
    assert value(text, "giftshop_gifts", status="claimed") == 0
    assert 90 <= value(text, "giftshop_gift_delivery_oldest_due_seconds") < 120
    assert value(text, "giftshop_outbox_emails", status="pending") == 2
    assert value(text, "giftshop_outbox_emails", status="sending") == 1
    assert 600 <= value(text, "giftshop_outbox_oldest_due_seconds") < 630
    assert value(text, "giftshop_outbox_stuck_emails") == 0
    assert value(text, "giftshop_webhook_deliveries_pending") == 1
    assert 30 <= value(text, "giftshop_webhook_oldest_due_seconds") < 60
    assert value(text, "giftshop_gift_code_global_failures") == 0
    assert value(text, "giftshop_gift_code_global_budget") == 2000
    assert value(text, "giftshop_gift_code_paused_seconds") == 0
    for collector in ("outbox", "gifts", "gift_code_budget", "webhooks"):
        assert value(text, "giftshop_metrics_collector_up", collector=collector) == 1


def broken_collector():
    raise RuntimeError("the database is down")


@pytest.mark.django_db
def test_a_failing_collector_is_reported_down_and_the_others_are_still_served(client, token, settings):
    settings.METRICS_COLLECTORS = {**settings.METRICS_COLLECTORS, "broken": f"{__name__}.broken_collector"}
    text = scrape(client, token)
    assert value(text, "giftshop_metrics_collector_up", collector="broken") == 0
    assert value(text, "giftshop_metrics_collector_up", collector="gifts") == 1
    assert value(text, "giftshop_gifts", status="scheduled") == 0


# --- the requests ---------------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_it_counts_requests_by_view_and_status_and_never_by_path(client, token):
    code = "7QX2-K9MB"
    before = REGISTRY.get_sample_value(
        "giftshop_http_requests_total", {"method": "GET", "view": "health_live", "status": "200"}
    )
    client.get("/health/live")
    client.get(f"/mediastore/gifts/verification/{code}")  # 401 without a customer, but routed
    client.get(f"/no/such/page/{code}")
    client.generic("BREW", "/health/live")

    text = scrape(client, token)

    assert (
        value(text, "giftshop_http_requests_total", method="GET", view="health_live", status="200") == (before or 0) + 1
    )
    views = {labels.get("view") for (name, labels) in ((n, dict(ls)) for n, ls in samples(text))}
    assert "<unmatched>" in views
    assert any(view and "verification" in view for view in views), views
    assert code not in text and code.replace("-", "") not in text
    assert any(
        dict(labels).get("method") == "other"
        for name, labels in samples(text)
        if name == "giftshop_http_requests_total"
    )
    count = value(text, "giftshop_http_request_duration_seconds_count", method="GET", view="health_live")
    assert count >= 1


# --- every process of a machine ---------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_it_adds_up_what_every_process_of_the_machine_recorded(client, token, settings, tmp_path):
    record = """
        import sys
        from emails import metrics
        from gifts import metrics as gift_metrics
        for _ in range({n}):
            metrics.SENT.labels("postmark", "gift_delivery").inc()
        gift_metrics.DELIVERY_LATENESS.labels("postmark").observe({lateness})
    """
    run_python(record.format(n=3, lateness=4), metrics_dir=tmp_path)
    run_python(record.format(n=4, lateness=90), metrics_dir=tmp_path)
    assert len(list(tmp_path.glob("*.db"))) >= 2  # a file per process and kind of metric

    settings.METRICS_DIR = str(tmp_path)
    text = scrape(client, token)

    assert value(text, "giftshop_emails_sent_total", provider="postmark", kind="gift_delivery") == 7
    assert value(text, "giftshop_gift_delivery_lateness_seconds_count", provider="postmark") == 2
    assert value(text, "giftshop_gift_delivery_lateness_seconds_bucket", provider="postmark", le="5.0") == 1
    assert value(text, "giftshop_gift_delivery_lateness_seconds_bucket", provider="postmark", le="120.0") == 2
    assert value(text, "giftshop_gifts", status="scheduled") == 0  # the apps' gauges too


def test_a_process_that_records_nothing_leaves_no_file(tmp_path):
    # A management command (a healthcheck every few seconds) or beat loads every module, and must not leave a file
    # each time: every metric has labels, so none is written before something is recorded.
    run_python(
        """
        from django.conf import settings
        from django.urls import resolve
        from django.utils.module_loading import import_string
        import prometheus_client.values
        assert prometheus_client.values.ValueClass._multiprocess
        resolve("/metrics")
        for path in settings.METRICS_COLLECTORS.values():
            import_string(path)
        import billing.renewals, emails.services, gifts.verification, giftshop.metrics
        """,
        metrics_dir=tmp_path,
    )
    assert list(tmp_path.iterdir()) == []


def test_gunicorn_and_celery_workers_record_into_the_shared_files(tmp_path):
    # Both read the settings before prometheus_client is imported, which picks its storage at import.
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    checks = {
        "gunicorn": "import runpy; runpy.run_path('gunicorn.conf.py')",
        "celery": "from giftshop.celery import app; app.loader.init_worker()",
    }
    for name, code in checks.items():
        script = f"{code}\nimport prometheus_client.values as v\nprint(v.ValueClass._multiprocess)"
        done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True)
        assert done.returncode == 0, (name, done.stderr)
        assert done.stdout.strip().splitlines()[-1] == "True", name


def test_a_group_starting_forgets_the_files_of_dead_processes_only(settings, tmp_path):
    settings.METRICS_DIR = str(tmp_path)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)
    for name in (f"counter_{dead_pid}.db", f"histogram_{dead_pid}.db", f"counter_{os.getpid()}.db", "notes.txt"):
        (tmp_path / name).write_bytes(b"")

    assert sorted(metrics.forget_dead_processes()) == [f"counter_{dead_pid}.db", f"histogram_{dead_pid}.db"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"counter_{os.getpid()}.db", "notes.txt"]


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_celery_worker_serves_its_pools_metrics_on_its_port(settings, tmp_path):
    settings.METRICS_DIR, settings.CELERY_METRICS_PORT = str(tmp_path), free_port()
    settings.CELERY_METRICS_ADDR = "127.0.0.1"
    server = metrics.worker_started()
    try:
        # A process of its pool (recording after the worker started: the files of processes gone before are forgotten).
        run_python('from emails import metrics\nmetrics.THROTTLED.labels("postmark").inc(2)', metrics_dir=tmp_path)
        url = f"http://127.0.0.1:{settings.CELERY_METRICS_PORT}/metrics"
        text = urllib.request.urlopen(url, timeout=5).read().decode()
        assert value(text, "giftshop_email_throttled_total", provider="postmark") == 2
        assert "giftshop_gifts" not in text  # the database's gauges are the web's
        assert metrics.worker_started() is None  # a second worker on the machine: the port is taken, no crash
    finally:
        server.shutdown()
        server.server_close()


def test_a_worker_with_the_port_at_zero_serves_nothing(settings):
    settings.METRICS_DIR, settings.CELERY_METRICS_PORT = "", 0
    assert metrics.worker_started() is None
