"""Support's tools for a gift that went astray: send the delivery email again, give the gift a new code, or send it
to a corrected address (also for an expired storefront gift, with a fresh claim window). Used by the admin actions
and the gifter's correction page."""

from django.db import IntegrityError, transaction
from django.utils import timezone

from emails.models import Email
from emails.services import email_queue
from gifts.models import Gift, GiftStatus
from gifts.services import events_record, gift_defaults, gift_transition, next_version
from giftshop import validation
from giftshop.errors import ServiceError


def _support_refusal(gift, now, *, allowed):
    """Why support cannot act on the gift in its state, in plain words; None when it can."""
    expiry = gift.claim_expiry_date
    if gift.status == GiftStatus.UNCLAIMED and not gift.no_expiry and expiry and now >= expiry:
        return "The gift has expired."  # the expiry sweep has not run yet, but the code is already dead
    if gift.status in allowed:
        return None
    if gift.status == GiftStatus.SCHEDULED:
        return "The gift has not been delivered yet; the recipient gets its email on the delivery date."
    if gift.status == GiftStatus.CLAIMED:
        return "The gift has already been redeemed."
    return f"The gift is {gift.get_status_display().lower()}."


def _delivery_resend(gift):
    """Queues the delivery email again, to the recipient as they are now; the code is read when it is sent.
    Callers hold the gift's row lock, so two resends cannot number themselves alike."""
    prefix = f"gift:{gift.pk}:delivery:resend:"
    n = Email.objects.filter(gift=gift, key__startswith=prefix).count() + 1
    return email_queue(kind=Email.Kind.GIFT_DELIVERY, key=f"{prefix}{n}", to=gift.recipient_email, gift=gift)


def _update_with_new_code(gift, now):
    """Gives an existing gift a new code in one UPDATE; a collision on the unique digest gets another code."""
    for _attempt in range(5):
        gift.assign_code()
        try:
            with transaction.atomic():
                Gift.objects.filter(pk=gift.pk).update(
                    code_nonce=gift.code_nonce,
                    code_digest=gift.code_digest,
                    code_last4=gift.code_last4,
                    updated_at=now,
                    resource_version=next_version(now),
                )
            return
        except IntegrityError as error:
            if "code_digest" not in str(error):
                raise
    raise RuntimeError("could not find a free gift code")  # pragma: no cover - would take ~10^12 live gifts


def _locked_for_support(gift_id, now, *, allowed):
    gift = Gift.objects.select_for_update(of=("self",)).get(pk=gift_id)
    refusal = _support_refusal(gift, now, allowed=allowed)
    if refusal:
        raise ServiceError(refusal, code="invalid_state", status=409)
    return gift


@transaction.atomic
def gift_resend(*, gift_id, actor, now=None):
    """Emails a delivered (`unclaimed`) gift's recipient again, with the same code. Returns the outbox row."""
    now = now or timezone.now()
    gift = _locked_for_support(gift_id, now, allowed=(GiftStatus.UNCLAIMED,))
    email = _delivery_resend(gift)
    comment = f"delivery email resent by {actor}"
    events_record(gift_ids=[gift.pk], event_type="gift_updated", now=now, extra={"comment": comment})
    return email


@transaction.atomic
def gift_reissue_code(*, gift_id, actor, now=None):
    """Gives a `scheduled` or `unclaimed` gift a new code, so the old one stops working; a delivered gift's
    recipient is emailed the new one. Returns the gift (its `.code` is the new code, for support to pass on)."""
    now = now or timezone.now()
    gift = _locked_for_support(gift_id, now, allowed=(GiftStatus.SCHEDULED, GiftStatus.UNCLAIMED))
    _update_with_new_code(gift, now)
    if gift.status == GiftStatus.UNCLAIMED:
        _delivery_resend(gift)
    # The comment names no code: events are stored and sent to webhooks, and no column may hold a code.
    comment = f"code reissued by {actor}"
    events_record(gift_ids=[gift.pk], event_type="gift_updated", now=now, extra={"comment": comment})
    gift.refresh_from_db()
    return gift


@transaction.atomic
def gift_change_recipient(*, gift_id, recipient_email, actor, now=None):
    """Corrects where a `scheduled`, `unclaimed` or (storefront) `expired` gift goes; a delivered one is emailed
    again to the new address with the same code, an expired one with a fresh claim window."""
    now = now or timezone.now()
    recipient_email = validation.email_address(recipient_email, field="recipient_email")
    allowed = (GiftStatus.SCHEDULED, GiftStatus.UNCLAIMED, GiftStatus.EXPIRED)
    gift = _locked_for_support(gift_id, now, allowed=allowed)
    if gift.status == GiftStatus.EXPIRED and gift.source != Gift.Source.STOREFRONT:
        raise ServiceError(
            "This gift expired and its subscription was cancelled; it cannot be sent again.",
            code="invalid_state",
            status=409,
        )
    Gift.objects.filter(pk=gift.pk).update(
        recipient_email=recipient_email, updated_at=now, resource_version=next_version(now)
    )
    gift.recipient_email = recipient_email
    if gift.status == GiftStatus.EXPIRED:
        # Sent again with a fresh claim window, as if delivered now.
        _, no_expiry, claim_expiry_date = gift_defaults(scheduled_at=now, auto_claim=False)
        gift_transition(
            gift_ids=[gift.pk],
            to=GiftStatus.UNCLAIMED,
            now=now,
            actor=actor,
            sent_at=now,
            expired_at=None,
            no_expiry=no_expiry,
            claim_expiry_date=claim_expiry_date,
        )
        gift.status = GiftStatus.UNCLAIMED
    if gift.status == GiftStatus.UNCLAIMED:
        _delivery_resend(gift)
    comment = f"recipient email changed by {actor}"
    events_record(gift_ids=[gift.pk], event_type="gift_updated", now=now, extra={"comment": comment})
    gift.refresh_from_db()
    return gift
