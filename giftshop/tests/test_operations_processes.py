"""Operating it, through real processes (gunicorn, a Celery worker and beat as subprocesses on the test's database):
readiness answers 503 while Redis is stopped and 200 again once it is back; with LOG_FORMAT=json every line of web
and worker is a JSON object, and a storefront redeem's request id is on the web's lines and on the worker's line
that sends the gifter's email, with the gift's id."""

import json
import os
import subprocess
import sys
from contextlib import suppress
from urllib.parse import urlsplit

import pytest
import requests
from django.conf import settings

from accounts.tests.factories import CustomerFactory
from gifts.models import GiftStatus
from gifts.tests.factories import GiftFactory
from giftshop.celery import app
from giftshop.mediastore import issue_jwt
from giftshop.tests.processes import RedisServer, free_port, start_logged, stop_process, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.real_broker, pytest.mark.django_db(transaction=True)]

TOKEN = "health-token-for-the-test-0123456789"


class Deployment:
    """Web (gunicorn, as the Procfile starts it), worker and beat as subprocesses, each logging into a file."""

    def __init__(self, tmp_path, **env):
        database = urlsplit(os.environ["DATABASE_URL"])._replace(path=f"/{settings.DATABASES['default']['NAME']}")
        self.env = {**os.environ, "DATABASE_URL": database.geturl(), "PYTHONUNBUFFERED": "1", **env}
        self.tmp_path, self.processes = tmp_path, {}
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"

    def start(self, name, command):
        self.processes[name] = start_logged(command, env=self.env, log_path=self.log_path(name), cwd=settings.BASE_DIR)

    def web(self):
        gunicorn = [sys.executable, "-m", "gunicorn", "giftshop.wsgi", "--bind", f"127.0.0.1:{self.port}"]
        self.start("web", [*gunicorn, "--workers", "1", "--access-logfile", "-"])
        assert wait_for(self._live, timeout=30), self.log("web")

    def worker(self, *, quiet=False):
        celery = [sys.executable, "-m", "celery", "--app", "giftshop", *(["--quiet"] if quiet else [])]
        self.start("worker", [*celery, "worker", "--concurrency", "1", "--loglevel", "INFO"])
        assert wait_for(lambda: "ready." in self.log("worker"), timeout=30), self.log("worker")

    def beat(self):
        schedule = str(self.tmp_path / "beat-schedule")
        self.start("beat", [sys.executable, "-m", "celery", "--app", "giftshop", "beat", "--schedule", schedule])

    def _live(self):
        with suppress(requests.ConnectionError):
            return requests.get(f"{self.base}/health/live", timeout=5).ok
        return False

    def ready(self, *, token=TOKEN):
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return requests.get(f"{self.base}/health/ready", headers=headers, timeout=30)

    def log_path(self, name):
        return self.tmp_path / f"{name}.log"

    def log(self, name):
        return self.log_path(name).read_text() if self.log_path(name).exists() else ""

    def stop(self):
        for process in self.processes.values():
            stop_process(process)


@pytest.fixture
def deployment(transactional_db, tmp_path, request):
    made = []

    def make(**env):
        made.append(Deployment(tmp_path, **env))
        return made[-1]

    failed_before = request.session.testsfailed
    yield make
    for each in made:
        each.stop()
        if request.session.testsfailed > failed_before:
            for name in each.processes:
                print(f"----- {name} -----\n{each.log(name)}")


@pytest.fixture
def private_redis(tmp_path):
    server = RedisServer(tmp_path / "redis.log")
    server.start()
    yield server
    server.stop()


def _healthcheck(env, *only):
    command = [sys.executable, "manage.py", "healthcheck", *(["--only", *only] if only else [])]
    return subprocess.run(command, cwd=settings.BASE_DIR, env=env, capture_output=True, text=True, timeout=60)


