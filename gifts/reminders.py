"""The reminder sweep: emails that fall due with the passing of time, not with a change — a gift term about to
end and an unredeemed gift about to expire (to the recipient, 7 days and 1 day before), a gift that expired
unredeemed (to the gifter), and an emailed gift not redeemed yet some days after its delivery (the "nudges" of
issue 16: GIFT_NUDGE_RECIPIENT_DAYS to the recipient, GIFT_NUDGE_GIFTER_DAYS to the gifter, once each).

Each reminder is an outbox row whose key names the thing, the reminder and the period (e.g.
`subscription:12:term-end:2026-07-01:7d`), so however often the sweep runs, and however many workers run it at
once, the unique key lets each reminder exist once: a worker that loses the race finds the row and sends
nothing."""

import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef, Q, Subquery
from django.utils import timezone

from accounts.models import Subscription
from emails.models import Email
from emails.services import email_queue
from gifts.models import DeliveryMethod, Gift, GiftStatus
from gifts.selectors import UNDELIVERABLE, last_delivery_status

logger = logging.getLogger(__name__)

WEEK, DAY = timedelta(days=7), timedelta(days=1)
# An "expired unredeemed" notice later than this after the expiry is no longer news (and a first deploy must not
# tell gifters about every gift that ever expired).
EXPIRED_NOTICE_WITHIN = timedelta(days=7)
BATCH = 500


def send_reminders(*, now=None) -> int:
    """Queues every reminder that is due and not queued yet; the outbox sends them after commit. Returns the
    number this run found to queue (under a race with another worker both may count one; each email still
    exists once)."""
    now = now or timezone.now()
    return _term_ending(now) + _claim_expiring(now) + _expired(now) + _not_redeemed(now)


def _period(deadline, now):
    """Which reminder is due for a deadline within the week: the 7-day one only while more than a day remains,
    so a sweep that was down does not send it the evening before, followed by the 1-day one."""
    return "7d" if deadline - now > DAY else "1d"


def _queue_missing(reminders):
    """Queues the (key, kind, to, gift) reminders whose key is not in the outbox yet, each in its own short
    transaction, so two workers racing on one key wait for each other only on that row."""
    reminders = list(reminders)
    queued = set(Email.objects.filter(key__in=[r[0] for r in reminders]).values_list("key", flat=True))
    count = 0
    for key, kind, to, gift in reminders:
        if key in queued:
            continue
        with transaction.atomic():
            email_queue(kind=kind, key=key, to=to, gift=gift)
        count += 1
    return count


def _batches(queryset):
    """The rows of a queryset ordered by pk, a batch at a time (keyset pagination: rows may drop out meanwhile)."""
    last = 0
    while True:
        rows = list(queryset.filter(pk__gt=last).order_by("pk")[:BATCH])
        if rows:
            yield rows
            last = rows[-1].pk
        if len(rows) < BATCH:
            return


def _term_ending(now):
    """Gift subscriptions whose term ends within the week. The email hangs on the gift that started the
    subscription (its `subscription`), which is also how the admin finds it."""
    first_gift = Gift.objects.filter(subscription=OuterRef("pk")).order_by("pk").values("pk")[:1]
    due = (
        Subscription.objects.filter(
            origin=Subscription.Origin.GIFT,
            status__in=[Subscription.Status.ACTIVE, Subscription.Status.NON_RENEWING],
            term_end__gt=now,
            term_end__lte=now + WEEK,
        )
        .annotate(gift_id=Subquery(first_gift))
        .select_related("customer")
    )
    count = 0
    for rows in _batches(due):
        reminders = []
        for sub in rows:
            if sub.gift_id is None:
                logger.warning("gift subscription %s has no gift; no term-end reminder", sub.pk)
                continue
            key = f"subscription:{sub.pk}:term-end:{sub.term_end:%Y-%m-%d}:{_period(sub.term_end, now)}"
            reminders.append((key, Email.Kind.TERM_ENDING, sub.customer.email, Gift(pk=sub.gift_id)))
        count += _queue_missing(reminders)
    return count


