"""The gifts' metrics: how late deliveries go out and how gift codes fail (counted where it happens), and, at each
scrape (settings.METRICS_COLLECTORS), the gifts by status, the oldest gift waiting for its delivery and the state of
the global budget of failed typed codes (giftshop/ratelimit.py)."""

from contextlib import contextmanager

from django.conf import settings
from django.db.models import Count, Min
from django.utils import timezone
from prometheus_client import Counter, Histogram
from prometheus_client.core import GaugeMetricFamily

from emails import metrics as email_metrics
from gifts.models import Gift, GiftStatus
from giftshop import ratelimit

# The scope of the gift codes' attempt limits and global budget (gifts/verification.py).
CODE_SCOPE = "gift-code"

DELIVERY_LATENESS = Histogram(
    "giftshop_gift_delivery_lateness_seconds",
    "From a gift's delivery time to the provider accepting the recipient's email, by provider.",
    ["provider"],
    buckets=(1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800, 3600, 4 * 3600, 24 * 3600),
)
CODE_FAILURES = Counter(
    "giftshop_gift_code_failures",
    "Gift codes that failed: by channel (typed, link) and reason: wrong (no such code or link), limited (the "
    "client or account is over its attempts), paused (typed codes paused by the global budget).",
    ["channel", "reason"],
)


def deliveries_accepted(emails):
    """The provider accepted these delivery emails (the outbox's "sent" hook): each one's lateness. A resend to a
    corrected address is not a delivery's lateness. (In the rare case that the outbox writes a group twice, a
    follow-up's key taken meanwhile, its emails are counted twice.)"""
    provider = email_metrics.provider()
    for email in emails:
        if email.gift_id and email.sent_at and email.key == f"gift:{email.gift_id}:delivery":
            DELIVERY_LATENESS.labels(provider).observe(
                max((email.sent_at - email.gift.scheduled_at).total_seconds(), 0)
            )


@contextmanager
def code_attempt_counted(*, typed, is_guess):
    """Counts the code attempt run inside it if it fails: a wrong code (`is_guess`) or a refusal by the limits."""
    channel = "typed" if typed else "link"
    try:
        yield
    except ratelimit.TypedCodesPaused:
        CODE_FAILURES.labels(channel, "paused").inc()
        raise
    except ratelimit.LimitExceeded:
        CODE_FAILURES.labels(channel, "limited").inc()
        raise
    except Exception as error:
        if is_guess(error):
            CODE_FAILURES.labels(channel, "wrong").inc()
        raise


def gifts():
    """The gifts by status (one GROUP BY), and how long the oldest gift due for delivery has waited (the partial
    index of scheduled gifts)."""
    counts = dict(Gift.objects.order_by().values_list("status").annotate(Count("pk")))
    by_status = GaugeMetricFamily("giftshop_gifts", "Gifts, by status.", labels=["status"])
    for status in GiftStatus.values:
        by_status.add_metric([status], counts.get(status, 0))
    yield by_status
    now = timezone.now()
    oldest = Gift.objects.filter(status=GiftStatus.SCHEDULED, scheduled_at__lte=now).aggregate(due=Min("scheduled_at"))
    waited = (now - oldest["due"]).total_seconds() if oldest["due"] else 0
    yield GaugeMetricFamily(
        "giftshop_gift_delivery_oldest_due_seconds",
        "How long the oldest gift due for delivery has waited (0: none).",
        waited,
    )


def code_budget():
    """The global budget of failed typed codes (from the cache): this window's failures, the budget, and the seconds
    left of a pause of typed codes (0: not paused)."""
    yield GaugeMetricFamily(
        "giftshop_gift_code_global_failures",
        "Failed typed gift codes from all clients in the current global window.",
        ratelimit.failures(CODE_SCOPE),
    )
    yield GaugeMetricFamily(
        "giftshop_gift_code_global_budget",
        "Failed typed gift codes allowed per global window before typed codes pause (GIFT_CODE_GLOBAL_FAILURE_LIMIT).",
        settings.GIFT_CODE_GLOBAL_FAILURE_LIMIT,
    )
    yield GaugeMetricFamily(
        "giftshop_gift_code_paused_seconds",
        "Seconds left of the pause of typed gift codes (0: not paused).",
        ratelimit.paused_for(CODE_SCOPE),
    )
