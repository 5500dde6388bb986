"""Merchant API (Chargebee v2 contract): offers as plans."""
# Messages here stay in English, untranslated: they are part of the Chargebee v2 wire contract its client reads.

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.response import Response

from giftshop.chargebee import PAGE_PARAMETERS, MerchantView, answers, boolean, get_or_not_found, page_answer
from offers.models import Offer, parse_offer_id
from offers.resources import PLAN_SCHEMA, plan_resource

PLAN = {"plan": PLAN_SCHEMA}


class PlansView(MerchantView):
    @extend_schema(
        operation_id="plans_list",
        tags=["plans"],
        parameters=[
            *PAGE_PARAMETERS,
            OpenApiParameter("giftable[is]", str),
            OpenApiParameter("status[is]", str, description="active or archived"),
        ],
        responses=answers(PLAN, many=True),
    )
    def get(self, request):
        params = self.params(request)
        offers = Offer.objects.all()
        giftable = (params.get("giftable") or {}).get("is") if isinstance(params.get("giftable"), dict) else None
        if giftable is not None:
            offers = offers.filter(giftable=boolean(giftable, "giftable[is]"))
        status = (params.get("status") or {}).get("is") if isinstance(params.get("status"), dict) else None
        if status is not None:
            offers = offers.filter(active=status == "active")
        return page_answer(offers, params, lambda offer: {"plan": plan_resource(offer)})


class PlanView(MerchantView):
    @extend_schema(tags=["plans"], responses=answers(PLAN))
    def get(self, request, plan_id):
        offer = get_or_not_found(Offer.objects.all(), plan_id, "Plan", short_id=parse_offer_id(plan_id) or "")
        return Response({"plan": plan_resource(offer)})
