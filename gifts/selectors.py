"""Reads of gifts: the gifter's access rule, the delivery email's fate, the one way a gift row is locked, and the
designs checkout offers."""

from dataclasses import dataclass

from django.db.models import OuterRef, Prefetch, Subquery
from django.shortcuts import get_object_or_404
from django.utils.translation import gettext as _
from django.utils.translation import pgettext

from emails.models import Email
from gifts import codes
from gifts.models import DeliveryMethod, Gift, GiftDesign, GiftStatus, GiftTimeline
from giftshop.errors import ServiceError
from giftshop.timezones import in_words

# A delivery email in one of these states did not reach the recipient (the ESP bounced or refused it).
UNDELIVERABLE = (Email.Status.FAILED, Email.Status.BOUNCED)


def last_delivery_status():
    """The status of a gift's latest delivery email (a resend is a new row), for annotating gifts: a gift whose
    latest one is UNDELIVERABLE waits for a corrected address."""
    latest = Email.objects.filter(gift=OuterRef("pk"), kind=Email.Kind.GIFT_DELIVERY).order_by("-pk")
    return Subquery(latest.values("status")[:1])


def gift_for_gifter(customer, gift_id):
    """The access rule for a gift's purchase details: only its gifter sees it; anyone else gets 404."""
    gifts = Gift.objects.select_related("offer", "gifter", "subscription").annotate(
        last_delivery_status=last_delivery_status()
    )
    return get_object_or_404(gifts, pk=gift_id, gifter=customer)


def gift_withdrawn(gift):
    """Whether a cancelled gift was withdrawn by its gifter (issue 16): its cancellation's actor is a customer, which
    only the gifter's withdrawal is (support's is `admin:…`, the merchant API's `merchant`)."""
    return GiftTimeline.objects.filter(gift_id=gift.pk, status="cancelled", actor__startswith="customer:").exists()


def gifts_for_update(*, skip_locked=False):
    """Gifts read with their rows locked until the transaction ends: only the gift rows, never a joined offer's or
    customer's. Whoever also locks a customer's subscriptions locks the gift first, so two lockers cannot deadlock."""
    return Gift.objects.select_for_update(of=("self",), skip_locked=skip_locked)


def gift_for_update(gift_id, *related):
    """The gift, its row locked (gifts_for_update), with the `related` rows read alongside."""
    return gifts_for_update().select_related(*related).get(pk=gift_id)


def designs_on_offer():
    """The designs a gifter chooses from at checkout, in their order (images left out: the page links them)."""
    return GiftDesign.objects.filter(is_active=True).defer("image")


def design_for_checkout(reference, *, field="designId"):
    """The active design a checkout names by id or slug; None for none (the plain look). Anything else is refused
    (422) naming `field`, before an order is changed or paid."""
    if reference in (None, ""):
        return None
    reference = str(reference).strip()
    # An id fits a bigint (19 digits or more would overflow the query); anything else is looked up as a slug.
    by_id = reference.isascii() and reference.isdigit() and len(reference) < 19
    lookup = {"pk": int(reference)} if by_id else {"slug": reference}
    design = designs_on_offer().filter(**lookup).first()
    if design is None:
        raise ServiceError(
            _("There is no such gift design to choose: pick one of the designs on offer."),
            code="invalid_design",
            field=field,
        )
    return design


# --- a gift's path, for its gifter's "My gifts" (issue 16) ----------------------------------------------------


def gifts_given_with_paths(customer):
    """The customer's own gifts (not a list's or a group code's: those have their own pages), newest first, with
    what gift_path reads loaded in one query each for the page: the delivery emails (every send, in order) and
    the timeline (who cancelled it)."""
    deliveries = Email.objects.filter(kind=Email.Kind.GIFT_DELIVERY).order_by("pk")
    return (
        customer.gifts_given.filter(bulk_row__isnull=True, group_seat__isnull=True)
        .select_related("offer", "gifter", "receiver")
        .annotate(last_delivery_status=last_delivery_status())
        .prefetch_related(Prefetch("emails", queryset=deliveries, to_attr="delivery_emails"), "timeline")
        .order_by("-created_at", "-pk")
    )


@dataclass(frozen=True)
class PathStep:
    key: str  # paid, sent, delivered, opened, redeemed; bounced, declined, withdrawn, cancelled, expired
    label: str
    when: str  # in the gifter's zone; "" for a step not reached
    done: bool
    ending: bool = False  # an end other than redeemed


