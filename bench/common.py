"""What the benchmarks share: their environment (own database and Redis db, never the app's), an empty bench
database, and due gifts inserted in bulk."""

import math
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent

# The bench's own database and Redis db: `flush` and FLUSHDB below only ever touch these.
DATABASE_URL = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/giftshop_bench")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/12")


def environment(**extra):
    """The variables the benchmark and the processes it starts run with (production-like: DEBUG off)."""
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "giftshop.settings",
        "DATABASE_URL": DATABASE_URL,
        "REDIS_URL": REDIS_URL,
        "SECRET_KEY": "bench-only-secret-key-0123456789abcdefghijklmnopqrstuvwxyz",
        "GIFT_CODE_SECRET": "bench-only-gift-code-secret",
        "ALLOWED_HOSTS": "localhost",
        "DEBUG": "false",
        "HTTPS": "false",
        "EMAIL_BACKEND": "anymail.backends.test.EmailBackend",
        # Required with an anymail backend and DEBUG off (the tracking webhooks' Basic auth); nothing calls them here.
        "ANYMAIL_WEBHOOK_SECRET": "bench:bench-only-webhook-password",
        "LOG_LEVEL": "WARNING",
        **extra,
    }


def setup(**extra):
    """Configures this process for the bench, creates the bench database if missing, migrates it and empties
    it. Call before importing any model."""
    os.environ.update(environment(**extra))
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    _create_database()
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    call_command("flush", interactive=False, verbosity=0)


def _create_database():
    import psycopg
    from psycopg import sql

    url = urlsplit(DATABASE_URL)
    name = url.path.lstrip("/")
    server = url._replace(path="/postgres").geturl()
    with psycopg.connect(server, autocommit=True) as connection:
        if not connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


UNUSABLE = "!"  # what set_unusable_password() stores, minus its random suffix: no password logs in


def seed_gifts(scheduled_at):
    """One scheduled gift per time in `scheduled_at`, as gift_create leaves them (code, claim expiry, a
    `scheduled` timeline row), from a few gifters, inserted in bulk. Returns their ids."""
    from django.utils import timezone

    from accounts.models import Customer
    from gifts.models import Gift, GiftStatus, GiftTimeline
    from gifts.services import epoch_ms
    from offers.models import Offer

    now = timezone.now()
    offer = Offer.objects.create(
        title="Premium, one month", period="month", price="9.99", currency="USD", giftable=True, tags=["premium"]
    )
    gifters = Customer.objects.bulk_create(
        [
            Customer(email=f"gifter{n}@example.com", first_name="Gifter", last_name=str(n), password=UNUSABLE)
            for n in range(max(1, len(scheduled_at) // 20))
        ]
    )
    gifts = []
    for n, when in enumerate(scheduled_at):
        gift = Gift(
            gifter=gifters[n % len(gifters)],
            offer=offer,
            recipient_email=f"recipient{n}@example.com",
            recipient_first_name="Robin",
            personal_note="Happy birthday!\nEnjoy the shows.",
            signature="Sam",
            scheduled_at=when,
            claim_expiry_date=when + timedelta(days=365),
            created_at=now,
            updated_at=now,
            resource_version=epoch_ms(now),
        )
        gift.assign_code()
        gifts.append(gift)
    gifts = Gift.objects.bulk_create(gifts, batch_size=2000)
    GiftTimeline.objects.bulk_create(
        [GiftTimeline(gift=g, status=GiftStatus.SCHEDULED, occurred_at=now, actor="bench") for g in gifts],
        batch_size=2000,
    )
    return [g.pk for g in gifts]


def start_process(command, *, env, log_path):
    """`python -m <command>` in its own process group (stopped with its children, and only them), logging to a file."""
    return subprocess.Popen(
        [sys.executable, "-m", *command],
        cwd=ROOT,
        env=env,
        stdout=log_path.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def stop(process):
    """A graceful shutdown (SIGTERM: Celery's warm shutdown, gunicorn's graceful one); a kill of the group if it
    hangs."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def wait_for_worker(worker, timeout=60):
    """Waits until the Celery worker (a process started with start_process) answers a ping."""
    from giftshop.celery import app

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if worker.poll() is not None:
            raise RuntimeError(f"the worker exited with {worker.returncode}")
        if app.control.ping(timeout=1.0):
            return
    raise RuntimeError(f"the worker did not answer a ping within {timeout} s")


def percentile(ordered, p):
    """Nearest rank: the smallest value with at least p% of the values at or below it."""
    return ordered[max(math.ceil(p / 100 * len(ordered)) - 1, 0)]
