from django.shortcuts import get_object_or_404

from gifts.models import Gift


def gift_for_gifter(customer, gift_id):
    """The access rule for a gift's purchase details: only its gifter sees it; anyone else gets 404."""
    return get_object_or_404(
        Gift.objects.select_related("offer", "gifter", "subscription"), pk=gift_id, gifter=customer
    )