def test_ready_answers_503_while_redis_is_stopped_and_200_once_it_is_back(deployment, private_redis):
    redis_env = dict.fromkeys(("REDIS_URL", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND"), private_redis.url)
    site = deployment(HEALTH_TOKEN=TOKEN, **redis_env)
    site.web()
    site.worker()
    site.beat()  # its delivery sweep, run by the worker, is the heartbeat the readiness check wants

    assert wait_for(lambda: site.ready().status_code == 200, timeout=60), site.ready().text
    assert all(check["ok"] for check in site.ready().json()["checks"].values())
    assert _healthcheck(site.env).returncode == 0

    private_redis.stop()
    answer = site.ready()
    assert answer.status_code == 503
    checks = answer.json()["checks"]
    assert not checks["cache"]["ok"] and not checks["broker"]["ok"]
    assert checks["database"]["ok"] and checks["migrations"]["ok"]
    assert site.ready(token="").status_code == 503 and "checks" not in site.ready(token="").json()
    assert requests.get(f"{site.base}/health/live", timeout=10).status_code == 200  # up, just not ready
    stopped = _healthcheck(site.env, "cache", "broker")
    assert stopped.returncode == 1 and "FAIL cache" in stopped.stdout and "FAIL broker" in stopped.stdout

    private_redis.start()  # empty: the sweep's heartbeat comes back with beat's next sweep
    assert wait_for(lambda: site.ready().status_code == 200, timeout=60), site.ready().text


def _json_lines(text):
    """Every line parsed; a line that is not one JSON object fails the test."""
    lines = []
    for line in text.splitlines():
        if line.strip():
            parsed = json.loads(line)
            assert isinstance(parsed, dict), line
            lines.append(parsed)
    return lines


def test_json_logs_carry_one_requests_id_from_the_web_into_the_worker_with_the_gift_id(deployment):
    app.control.purge()  # what other tests left in this Redis db would reach our worker first
    recipient = CustomerFactory(email="robin@example.com")
    gift = GiftFactory(status=GiftStatus.UNCLAIMED, recipient_email=recipient.email)
    site = deployment(LOG_FORMAT="json", LOG_LEVEL="INFO")
    site.web()
    site.worker(quiet=True)  # no banner: only log lines on stdout

    api = {"Authorization": f"Bearer {issue_jwt(recipient)}", "X-Request-ID": "lb-7f3a9c2e41d0"}
    redeemed = requests.post(f"{site.base}/mediastore/gifts/redeem/{gift.code}", headers=api, timeout=30)
    assert redeemed.status_code == 200, redeemed.text
    assert redeemed.headers["X-Request-ID"] == "lb-7f3a9c2e41d0"  # the load balancer's id is kept
    own = requests.get(f"{site.base}/health/live", headers={"X-Request-ID": "bad id; forged=1"}, timeout=10)
    assert len(own.headers["X-Request-ID"]) == 32  # a header that could forge log lines is replaced

    def worker_sent():
        lines = _json_lines(site.log("worker"))
        return [line for line in lines if line.get("request_id") == "lb-7f3a9c2e41d0" and "sent" in line["message"]]

    assert wait_for(worker_sent, timeout=30), site.log("worker")
    sent, worker_log = worker_sent(), site.log("worker")
    site.stop()  # (Celery prints its "Warm shutdown" outside logging)

    web = [line for line in _json_lines(site.log("web")) if line.get("request_id") == "lb-7f3a9c2e41d0"]
    assert {line["logger"] for line in web} >= {"gunicorn.access", "gifts.services"}
    assert any(line.get("gift_id") == gift.pk and line["logger"] == "gifts.services" for line in web)
    assert any(line.get("gift_id") == gift.pk and line.get("task") == "gifts.send_email" for line in sent), sent
    for line in web + sent:
        assert line["timestamp"].endswith("+00:00") and line["level"] in {"INFO", "WARNING"}
    logs = site.log("web") + worker_log
    assert gift.code not in logs and gift.code.replace("-", "") not in logs
