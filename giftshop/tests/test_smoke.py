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
    send = (
        "import django; django.setup(); from giftshop.celery import app; "
        "print(app.send_task('giftshop.ping').get(timeout=90))"
    )
    result = subprocess.run(
        [sys.executable, "-c", send],
        cwd=settings.BASE_DIR,
        env={**env, "DEBUG": "true"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr + log_path.read_text()
    assert result.stdout.strip() == "pong"
    log = log_path.read_text()
    assert "celery.beat beat: Starting..." in log
    assert " ready." in log  # the worker's start-up line

    # Beat -> broker -> worker: a sweep that only beat sends (every 15 s) ran on the worker.
    succeeded = _wait_for_line(log_path, r"Task gifts\.deliver_due_gifts\[[0-9a-f-]+\] succeeded", timeout=45)
    assert succeeded, log_path.read_text()
    sent = log_path.read_text().find("Scheduler: Sending due task deliver-due-gifts (gifts.deliver_due_gifts)")
    assert 0 <= sent < succeeded.start()

    # Ctrl-C stops web, worker and beat together.
    os.killpg(process.pid, signal.SIGINT)
    assert process.wait(timeout=60) is not None
    with pytest.raises(OSError):
        urllib.request.urlopen(base_url + "/", timeout=2)  # noqa: S310
