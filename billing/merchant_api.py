"""Merchant API (Chargebee v2 contract): invoices."""

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.response import Response

from billing.models import Invoice
from billing.resources import INVOICE_SCHEMA, invoice_resource
from giftshop.chargebee import PAGE_PARAMETERS, MerchantView, answers, apply_filters, listing, not_found, paginate

INVOICE = {"invoice": INVOICE_SCHEMA}


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
            *PAGE_PARAMETERS,
            OpenApiParameter("customer_id[is]", str),
        ],
        responses=answers(INVOICE, many=True),
    )
    def get(self, request):
        params = self.params(request)
        rows, next_offset = paginate(apply_filters(_invoices(), params, {"customer_id": "customer_id"}), params)
        return Response(
            listing([{"invoice": invoice_resource(i, subscription_id=_subscription_id(i))} for i in rows], next_offset)
        )


class InvoiceView(MerchantView):
    @extend_schema(tags=["invoices"], responses=answers(INVOICE))
    def get(self, request, invoice_id):
        invoice = _invoices().filter(pk=int(invoice_id)).first() if str(invoice_id).isdecimal() else None
        if invoice is None:
            raise not_found(f"Invoice {invoice_id} not found", param="id")
        return Response({"invoice": invoice_resource(invoice, subscription_id=_subscription_id(invoice))})
