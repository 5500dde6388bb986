"""The product started exactly as the README's run command starts it: SQLite, embedded broker, web + worker + beat."""

import os
import re
import signal
import subprocess
import sys
import time
import urllib.request

import pytest
from django.conf import settings

from giftshop.tests.processes import free_port

pytestmark = pytest.mark.slow


def _get(url, timeout=120):
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - a loopback URL of ours
                return response.status, response.read().decode()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def _wait_for_line(path, pattern, timeout):
    """The first match of `pattern` in the log at `path`, waiting up to `timeout` seconds for it; else None."""
    deadline = time.monotonic() + timeout
    while not (match := re.search(pattern, path.read_text())) and time.monotonic() < deadline:
        time.sleep(0.5)
    return match


GIFT_DUE_NOW = """
from django.utils import timezone
from accounts.models import Customer
from gifts import services
from offers.models import Offer
now = timezone.now()
gifter, offer = Customer.objects.get(email="demo@example.com"), Offer.objects.filter(giftable=True).first()
services.gift_create(gifter=gifter, offer=offer, recipient_email="peter@example.com", scheduled_at=now, now=now)
"""


def _run_in_django(env, code):
    """Runs `code` in a new process set up as the running product's (its database, its broker)."""
    return subprocess.run(
        [sys.executable, "-c", f"import django; django.setup()\n{code}"],
        cwd=settings.BASE_DIR,
        env={**env, "DEBUG": "true"},
        capture_output=True,
        text=True,
        timeout=120,
    )


def _warnings_of_worker_and_beat(log):
    lines = [line for line in log.splitlines() if re.match(r"\S+ (worker|beat)\.1 +\|", line)]
    warnings = [line for line in lines if re.search(r"(?i)warn", line)]
    if os.geteuid() == 0:
        # Celery's "running the worker with superuser privileges" is about the machine the tests run on (CI
        # containers run as root), not the product's configuration.
        warnings = [line for line in warnings if "SecurityWarning" not in line]
    return warnings


@pytest.fixture
def running_product(tmp_path):
    port = free_port()
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(
            ("DATABASE_URL", "REDIS_URL", "CELERY_", "SECRET_KEY", "ALLOWED_HOSTS", "EMAIL_", "DEBUG")
        )
    }
    env.update({"PORT": str(port), "GIFTSHOP_DATA_DIR": str(tmp_path / "var"), "PYTHONUNBUFFERED": "1"})
    log = (tmp_path / "run.log").open("w")
    process = subprocess.Popen(
        ["bin/run"], cwd=settings.BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        yield f"http://127.0.0.1:{port}", env, process, tmp_path / "run.log"
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C sends
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
        log.close()


def test_the_run_command_serves_the_catalogue_and_admin_and_runs_tasks(running_product):
    base_url, env, process, log_path = running_product
    status, body = _get(base_url + "/")
    assert status == 200 and "Premium — yearly" in body
    status, body = _get(base_url + "/admin/login/")
    assert status == 200 and "Log in" in body

    # A task sent through the embedded (filesystem) broker is executed by the running worker.
    result = _run_in_django(
        env, "from giftshop.celery import app; print(app.send_task('giftshop.ping').get(timeout=90))"
    )
    assert result.returncode == 0, result.stderr + log_path.read_text()
    assert result.stdout.strip() == "pong"
    # A gift due now, which the next delivery sweep sends.
    result = _run_in_django(env, GIFT_DUE_NOW)
    assert result.returncode == 0, result.stderr + log_path.read_text()
    log = log_path.read_text()
    assert "celery.beat beat: Starting..." in log
    assert " ready." in log  # the worker's start-up line

    # Beat -> broker -> worker: a sweep that only beat sends (every 15 s) ran on the worker.
    succeeded = _wait_for_line(log_path, r"Task gifts\.deliver_due_gifts\[[0-9a-f-]+\] succeeded", timeout=45)
    assert succeeded, log_path.read_text()
    sent = log_path.read_text().find("Scheduler: Sending due task deliver-due-gifts (gifts.deliver_due_gifts)")
    assert 0 <= sent < succeeded.start()

    # The delivery email (printed by the console backend) links to the port the demo serves on.
    link = _wait_for_line(log_path, re.escape(f"Redeem it here: {base_url}/redeem/?giftCode="), timeout=45)
    assert link, log_path.read_text()

    # A newcomer is told where to read the emails, and the pages' icon is there.
    assert f"{base_url}/admin/emails/email/" in log_path.read_text()
    status, body = _get(base_url + "/favicon.ico")
    assert status == 200 and body.startswith("<svg")

    # The worker and beat start, and send emails, without a warning from Celery or kombu (the demo's settings are
    # explicit).
    assert _warnings_of_worker_and_beat(log_path.read_text()) == []

    # Ctrl-C stops web, worker and beat together.
    os.killpg(process.pid, signal.SIGINT)
    assert process.wait(timeout=60) is not None
    with pytest.raises(OSError):
        urllib.request.urlopen(base_url + "/", timeout=2)  # noqa: S310
