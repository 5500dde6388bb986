"""Merchant API (Chargebee v2 contract): invoices."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.response import Response

from billing.models import Invoice
from billing.resources import invoice_resource
from gifts.merchant_api import ERRORS
from giftshop.chargebee import MerchantView, apply_filters, listing, not_found, paginate

OK = {200: OpenApiResponse(OpenApiTypes.OBJECT), **ERRORS}


def _invoices():
    return Invoice.objects.prefetch_related("lines", "gifts")


def _subscription_id(invoice):
    gift = next(iter(invoice.gifts.all()), None)
    return str(gift.subscription_id) if gift and gift.subscription_id else None


class InvoicesView(MerchantView):
    @extend_schema(
        operation_id="invoices_list",
        tags=["invoices"],
        parameters=[
            OpenApiParameter("limit", int),
            OpenApiParameter("offset", str),
            OpenApiParameter("customer_id[is]", str),
        ],
        responses=OK,
    )
    def get(self, request):
        params = self.params(request)
        rows, next_offset = paginate(apply_filters(_invoices(), params, {"customer_id": "customer_id"}), params)
        return Response(
            listing([{"invoice": invoice_resource(i, subscription_id=_subscription_id(i))} for i in rows], next_offset)
        )


class InvoiceView(MerchantView):
    @extend_schema(tags=["invoices"], responses=OK)
    def get(self, request, invoice_id):
        invoice = _invoices().filter(pk=int(invoice_id)).first() if str(invoice_id).isdecimal() else None
        if invoice is None:
            raise not_found(f"Invoice {invoice_id} not found", param="id")
        return Response({"invoice": invoice_resource(invoice, subscription_id=_subscription_id(invoice))})
