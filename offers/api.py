"""Storefront (MediaStore) endpoints of the catalogue."""

from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers

from giftshop.mediastore import PublicMediaStoreView, envelope, errors, in_envelope, invalid_query
from offers.selectors import offer_get, offer_list_on_sale

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


class OffersView(PublicMediaStoreView):
    @extend_schema(
        responses={200: in_envelope("Offers", OfferOut(many=True)), **errors(422)},
        tags=["offers"],
        auth=[],
        parameters=[OpenApiParameter("pageLimit", int, description="1 to 100: the first offers on sale.")],
    )
    def get(self, request):
        """The offers on sale, each as GET v2/offers/{id} shows it (Cleeng's SDK reads their titles here)."""
        limit = request.query_params.get("pageLimit", "100")
        if not (limit.isdecimal() and len(limit) <= 3 and 1 <= int(limit) <= 100):
            raise invalid_query(_("pageLimit must be a whole number from 1 to 100."))
        return envelope(OfferOut(offer_list_on_sale()[: int(limit)], many=True).data)
