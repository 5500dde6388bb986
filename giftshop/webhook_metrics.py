"""The merchant webhooks' backlog, read at each scrape (settings.METRICS_COLLECTORS): deliveries waiting, and how
long the oldest due one has waited (the partial index of pending deliveries). Apart from giftshop/metrics.py, which
gunicorn's master loads before Django's apps, and so may not import models."""

from django.db.models import Count, Min, Q
from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily

from giftshop.models import WebhookDelivery


def backlog():
    now = timezone.now()
    row = WebhookDelivery.objects.filter(status=WebhookDelivery.Status.PENDING).aggregate(
        pending=Count("pk"), oldest_due=Min("next_attempt_at", filter=Q(next_attempt_at__lte=now))
    )
    yield GaugeMetricFamily(
        "giftshop_webhook_deliveries_pending", "Webhook deliveries to merchants waiting to be sent.", row["pending"]
    )
    oldest = (now - row["oldest_due"]).total_seconds() if row["oldest_due"] else 0
    yield GaugeMetricFamily(
        "giftshop_webhook_oldest_due_seconds", "How long the oldest due webhook delivery has waited (0: none).", oldest
    )
