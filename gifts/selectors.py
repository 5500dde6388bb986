"""Reads of gifts: the gifter's access rule, the delivery email's fate, and the one way a gift row is locked."""

from django.db.models import OuterRef, Subquery
from django.shortcuts import get_object_or_404

from emails.models import Email
from gifts.models import Gift

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


def gifts_for_update(*, skip_locked=False):
    """Gifts read with their rows locked until the transaction ends: only the gift rows, never a joined offer's or
    customer's. Whoever also locks a customer's subscriptions locks the gift first, so two lockers cannot deadlock."""
    return Gift.objects.select_for_update(of=("self",), skip_locked=skip_locked)


def gift_for_update(gift_id, *related):
    """The gift, its row locked (gifts_for_update), with the `related` rows read alongside."""
    return gifts_for_update().select_related(*related).get(pk=gift_id)
