"""Metrics from real processes. Under gunicorn: the requests its workers served add up at /metrics, a worker that dies
keeps its counts (its files stay; gunicorn's child_exit), and a restarted gunicorn starts counting again (on_starting
forgets them). Under a Celery worker: what its pool processes record, its main process serves on its port."""

import os
import signal
import subprocess
import sys
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from emails.models import Email
from gifts.tests.factories import GiftFactory
from gifts.tests.test_real_processes import celery  # noqa: F401 - the fixture: workers on the test's database
from giftshop.celery import app
from giftshop.tests.processes import free_port, stop_process, wait_for

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "metrics-process-test-token-0123456789"

pytestmark = pytest.mark.slow


def get(url, headers=None):
    request = urllib.request.Request(url, headers=headers or {})  # noqa: S310 - our own server on loopback
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        return response.read().decode()


class Gunicorn:
    def __init__(self, metrics_dir, log):
        self.port, self.metrics_dir, self.log = free_port(), metrics_dir, log
        self.url = f"http://127.0.0.1:{self.port}"

    def start(self):
        env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(self.metrics_dir), "METRICS_TOKEN": TOKEN}
        command = [
            sys.executable,
            "-m",
            "gunicorn",
            "giftshop.wsgi",
            "--workers",
            "3",
            "--bind",
            f"127.0.0.1:{self.port}",
        ]
        with self.log.open("a") as log:
            self.process = subprocess.Popen(
                command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )

        def up():
            try:
                return get(f"{self.url}/health/live") is not None
            except OSError:
                return False

        assert wait_for(up, timeout=30, interval=0.2), self.log.read_text()[-3000:]

    def served(self, view):
        """giftshop_http_requests_total for GET `view` with 200, from /metrics."""
        text = get(f"{self.url}/metrics", {"Authorization": f"Bearer {TOKEN}"})
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == "giftshop_http_requests_total" and sample.labels == {
                    "method": "GET",
                    "view": view,
                    "status": "200",
                }:
                    return sample.value
        return 0

    def worker_pids(self):
        children = subprocess.run(["pgrep", "-P", str(self.process.pid)], capture_output=True, text=True).stdout
        return [int(pid) for pid in children.split()]


def test_gunicorns_workers_requests_add_up_survive_a_dead_worker_and_start_again_with_gunicorn(tmp_path):
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    server = Gunicorn(metrics_dir, tmp_path / "gunicorn.log")
    server.start()
    try:
        # At once, so that the workers share them; which worker accepts is the kernel's choice, and a fast answer can
        # leave one worker taking a whole round on a busy machine: rounds go on until two workers have served some.
        sent = 0

        def workers_served():
            return {path.stem.rpartition("_")[2] for path in metrics_dir.glob("*.db")}

        with ThreadPoolExecutor(max_workers=8) as pool:
            while len(workers_served()) < 2 and sent < 600:
                list(pool.map(lambda _: get(f"{server.url}/health/live"), range(60)))
                sent += 60
        assert len(workers_served()) >= 2, f"one worker served all {sent} requests: nothing was added up"
        assert server.served("health_live") == sent + 1  # and the readiness probe of start()

        victim = server.worker_pids()[0]
        os.kill(victim, signal.SIGKILL)
        assert wait_for(lambda: victim not in server.worker_pids() and len(server.worker_pids()) == 3, timeout=30)
        assert server.served("health_live") == sent + 1  # the dead worker's requests still count
    finally:
        stop_process(server.process)

    server.start()  # a new process group: the counts start again
    try:
        assert server.served("health_live") == 1
    finally:
        stop_process(server.process)


@pytest.mark.real_broker
@pytest.mark.django_db(transaction=True)
def test_a_celery_workers_pool_records_a_delivery_that_its_main_process_serves(celery, tmp_path):  # noqa: F811
    metrics_dir, port = tmp_path / "worker-metrics", free_port()
    metrics_dir.mkdir()
    celery.env.update(
        PROMETHEUS_MULTIPROC_DIR=str(metrics_dir), CELERY_METRICS_PORT=str(port), CELERY_METRICS_ADDR="127.0.0.1"
    )
    gift = GiftFactory(recipient_email="friend@example.com", scheduled_at=timezone.now())
    celery.start("worker", concurrency=2)
    celery.wait_ready("worker")

    app.send_task("gifts.deliver_due_gifts")  # beat's delivery sweep; it hands the emails to send tasks

    def delivered():
        return Email.objects.filter(gift=gift, kind=Email.Kind.GIFT_DELIVERED, status=Email.Status.SENT).exists()

    assert wait_for(delivered, timeout=30), celery.log("worker")
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(get(f"http://127.0.0.1:{port}/metrics"))
        for sample in family.samples
    }
    sent = (("kind", "gift_delivery"), ("provider", "locmem"))
    assert samples[("giftshop_emails_sent_total", sent)] == 1
    assert samples[("giftshop_gift_delivery_lateness_seconds_count", (("provider", "locmem"),))] == 1
    assert not any(name.startswith("giftshop_gifts") for name, _labels in samples)  # the database's are the web's
