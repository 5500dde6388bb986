from django.shortcuts import get_object_or_404

from offers.models import Offer, parse_offer_id


def offer_list_on_sale():
    return Offer.objects.filter(active=True).order_by("price", "title")


def offer_get(offer_id, *, active_only=False):
    """The offer with this short or long id, or 404."""
    offers = Offer.objects.filter(active=True) if active_only else Offer.objects.all()
    return get_object_or_404(offers, short_id=parse_offer_id(offer_id) or "")