def _claim_expiring(now):
    """Delivered, unredeemed gifts whose code expires within the week; not to an address that bounced the
    delivery (the gifter has been asked to correct it, and the resend resets this)."""
    due = (
        Gift.objects.claim_window_passed(now + WEEK, since=now)
        .filter(status=GiftStatus.UNCLAIMED)  # not a declined gift: its recipient said no thanks (issue 16)
        .alias(last_delivery=last_delivery_status())
        .filter(Q(last_delivery__isnull=True) | ~Q(last_delivery__in=UNDELIVERABLE))
        .exclude(recipient_email="")  # handed over in person: we have no address (its gifter holds the code)
        .exclude(delivery_method=DeliveryMethod.HANDOVER)  # emailed first, then taken to hand over (gifts/nudges.py)
        .only("pk", "recipient_email", "claim_expiry_date")
    )
    count = 0
    for rows in _batches(due):
        reminders = [
            (
                f"gift:{gift.pk}:claim-expiry:{_period(gift.claim_expiry_date, now)}",
                Email.Kind.CLAIM_EXPIRING,
                gift.recipient_email,
                gift,
            )
            for gift in rows
        ]
        count += _queue_missing(reminders)
    return count


def _expired(now):
    """Gifts that expired unredeemed lately: the gifter hears of it, with a link to the gift on their account."""
    due = Gift.objects.filter(status=GiftStatus.EXPIRED, expired_at__gt=now - EXPIRED_NOTICE_WITHIN)
    count = 0
    for rows in _batches(due.select_related("gifter")):
        reminders = [(f"gift:{gift.pk}:expired", Email.Kind.GIFT_EXPIRED, gift.gifter.email, gift) for gift in rows]
        count += _queue_missing(reminders)
    return count


# A nudge later than this after its day is no longer timely (a sweep that was down catches up within it; a first
# deploy does not nudge about every gift ever sent).
NUDGE_WITHIN = timedelta(days=7)


def _unredeemed_since(now, days):
    """Emailed gifts delivered `days` (to `days` + NUDGE_WITHIN) ago and still unredeemed (`unclaimed`: not declined,
    withdrawn or expired), whose claim window is still open and whose latest delivery email was not refused. Not
    when the recipient marked one of our emails as spam (nothing optional goes to that address again)."""
    due = now - timedelta(days=days)
    return (
        Gift.objects.filter(
            status=GiftStatus.UNCLAIMED,
            delivery_method=DeliveryMethod.EMAIL,
            sent_at__lte=due,
            sent_at__gt=due - NUDGE_WITHIN,
        )
        .exclude(recipient_email="")
        .filter(Q(no_expiry=True) | Q(claim_expiry_date__isnull=True) | Q(claim_expiry_date__gt=now))
        .alias(last_delivery=last_delivery_status())
        .filter(Q(last_delivery__isnull=True) | ~Q(last_delivery__in=UNDELIVERABLE))
        .exclude(Exists(_complaints_from("recipient_email")))
    )


def _complaints_from(address_field):
    """Our emails to the gift's `address_field` that their recipient marked as spam (emails.services.email_tracked)."""
    return Email.objects.filter(to_email=OuterRef(address_field), complained_at__isnull=False)


def _not_redeemed(now):
    """The "not redeemed yet" nudges: the recipient's reminder, then the gifter's notice with what they can do."""
    count = 0
    recipients = _unredeemed_since(now, settings.GIFT_NUDGE_RECIPIENT_DAYS).only("pk", "recipient_email")
    for rows in _batches(recipients):
        nudges = [(nudge_key(gift.pk), Email.Kind.GIFT_NUDGE, gift.recipient_email, gift) for gift in rows]
        count += _queue_missing(nudges)
    gifters = (
        _unredeemed_since(now, settings.GIFT_NUDGE_GIFTER_DAYS)
        .exclude(Exists(_complaints_from("gifter__email")))
        .select_related("gifter")
    )
    for rows in _batches(gifters.only("pk", "gifter__email")):
        notices = [(not_redeemed_key(gift.pk), Email.Kind.GIFT_NOT_REDEEMED, gift.gifter.email, gift) for gift in rows]
        count += _queue_missing(notices)
    return count


def nudge_key(gift_id):
    return f"gift:{gift_id}:nudge"


def not_redeemed_key(gift_id):
    return f"gift:{gift_id}:not-redeemed"
