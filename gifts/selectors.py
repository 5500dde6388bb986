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
