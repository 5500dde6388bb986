"""The gifter's answers to "not redeemed yet" (issue 16): email the recipient the same gift again, or take the gift
to hand over in person (its printable certificate, the same code and claim window). Changing the address is the
existing correction (gifts.services.gift_change_recipient). The nudge emails themselves are gifts/reminders.py's."""

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from emails.models import Email
from emails.services import email_queue
from gifts.models import DeliveryMethod, Gift, GiftAction
from gifts.selectors import gift_for_update
from gifts.services import events_record, next_version
from giftshop.errors import ServiceError
from giftshop.timezones import in_words


def gifter_resend_prefix(gift_id):
    return f"gift:{gift_id}:delivery:gifter-resend:"


@transaction.atomic
def gift_gifter_resend(*, gift_id, actor, now=None):
    """Emails a delivered, unredeemed gift's recipient the delivery email again (same code), at the gifter's asking:
    at most once every GIFTER_RESEND_INTERVAL_HOURS, as every resend lands in a stranger's inbox too when the address
    is wrong (the gifter changes the address instead). Refused with a ServiceError (409, or 429 too soon); returns
    the outbox row. Under the gift's row lock, so a double click counts (and sends) once."""
    now = now or timezone.now()
    gift = gift_for_update(gift_id, "gifter")
    gift.raise_refusal(GiftAction.GIFTER_RESEND, now)
    prefix = gifter_resend_prefix(gift.pk)
    resends = Email.objects.filter(gift=gift, key__startswith=prefix)
    last = resends.order_by("-created_at").values_list("created_at", flat=True).first()
    interval = timedelta(hours=settings.GIFTER_RESEND_INTERVAL_HOURS)
    if last is not None and now < last + interval:
        again = in_words(last + interval, gift.gifter.zone().key, now)
        raise ServiceError(
            _(
                "You sent this gift again a short while ago; you can send it again from %(again)s. "
                "If the address may be wrong, change it instead."
            )
            % {"again": again},
            code="gift_resent_recently",
            status=429,
        )
    email = email_queue(
        kind=Email.Kind.GIFT_DELIVERY, key=f"{prefix}{resends.count() + 1}", to=gift.recipient_email, gift=gift
    )
    events_record(gift_ids=[gift.pk], event_type="gift_resent", now=now, extra={"comment": f"resent by {actor}"})
    return email


@transaction.atomic
def gift_handover_choose(*, gift_id, actor, now=None):
    """The gifter takes a delivered, unredeemed emailed gift to give in person: it becomes a handed-over gift (its
    certificate on "My gifts"), with the same code and claim window; the recipient gets nothing more from us (no
    nudge, no expiry reminder), though the link they were sent still works. Idempotent: a gift already handed over
    is returned unchanged (a second click, or a retry). Returns the gift."""
    now = now or timezone.now()
    gift = gift_for_update(gift_id)
    if gift.delivery_method == DeliveryMethod.HANDOVER:
        return gift
    gift.raise_refusal(GiftAction.HANDOVER, now)
    if gift.auto_claim:  # claimed by itself when delivered: there is nothing left to hand over
        raise ServiceError(_("This gift is redeemed automatically; there is nothing to hand over."), status=409)
    Gift.objects.filter(pk=gift.pk).update(
        delivery_method=DeliveryMethod.HANDOVER, updated_at=now, resource_version=next_version(now)
    )
    comment = f"to be handed over in person, chosen by {actor}"
    events_record(gift_ids=[gift.pk], event_type="gift_handover_chosen", now=now, extra={"comment": comment})
    gift.refresh_from_db()
    return gift
