"""Merchant events as Chargebee resources, and sending them to the merchant's webhook endpoints: POST with HTTP
Basic auth and an HMAC-SHA-256 signature of the body; any non-2xx answer is retried with backoff for two days, then
the delivery is marked failed."""

import base64
import hashlib
import hmac
import json
import logging
from datetime import timedelta

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from giftshop import outbound
from giftshop.chargebee import INTEGER, STRING, resource_schema
from giftshop.models import WebhookDelivery

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Giftshop-Signature"
RETRY_FOR = timedelta(days=2)
STUCK_AFTER = timedelta(minutes=5)
TIMEOUT_SECONDS = 10

EVENT_SCHEMA = resource_schema(
    "event",
    required=["occurred_at", "event_type", "content"],
    occurred_at=INTEGER,
    event_type=STRING,
    api_version=STRING,
    source=STRING,
    content={"type": "object"},
)


def event_resource(event):
    return {
        "id": event.event_id,
        "occurred_at": int(event.occurred_at.timestamp()),
        "source": "api",
        "object": "event",
        "api_version": "v2",
        "event_type": event.event_type,
        "content": event.content,
    }


def backoff(attempts):
    """1 min, 2, 4, 8 … capped at 2 hours."""
    return min(timedelta(minutes=2 ** max(attempts - 1, 0)), timedelta(hours=2))


def sign(secret, body):
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _post(delivery):
    endpoint = delivery.endpoint
    body = json.dumps(event_resource(delivery.event), separators=(",", ":")).encode()
    headers = {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: sign(endpoint.secret, body),
        "X-Giftshop-Event-Id": delivery.event.event_id,
    }
    if endpoint.username or endpoint.password:
        token = base64.b64encode(f"{endpoint.username}:{endpoint.password}".encode()).decode()
        headers["Authorization"] = f"Basic {token}"
    # Checked again after resolving the name, pinned to the checked address, no redirects (giftshop/outbound.py).
    return outbound.post(endpoint.url, body, headers, timeout=TIMEOUT_SECONDS)


def _deliver(delivery):
    status, error = _post(delivery)
    now = timezone.now()
    if status is not None and 200 <= status < 300:
        WebhookDelivery.objects.filter(pk=delivery.pk, status=WebhookDelivery.Status.SENDING).update(
            status=WebhookDelivery.Status.DELIVERED, delivered_at=now, last_status_code=status, last_error=""
        )
        return True
    retry_at = now + backoff(delivery.attempts)
    gave_up = retry_at > delivery.created_at + RETRY_FOR
    if gave_up:
        logger.error(
            "webhook %s to %s failed for good after %s attempts (%s)",
            delivery.event.event_id,
            delivery.endpoint.url,
            delivery.attempts,
            error or status,
        )
    WebhookDelivery.objects.filter(pk=delivery.pk, status=WebhookDelivery.Status.SENDING).update(
        status=WebhookDelivery.Status.FAILED if gave_up else WebhookDelivery.Status.PENDING,
        next_attempt_at=retry_at,
        last_status_code=status,
        last_error=error or f"HTTP {status}",
    )
    return False


def send_due_webhooks(*, now=None, batch_size=100):
    """Claims due deliveries (SKIP LOCKED, so workers share them), then posts each outside any transaction.
    Returns how many were delivered."""
    now = now or timezone.now()
    WebhookDelivery.objects.filter(
        status=WebhookDelivery.Status.SENDING, sending_started_at__lt=now - STUCK_AFTER
    ).update(status=WebhookDelivery.Status.PENDING)
    delivered = 0
    while True:
        with transaction.atomic():
            ids = list(
                # A deactivated endpoint gets nothing more; its waiting deliveries resume if it is switched back on.
                WebhookDelivery.objects.select_for_update(skip_locked=True, of=("self",))
                .filter(status=WebhookDelivery.Status.PENDING, next_attempt_at__lte=now, endpoint__active=True)
                .order_by("next_attempt_at", "pk")
                .values_list("pk", flat=True)[:batch_size]
            )
            WebhookDelivery.objects.filter(pk__in=ids).update(
                status=WebhookDelivery.Status.SENDING, sending_started_at=timezone.now(), attempts=F("attempts") + 1
            )
        if not ids:
            return delivered
        for delivery in WebhookDelivery.objects.filter(pk__in=ids).select_related("event", "endpoint").order_by("pk"):
            delivered += _deliver(delivery)
        if len(ids) < batch_size:
            return delivered
