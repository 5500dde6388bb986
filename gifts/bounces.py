"""Bounces: the ESP's tracking webhooks (anymail's views under /anymail/<esp>/tracking/, which check the HTTP
Basic secret and the ESP's own signature before any event reaches us) mark the email that did not arrive, and
when it was a gift's delivery the gifter is asked to correct the address.

ESPs deliver webhooks at least once, so everything here is idempotent: the row moves only from a state that a
bounce can follow (a duplicate finds it moved and changes nothing), and the gifter's email has a unique key."""

import logging

from anymail.signals import tracking
from django.db import transaction
from django.dispatch import receiver
from django.utils import timezone

from gifts.models import Email, Gift
from gifts.services import email_queue, events_record

logger = logging.getLogger(__name__)

# anymail's normalized event types that mean the message did not (and will not) reach the recipient. A complaint
# did arrive, but ESPs suppress the address afterwards, so nothing sent to it again would.
STATUS_FOR_EVENT = {
    "bounced": Email.Status.BOUNCED,
    "rejected": Email.Status.BOUNCED,
    "complained": Email.Status.BOUNCED,
    "failed": Email.Status.FAILED,
}


def _email_for(message_id, email_key):
    """The outbox row an ESP event is about: by the key we sent as metadata (ESPs that echo it), else by the
    message id the ESP gave when it accepted the message (with or without the <> some ESPs add)."""
    if email_key:
        email = Email.objects.filter(key=email_key).first()
        if email is not None:
            return email
    if message_id:
        bare = str(message_id).strip().strip("<>")
        return Email.objects.filter(provider_message_id__in=[bare, f"<{bare}>"]).order_by("-pk").first()
    return None


@transaction.atomic
def email_bounced(*, message_id=None, email_key=None, recipient, event_type, description, now=None):
    """Records that an email did not arrive. A gift's delivery email also gets a gift_updated event and ONE email
    to the gifter asking for a corrected address. Returns the row it moved, or None (not ours, not a bounce, or
    already recorded)."""
    now = now or timezone.now()
    status = STATUS_FOR_EVENT.get(event_type)
    email = _email_for(message_id, email_key) if status else None
    if email is None:
        if status:
            logger.info("%s event for an unknown email (message id %r, key %r)", event_type, message_id, email_key)
        return None
    # `sending` too: the webhook can beat the worker's write of `sent`, which is conditional on `sending` and so
    # leaves the bounce in place.
    moved = Email.objects.filter(pk=email.pk, status__in=[Email.Status.SENDING, Email.Status.SENT]).update(
        status=status, last_error=f"{event_type} ({recipient}): {description}"[:2000]
    )
    if not moved:
        return None
    logger.warning("email %s to %s %s: %s", email.key, recipient or email.to_email, event_type, description)
    delivery_undeliverable(email=email, status=status, now=now)
    email.refresh_from_db()
    return email


def delivery_undeliverable(*, email, status, now):
    """A gift's delivery email will not arrive (bounced, or refused for good while sending): a gift_updated event
    and ONE email asking the gifter for a corrected address."""
    if email.kind != Email.Kind.GIFT_DELIVERY or not email.gift_id:
        return
    gift = Gift.objects.select_related("gifter").get(pk=email.gift_id)
    # The comment names no address: events go to merchant webhooks.
    events_record(gift_ids=[gift.pk], event_type="gift_updated", now=now, extra={"comment": f"delivery email {status}"})
    email_queue(kind=Email.Kind.GIFT_BOUNCED, key=bounce_notice_key(gift.pk, email.pk), to=gift.gifter.email, gift=gift)


def bounce_notice_key(gift_id, email_id):
    """One notice per bounced delivery email: a resend to a corrected address that bounces again is news."""
    return f"gift:{gift_id}:bounced:{email_id}"


def bounced_email_of_notice(notice):
    """The delivery email a bounce notice is about (its key names it), for the notice's text."""
    return Email.objects.get(pk=int(notice.key.rsplit(":", 1)[1]), gift_id=notice.gift_id)


@receiver(tracking, dispatch_uid="gifts.bounces.tracking_received")
def tracking_received(sender, event, esp_name, **kwargs):
    """anymail's tracking signal, after the webhook passed its checks: only non-delivery events are ours."""
    if event.event_type not in STATUS_FOR_EVENT:
        return
    email_bounced(
        message_id=event.message_id,
        email_key=(event.metadata or {}).get("email_key"),
        recipient=event.recipient or "",
        event_type=event.event_type,
        description=event.description or event.mta_response or "",
    )
