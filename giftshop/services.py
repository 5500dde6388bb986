"""Writes to the shared records: merchant API keys, and merchant events with a webhook delivery for each endpoint
that wants them."""

import secrets

from django.db import transaction

from giftshop import tasks
from giftshop.chargebee import key_digest
from giftshop.models import ApiKey, Event, WebhookDelivery, WebhookEndpoint


def api_key_create(*, name, kind="full"):
    """A new merchant API key: (ApiKey, the key itself). The key is not stored; show it once."""
    raw = f"gs_{'live' if kind == 'full' else 'ro'}_{secrets.token_urlsafe(24)}"
    api_key = ApiKey.objects.create(name=name, kind=kind, prefix=raw[:12], key_digest=key_digest(raw))
    return api_key, raw


def merchant_events_record(*, events, now):
    """Records events, `[(event_type, gift_id, content), …]`, and queues each for every webhook endpoint that wants
    it, in the caller's transaction; the sender runs after commit. Returns the Event rows."""
    if not events:
        return []
    rows = Event.objects.bulk_create(
        [
            Event(event_type=event_type, gift_id=gift_id, occurred_at=now, content=content)
            for event_type, gift_id, content in events
        ]
    )
    endpoints = list(WebhookEndpoint.objects.filter(active=True))
    deliveries = [
        WebhookDelivery(event=event, endpoint=endpoint, next_attempt_at=now, created_at=now)
        for event in rows
        for endpoint in endpoints
        if endpoint.wants(event.event_type)
    ]
    if deliveries:
        WebhookDelivery.objects.bulk_create(deliveries)
        transaction.on_commit(tasks.send_due_webhooks.delay, robust=True)
    return rows
