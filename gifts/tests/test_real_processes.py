"""Gifts through real processes: a Celery worker and beat on Redis and the test's PostgreSQL database, and a
purchase while the broker cannot be reached (RELIABILITY.md CEL-3)."""

import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager, suppress
from urllib.parse import urlsplit

import kombu.pools
import pytest
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from kombu.exceptions import OperationalError

from accounts.tests.factories import CustomerFactory
from billing.services import order_create, order_pay, order_update
from gifts.mail import send_due_emails
from gifts.models import Email, Gift
from gifts.tests.factories import make_gift
from giftshop.celery import app
from offers.tests.factories import OfferFactory

pytestmark = [pytest.mark.slow, pytest.mark.real_broker, pytest.mark.django_db(transaction=True)]

CELERY = [sys.executable, "-m", "celery", "--app", "giftshop"]


def _wait_for(condition, *, timeout, interval=0.5):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)
    return True


def _emails_to(directory, address):
    """Messages Django's file backend wrote for `address` (one file per connection, a message after another)."""
    return sum(line == f"To: {address}" for path in directory.glob("*.log") for line in path.read_text().splitlines())


def _stop(process):
    """Warm shutdown (SIGTERM, as a supervisor sends it), then SIGKILL for the process and any pool child left."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


@pytest.fixture
def worker_and_beat(transactional_db, tmp_path, request):
    """`celery worker` and `celery beat` on the test's Redis db and on the test database (pytest-django's
    `test_` name, which the subprocesses would not guess), emailing through the file backend into a tmp dir.
    Yields (email dir, {name: (process, log path)})."""
    database_url = urlsplit(os.environ["DATABASE_URL"])._replace(path=f"/{settings.DATABASES['default']['NAME']}")
    emails = tmp_path / "emails"
    env = {
        **os.environ,
        "DATABASE_URL": database_url.geturl(),
        "REDIS_URL": settings.REDIS_URL,
        "EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
        "EMAIL_FILE_PATH": str(emails),
        "PYTHONUNBUFFERED": "1",
    }
    # Messages other tests left in this Redis db would otherwise reach our worker first.
    subprocess.run(
        [*CELERY, "purge", "-f"], cwd=settings.BASE_DIR, env=env, check=True, timeout=60, capture_output=True
    )
    commands = {
        "worker": [*CELERY, "worker", "--concurrency", "2", "--loglevel", "INFO"],
        "beat": [*CELERY, "beat", "--loglevel", "INFO", "--schedule", str(tmp_path / "celerybeat-schedule")],
    }
    processes = {}
    failed_before = request.session.testsfailed
    try:
        for name, command in commands.items():
            log_path = tmp_path / f"{name}.log"
            with log_path.open("w") as log:
                process = subprocess.Popen(
                    command,
                    cwd=settings.BASE_DIR,
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            processes[name] = (process, log_path)
        yield emails, processes
    finally:
        for process, _log_path in processes.values():
            _stop(process)
        if request.session.testsfailed > failed_before:
            for name, (process, log_path) in processes.items():
                print(f"----- {name} (exit code {process.returncode}) -----\n{log_path.read_text()}")


def test_a_gift_due_now_is_emailed_once_by_beat_and_a_real_worker(worker_and_beat):
    emails, processes = worker_and_beat
    with transaction.atomic():  # committed, as a purchase commits it, so the worker's connection sees it
        gift = make_gift(recipient_email="friend@example.com", scheduled_at=timezone.now())
    delivery = Email.objects.filter(gift=gift, kind=Email.Kind.GIFT_DELIVERY)

    def sent_or_crashed():
        return delivery.filter(status=Email.Status.SENT).exists() or any(
            p.poll() is not None for p, _ in processes.values()
        )

    # Beat sends the delivery sweep every 15 s; the worker picks it up from Redis.
    assert _wait_for(sent_or_crashed, timeout=60), "no delivery email within 60 s"
    assert all(p.poll() is None for p, _ in processes.values()), "the worker or beat exited"
    gift.refresh_from_db()
    assert gift.status == Gift.Status.UNCLAIMED and gift.sent_at
    assert _wait_for(lambda: _emails_to(emails, "friend@example.com") == 1, timeout=5)

    # Later sweeps find nothing left to deliver: still one delivery row and one message.
    time.sleep(4)
    assert list(delivery.values_list("to_email", "status")) == [("friend@example.com", Email.Status.SENT)]
    assert _emails_to(emails, "friend@example.com") == 1


@contextmanager
def _broker_unreachable():
    """Points this process's task publishing at a closed port. Kombu pools producers per broker URL and the app
    caches its pools, so those are dropped on the way in and on the way out."""
    overrides = {
        "broker_url": "redis://127.0.0.1:1/0",
        # Publishing keeps the product's retry policy; these only bound each attempt, should the port ever drop
        # packets instead of refusing them. (broker_connection_retry* configure the worker's consumer, not this.)
        "broker_transport_options": {
            **app.conf.broker_transport_options,
            "socket_connect_timeout": 1,
            "max_retries": 1,
        },
    }
    previous = {key: app.conf[key] for key in overrides}

    def drop_pools():
        if app._pool is not None:
            app._pool.force_close_all()
        app._pool = None
        app.amqp._producer_pool = None
        kombu.pools.reset()  # closed pools must not stay registered for later tests' threads

    drop_pools()
    app.conf.update(overrides)
    try:
        yield
    finally:
        app.conf.update(previous)
        drop_pools()


def test_a_purchase_while_the_broker_is_down_commits_and_the_sweep_sends_the_receipt_later(caplog, mailoutbox):
    gifter = CustomerFactory()
    order = order_create(customer=gifter, offer=OfferFactory(), buy_as_gift=True)
    order_update(order=order, recipient_email="friend@example.com")

    with _broker_unreachable():
        started = time.monotonic()
        result = order_pay(order=order, card_token="tok_visa")
        took = time.monotonic() - started

    assert took < 10
    # The receipt's task was published after commit, failed, and was only logged.
    assert any(r.exc_info and isinstance(r.exc_info[1], OperationalError) for r in caplog.records), caplog.text
    gift = Gift.objects.get(pk=result.gift.pk)
    assert gift.status == Gift.Status.SCHEDULED and gift.order.status == "paid"
    receipt = Email.objects.get(gift=gift, kind=Email.Kind.GIFT_RECEIPT)
    assert receipt.status == Email.Status.PENDING and receipt.to_email == gifter.email
    assert mailoutbox == []

    with app.connection_for_write() as connection:  # the broker is back for this process
        connection.ensure_connection(max_retries=1)
    assert send_due_emails() == 1
    assert [message.to for message in mailoutbox] == [[gifter.email]]
    receipt.refresh_from_db()
    assert receipt.status == Email.Status.SENT
    assert send_due_emails() == 0 and len(mailoutbox) == 1
