"""Storefront (MediaStore) endpoints of the catalogue."""

from django.http import Http404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers

from accounts.selectors import subscriptions_with_access
from giftshop.mediastore import MediaStoreView, PublicMediaStoreView, envelope, errors, in_envelope
from offers.selectors import offer_get

BILLING_CYCLES = {
    "week": ("W", 1),
    "month": ("M", 1),
    "3months": ("M", 3),
    "6months": ("M", 6),
    "year": ("Y", 1),
    "season": ("Y", 1),
}


class PriceOut(serializers.Serializer):
    amount = serializers.DecimalField(source="price", max_digits=12, decimal_places=2, coerce_to_string=False)
    currency = serializers.CharField()


class OfferOut(serializers.Serializer):
    id = serializers.CharField(source="short_id")
    longId = serializers.CharField(source="long_id")
    title = serializers.CharField()
    description = serializers.CharField()
    active = serializers.BooleanField()
    giftable = serializers.BooleanField()
    period = serializers.CharField()
    price = PriceOut(source="*")
    billingCycle = serializers.SerializerMethodField()
    tags = serializers.ListField(child=serializers.CharField())

    def get_billingCycle(self, offer) -> dict:
        unit, count = BILLING_CYCLES[offer.period]
        return {"periodUnit": {"W": "week", "M": "month", "Y": "year"}[unit], "amount": count}


class OfferView(PublicMediaStoreView):
    @extend_schema(responses={200: in_envelope("Offer", OfferOut), **errors(404)}, tags=["offers"], auth=[])
    def get(self, request, offer_id):
        return envelope(OfferOut(offer_get(offer_id)).data)


class CustomerOfferOut(serializers.Serializer):
    offerId = serializers.CharField(source="offer.long_id")
    offerTitle = serializers.CharField(source="offer.title")
    period = serializers.CharField(source="offer.period")
    offerPrice = serializers.DecimalField(source="offer.price", max_digits=12, decimal_places=2, coerce_to_string=False)
    customerPriceInclTax = serializers.DecimalField(
        source="offer.price", max_digits=12, decimal_places=2, coerce_to_string=False
    )
    customerCurrency = serializers.CharField(source="offer.currency")
    accessGranted = serializers.BooleanField(source="access_granted")
    giftable = serializers.BooleanField(source="offer.giftable")


class OfferForCustomerView(MediaStoreView):
    @extend_schema(
        responses={200: in_envelope("OfferForCustomer", CustomerOfferOut), **errors(401, 404)}, tags=["offers"]
    )
    def get(self, request, offer_id, email):
        if email.strip().lower() != request.user.email:
            raise Http404("Customer not found.")
        offer = offer_get(offer_id)
        held = subscriptions_with_access(customer=request.user)
        granted = any(sub.offer_id == offer.pk or sub.offer.gives_same_access_as(offer) for sub in held)
        return envelope(CustomerOfferOut({"offer": offer, "access_granted": granted}).data)