def withdrawn_by_gifter(gift):
    """gift_withdrawn on a gift whose timeline is prefetched (gifts_given_with_paths): no query per gift."""
    actor = f"customer:{gift.gifter_id}"
    return gift.status == GiftStatus.CANCELLED and any(
        row.status == GiftStatus.CANCELLED and row.actor == actor for row in gift.timeline.all()
    )


def _ending(gift, withdrawn, bounced):
    """The step a gift's path ended on, other than redeemed: (key, label, when), or None."""
    if gift.status == GiftStatus.CANCELLED:
        if withdrawn:
            return "withdrawn", pgettext("gift path step", "Withdrawn"), gift.cancelled_at
        return "cancelled", pgettext("gift path step", "Cancelled"), gift.cancelled_at
    if gift.status == GiftStatus.EXPIRED:
        return "expired", pgettext("gift path step", "Expired"), gift.expired_at
    if gift.status == GiftStatus.DECLINED:
        return "declined", pgettext("gift path step", "Declined"), gift.declined_at
    if bounced is not None:
        return "bounced", pgettext("gift path step", "Bounced"), bounced
    return None


def gift_path(gift, zone_name, now=None):
    """Each step of a gift's way to its recipient, as its gifter's page shows it: paid → sent → delivered → opened
    → redeemed (a handed-over gift: paid → ready to hand over → redeemed), or the end it came to instead (bounced,
    declined, withdrawn, cancelled, expired), each with its time in `zone_name`. Delivered and opened are the
    provider's reports on the latest delivery email (a resend to a corrected address starts them again); a click
    on the link counts as opened (images may be blocked, which hides an open). `gift` comes from
    gifts_given_with_paths."""
    emails = getattr(gift, "delivery_emails", [])
    latest = emails[-1] if emails else None
    bounced = None
    if gift.status == GiftStatus.UNCLAIMED and latest is not None and latest.status in UNDELIVERABLE:
        bounced = latest.sent_at or latest.created_at
    opened = None
    if latest is not None:
        opened = min((t for t in (latest.opened_at, latest.clicked_at) if t), default=None)
    if gift.delivery_method == DeliveryMethod.HANDOVER:
        steps = [
            ("paid", pgettext("gift path step", "Paid"), gift.created_at),
            ("sent", pgettext("gift path step", "Ready to hand over"), gift.sent_at),
        ]
    else:
        sent = latest.sent_at if latest is not None and latest.sent_at else gift.sent_at
        steps = [
            ("paid", pgettext("gift path step", "Paid"), gift.created_at),
            ("sent", pgettext("gift path step", "Sent"), sent),
            ("delivered", pgettext("gift path step", "Delivered"), latest.delivered_at if latest is not None else None),
            ("opened", pgettext("gift path step", "Opened"), opened),
        ]
    steps.append(
        (
            "redeemed",
            pgettext("gift path step", "Redeemed"),
            gift.claimed_at if gift.status == GiftStatus.CLAIMED else None,
        )
    )
    ending = _ending(gift, withdrawn_by_gifter(gift), bounced)
    path = []
    for index, (key, label, when) in enumerate(steps):
        # A path that ended early shows what happened, then how it ended; a step no one reported that a later one
        # proves (an ESP without open tracking, a redeemed gift) is left out rather than shown as "not yet".
        if when is None and (ending or any(later for _key, _label, later in steps[index + 1 :])):
            continue
        path.append(PathStep(key=key, label=label, when=in_words(when, zone_name, now), done=when is not None))
    if ending:
        key, label, when = ending
        path.append(PathStep(key=key, label=label, when=in_words(when, zone_name, now), done=True, ending=True))
    return path


def gift_language_for_link(token):
    """The language stored on the gift an emailed link's token names (Gift.language, "" when none), or "" for a token
    that is not a gift's. No attempt is counted: a token is a 128-bit MAC, not a guessable code."""
    gift_id = codes.link_token_gift_id(token)
    if gift_id is None:
        return ""
    row = Gift.objects.filter(pk=gift_id).values_list("language", "code_nonce").first()
    if row is None or not codes.link_token_matches(token, gift_id, row[1]):
        return ""
    return row[0]
