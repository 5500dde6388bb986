"""The retention rule for gifts' personal details: GIFT_DATA_RETENTION_DAYS (90 by default) after a gift was
redeemed, expired or cancelled, its personal note, signature and the recipient's address and names are removed, with
the copies in its stored events and outbox rows (and, through gifts.signals.gift_details_removed, its order's). What
stays (offer, status, dates, the gifter and receiver as accounts, the invoice) is what the books and support need.
The outbox has no message to remove: emails are rendered when they are sent, never stored."""

import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from emails.models import Email
from emails.personal_data import addresses_replace
from gifts import signals
from gifts.models import Gift, GiftStatus
from gifts.personal_data import events_scrub
from gifts.selectors import gifts_for_update

logger = logging.getLogger(__name__)

DETAILS_REMOVED = {
    "personal_note": "",
    "signature": "",
    "recipient_email": "",
    "recipient_first_name": "",
    "recipient_last_name": "",
}


def ended_before(cutoff):
    """Gifts redeemed, expired or cancelled before `cutoff` (an expired gift its gifter sends again is `unclaimed`
    again, and waits for its new end)."""
    return (
        Q(status=GiftStatus.CLAIMED, claimed_at__lt=cutoff)
        | Q(status=GiftStatus.EXPIRED, expired_at__lt=cutoff)
        | Q(status=GiftStatus.CANCELLED, cancelled_at__lt=cutoff)
    )


def holding_details():
    """Gifts that still hold a personal detail: what makes the rule idempotent, however often it runs."""
    held = Q()
    for name in DETAILS_REMOVED:
        held |= ~Q(**{name: ""})
    return held


def gift_details_remove_ended(*, now=None, batch_size=500):
    """Applies the retention rule to every gift it has come to, in batches of `batch_size` (each its own
    transaction, its rows locked with SKIP LOCKED: a gift being changed right now waits for the next run). Returns the
    number of gifts whose details were removed."""
    now = now or timezone.now()
    cutoff = now - timedelta(days=settings.GIFT_DATA_RETENTION_DAYS)
    removed, after = 0, 0
    while True:
        with transaction.atomic():
            ids = list(
                gifts_for_update(skip_locked=True)
                .filter(ended_before(cutoff), holding_details(), pk__gt=after)
                .order_by("pk")
                .values_list("pk", flat=True)[:batch_size]
            )
            if not ids:
                break
            _details_remove(ids, now)
        removed, after = removed + len(ids), ids[-1]
        if len(ids) < batch_size:
            break
    if removed:
        days = settings.GIFT_DATA_RETENTION_DAYS
        logger.info("personal details removed from %s gift(s) over for more than %s days", removed, days)
    return removed


def _details_remove(ids, now):
    Gift.objects.filter(pk__in=ids).update(**DETAILS_REMOVED, updated_at=now)
    events_scrub(ids, gifter_keys=["signature", "note"], receiver="")
    # The recipient's emails (every address the gift was sent to); the gifter's stay theirs. A row still waiting
    # to be sent keeps its address: it is sent (a late reminder) or fails on its own.
    recipients = Email.objects.filter(gift_id__in=ids).exclude(to_email="").exclude(to_email=F("gift__gifter__email"))
    addresses_replace(recipients.exclude(status__in=[Email.Status.PENDING, Email.Status.SENDING]), "")
    signals.gift_details_removed.send(sender=Gift, gift_ids=ids)
