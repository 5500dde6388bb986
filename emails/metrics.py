"""The outbox's metrics: what the provider accepted, refused and throttled, how long its answers took (counted where
it happens, emails/services.py and throttle.py), and, at each scrape, the queue (settings.METRICS_COLLECTORS).

`provider` is the email backend's name (`postmark`, `mailgun`, `smtp`, `locmem`): one per deployment, so the
label costs nothing and a change of provider shows as a new series."""

import time
from contextlib import contextmanager
from datetime import timedelta
from functools import cache

from django.conf import settings
from django.db.models import Count, Min, Q
from django.utils import timezone
from django.utils.module_loading import import_string
from prometheus_client import Counter, Histogram
from prometheus_client.core import GaugeMetricFamily

from emails.models import Email

SENT = Counter(
    "giftshop_emails_sent",
    "Emails the provider accepted, by provider and kind.",
    ["provider", "kind"],
)
FAILED = Counter(
    "giftshop_email_failures",
    "Failed sends, by provider, kind and outcome: retry (back in the queue) or failed (for good).",
    ["provider", "kind", "outcome"],
)
THROTTLED = Counter(
    "giftshop_email_throttled",
    "The provider's 'too many requests' answers (each pauses every sender for its Retry-After).",
    ["provider"],
)
PROVIDER_LATENCY = Histogram(
    "giftshop_email_provider_request_seconds",
    "Time of one request to the provider (one message, or a batch), by provider and outcome (ok, error, throttled).",
    ["provider", "outcome"],
    buckets=(0.025, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1, 2, 5, 10, 15, 30),
)


@cache
def _provider(backend_path):
    backend = import_string(backend_path)
    name = getattr(backend, "esp_name", None) or backend.__module__.rpartition(".")[2]
    return name.lower()


def provider():
    """The configured email backend's name, for the `provider` label."""
    return _provider(settings.EMAIL_BACKEND)


def email_sent(email):
    SENT.labels(provider(), email.kind).inc()


def email_failed(email, *, for_good):
    FAILED.labels(provider(), email.kind, "failed" if for_good else "retry").inc()


def throttled():
    THROTTLED.labels(provider()).inc()


@contextmanager
def provider_request():
    """Times one request to the provider."""
    started, outcome = time.perf_counter(), "error"
    try:
        yield
        outcome = "ok"
    except Exception as error:
        outcome = "throttled" if getattr(error, "status_code", None) == 429 else "error"
        raise
    finally:
        PROVIDER_LATENCY.labels(provider(), outcome).observe(time.perf_counter() - started)


def outbox():
    """The queue at this moment, in one query over the `pending` and `sending` rows: the emails waiting or under way,
    how long the oldest due one has waited, and those stuck `sending` (a lost worker)."""
    now = timezone.now()
    stuck_before = now - timedelta(seconds=settings.EMAIL_STUCK_AFTER)
    Status = Email.Status
    # OR, not IN: PostgreSQL then reads the two partial indexes (a BitmapOr), not the whole table of sent emails.
    row = Email.objects.filter(Q(status=Status.PENDING) | Q(status=Status.SENDING)).aggregate(
        pending=Count("pk", filter=Q(status=Status.PENDING)),
        sending=Count("pk", filter=Q(status=Status.SENDING)),
        stuck=Count("pk", filter=Q(status=Status.SENDING, sending_started_at__lt=stuck_before)),
        oldest_due=Min("next_attempt_at", filter=Q(status=Status.PENDING, next_attempt_at__lte=now)),
    )
    emails = GaugeMetricFamily(
        "giftshop_outbox_emails", "Emails in the outbox not yet sent, by status.", labels=["status"]
    )
    emails.add_metric(["pending"], row["pending"])
    emails.add_metric(["sending"], row["sending"])
    yield emails
    oldest = (now - row["oldest_due"]).total_seconds() if row["oldest_due"] else 0
    yield GaugeMetricFamily(
        "giftshop_outbox_oldest_due_seconds", "How long the oldest due pending email has waited (0: none).", oldest
    )
    yield GaugeMetricFamily(
        "giftshop_outbox_stuck_emails",
        "Emails `sending` for longer than EMAIL_STUCK_AFTER (their worker was lost; the sweep sends them again).",
        row["stuck"],
    )
