"""Reads of gifts: the gifter's access rule, the delivery email's fate, the one way a gift row is locked, and the
designs checkout offers."""

from django.db.models import OuterRef, Subquery
from django.shortcuts import get_object_or_404

from emails.models import Email
from gifts.models import Gift, GiftDesign, GiftTimeline
from giftshop.errors import ServiceError

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
            "There is no such gift design to choose: pick one of the designs on offer.",
            code="invalid_design",
            field=field,
        )
    return design
