"""The delivery's readiness check (settings.HEALTH_CHECKS): beat and a worker are running the delivery sweep
(it notes each run in the cache), and no gift is overdue for longer than HEALTH_DELIVERY_MAX_AGE seconds."""

import time

from django.conf import settings
from django.core.cache import cache
from django.db.models import Min
from django.utils import timezone

from gifts.models import Gift, GiftStatus

SWEEP_HEARTBEAT = "health:delivery-sweep"


def sweep_ran():
    """Called by every run of the beat's delivery sweep."""
    cache.set(SWEEP_HEARTBEAT, time.time(), timeout=None)


def delivery():
    last = cache.get(SWEEP_HEARTBEAT)
    since = time.time() - last if last else None
    oldest = Gift.objects.filter(status=GiftStatus.SCHEDULED, scheduled_at__lte=timezone.now()).aggregate(
        due=Min("scheduled_at")
    )["due"]
    overdue = (timezone.now() - oldest).total_seconds() if oldest else 0
    ok = since is not None and since <= settings.HEALTH_SWEEP_MAX_AGE and overdue <= settings.HEALTH_DELIVERY_MAX_AGE
    swept = f"last sweep {since:.0f} s ago" if since is not None else "no sweep has run"
    return ok, f"{swept}; oldest due gift waiting {overdue:.0f} s"
