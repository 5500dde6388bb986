"""Merchant API (Chargebee v2 contract) endpoints that move money: the gift purchase and its cancellation (with
its refund), customers' payment sources (saved cards), and invoices."""
# Messages here stay in English, untranslated: they are part of the Chargebee v2 wire contract its client reads.

import uuid

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.response import Response

from accounts.merchant_api import customer_get
from accounts.models import Customer, PaymentMethod
from accounts.resources import (
    CUSTOMER_SCHEMA,
    PAYMENT_SOURCE_SCHEMA,
    SUBSCRIPTION_SCHEMA,
    customer_resource,
    payment_source_resource,
)
from billing import gift_sales, services
from billing.gateways import PaymentError
from billing.models import Invoice
from billing.resources import INVOICE_SCHEMA, invoice_resource
from gifts import merchant_api as gifts_api
from gifts.resources import GIFT_SCHEMA
from giftshop.chargebee import (
    IDEMPOTENCY_PARAMETER,
    PAGE_PARAMETERS,
    ChargebeeError,
    MerchantView,
    answers,
    boolean,
    get_or_not_found,
    group,
    idempotency_record_of,
    integer,
    page_answer,
    scalar,
    timestamp,
    wrong_value,
)
from giftshop.errors import ServiceError
from offers.models import Addon, Offer, parse_offer_id

CUSTOMER = {"customer": CUSTOMER_SCHEMA}
PAYMENT_SOURCE = {"payment_source": PAYMENT_SOURCE_SCHEMA}
FORM = {"application/x-www-form-urlencoded": OpenApiTypes.OBJECT}


# --- gift sales ------------------------------------------------------------------------------------------


def _customer(customer_id, param):
    return get_or_not_found(Customer.objects.all(), customer_id, "Customer", param=param)


def _payment_method(gifter, source_id):
    if source_id is None:
        return None
    methods = PaymentMethod.objects.filter(customer=gifter)
    return get_or_not_found(methods, source_id, "Payment source", param="gifter[payment_src_id]", prefix="pm_")


def _addons(params):
    raw = group(params, "addons", lists=True)
    ids, quantities = raw.get("id") or [], raw.get("quantity") or []
    if not isinstance(ids, list) or not isinstance(quantities, list):
        raise wrong_value("Use addons[id][0], addons[quantity][0].", param="addons")
    result = []
    for index, code in enumerate(ids):
        addon = get_or_not_found(Addon.objects.all(), code, "Addon", param=f"addons[id][{index}]", code=code)
        quantity = integer(
            quantities[index] if index < len(quantities) else None,
            f"addons[quantity][{index}]",
            minimum=1,
            maximum=1000,
            default=1,
        )
        result.append((addon, quantity))
    return result


class GiftsView(gifts_api.GiftsView):
    """The gift list (gifts' own view) and the purchase (this one): one path, `/gifts`."""

    @extend_schema(
        tags=["gifts"],
        parameters=[IDEMPOTENCY_PARAMETER],
        request={"application/x-www-form-urlencoded": OpenApiTypes.OBJECT},
        responses=answers({"gift": GIFT_SCHEMA, "subscription": SUBSCRIPTION_SCHEMA, "invoice": INVOICE_SCHEMA}),
        description="Create a gift: charges the gifter at once; the gift is `scheduled`, the receiver's "
        "subscription `future`, the invoice raised on the gifter.",
    )
    def post(self, request):
        params = self.params(request)
        gifter_params = group(params, "gifter")
        receiver_params = group(params, "gift_receiver")
        plan_id = group(params, "subscription").get("plan_id")
        if not gifter_params.get("customer_id"):
            raise wrong_value("gifter[customer_id] cannot be blank", param="gifter[customer_id]")
        if not plan_id:
            raise wrong_value("subscription[plan_id] cannot be blank", param="subscription[plan_id]")
        gifter = _customer(gifter_params["customer_id"], "gifter[customer_id]")
        offer = get_or_not_found(
            Offer.objects.all(), plan_id, "Plan", param="subscription[plan_id]", short_id=parse_offer_id(plan_id) or ""
        )
        integer(
            group(params, "subscription").get("plan_quantity"),
            "subscription[plan_quantity]",
            minimum=1,
            maximum=1,
            default=1,
        )  # a gift is one subscription
        receiver = None
        if receiver_params.get("customer_id"):
            receiver = _customer(receiver_params["customer_id"], "gift_receiver[customer_id]")
        email = receiver_params.get("email") or (receiver.email if receiver else None)
        if not email:
            raise wrong_value("gift_receiver[email] cannot be blank", param="gift_receiver[email]")
        auto_claim = boolean(params.get("auto_claim"), "auto_claim")
        no_expiry = boolean(params.get("no_expiry"), "no_expiry")
        claim_expiry_date = timestamp(params.get("claim_expiry_date"), "claim_expiry_date")
        if claim_expiry_date and (auto_claim or no_expiry):
            raise wrong_value("claim_expiry_date cannot be set with auto_claim or no_expiry", "claim_expiry_date")
        if auto_claim and no_expiry:
            raise wrong_value("no_expiry cannot be set with auto_claim", param="no_expiry")
        coupon_ids = params.get("coupon_ids") or []
        if not isinstance(coupon_ids, list) or any(isinstance(c, dict | list) for c in coupon_ids):
            raise wrong_value("Use coupon_ids[0], coupon_ids[1], …", param="coupon_ids")
        record = idempotency_record_of(request)
        try:
            result = gift_sales.gift_purchase(
                gifter=gifter,
                offer=offer,
                receiver=receiver,
                recipient_email=email,
                recipient_first_name=receiver_params.get("first_name") or (receiver.first_name if receiver else ""),
                recipient_last_name=receiver_params.get("last_name") or (receiver.last_name if receiver else ""),
                scheduled_at=timestamp(params.get("scheduled_at"), "scheduled_at"),
                auto_claim=auto_claim,
                no_expiry=no_expiry,
                claim_expiry_date=claim_expiry_date,
                coupon_codes=[c for c in coupon_ids if c],
                addons=_addons(params),
                signature=gifter_params.get("signature") or "",
                note=gifter_params.get("note") or "",
                payment_method=_payment_method(gifter, gifter_params.get("payment_src_id")),
                # The record's id, not the client's key: a key reused after the record was reaped is a new purchase,
                # while a retry that took over a crashed attempt keeps the record and so the charge.
                idempotency_key=f"idem-{record.pk}" if record else uuid.uuid4().hex,
            )
        except PaymentError as error:
            raise ChargebeeError(
                error.message,
                api_error_code="payment_processing_failed",
                type="payment",
                status=400,
                error_code=error.code,
            ) from None
        gift = gifts_api.gift_get(result.gift.pk)
        return Response(
            gifts_api.gift_body(
                gift, invoice=invoice_resource(result.invoice, subscription_id=str(result.subscription.pk))
            )
        )


class GiftCancelView(MerchantView):
    @extend_schema(
        tags=["gifts"],
        request=None,
        parameters=[IDEMPOTENCY_PARAMETER],
        responses=gifts_api.GIFT,
    )
    def post(self, request, gift_id):
        gift = gifts_api.gift_get(gift_id)
        gifts_api.state_errors(lambda: gift_sales.gift_cancel(gift_id=gift.pk))
        return Response(gifts_api.gift_body(gifts_api.gift_get(gift.pk)))


# --- payment sources -------------------------------------------------------------------------------------


def _add_card(customer, make_default, action):
    try:
        method = action()
    except ServiceError as error:
        raise ChargebeeError(
            error.message,
            api_error_code="payment_method_verification_failed",
            type="payment",
            status=400,
            param=error.field,
        ) from None
    if make_default:
        PaymentMethod.objects.filter(customer=customer).exclude(pk=method.pk).update(is_default=False)
        PaymentMethod.objects.filter(pk=method.pk).update(is_default=True)
    return Response(
        {
            "customer": customer_resource(customer_get(customer.pk)),
            "payment_source": payment_source_resource(PaymentMethod.objects.get(pk=method.pk)),
        }
    )


class CreateCardView(MerchantView):
    @extend_schema(
        tags=["payment_sources"],
        parameters=[IDEMPOTENCY_PARAMETER],
        request=FORM,
        responses=answers({**CUSTOMER, **PAYMENT_SOURCE}),
        description="Adds a card (sandbox test numbers) to a customer.",
    )
    def post(self, request):
        params = self.params(request)
        customer = customer_get(params.get("customer_id"), param="customer_id")
        card = group(params, "card")
        if not card.get("number"):
            raise wrong_value("card[number] cannot be blank", param="card[number]")
        exp_month = integer(card.get("expiry_month"), "card[expiry_month]", minimum=1, maximum=12, default=12)
        exp_year = integer(card.get("expiry_year"), "card[expiry_year]", minimum=2000, maximum=2100, default=2030)
        replace = boolean(scalar(params, "replace_primary_payment_source"), "replace_primary_payment_source")
        has_default = customer.payment_methods.filter(is_default=True).exists()
        return _add_card(
            customer,
            replace or not has_default,
            lambda: services.payment_method_add(
                customer=customer,
                card_number=card.get("number"),
                exp_month=exp_month,
                exp_year=exp_year,
                make_default=False,
            ),
        )


class CreateUsingTokenView(MerchantView):
    @extend_schema(
        tags=["payment_sources"],
        parameters=[IDEMPOTENCY_PARAMETER],
        request=FORM,
        responses=answers({**CUSTOMER, **PAYMENT_SOURCE}),
        description="Adds a card from a gateway token (sandbox: tok_visa, tok_chargeDeclined, …).",
    )
    def post(self, request):
        params = self.params(request)
        customer = customer_get(params.get("customer_id"), param="customer_id")
        token = scalar(params, "token_id") or scalar(params, "reference_id")
        if not token:
            raise wrong_value("token_id cannot be blank", param="token_id")
        replace = boolean(scalar(params, "replace_primary_payment_source"), "replace_primary_payment_source")
        has_default = customer.payment_methods.filter(is_default=True).exists()
        return _add_card(
            customer,
            replace or not has_default,
            lambda: services.payment_method_from_token(customer=customer, token=token),
        )


class PaymentSourcesView(MerchantView):
    @extend_schema(
        operation_id="payment_sources_list",
        tags=["payment_sources"],
        parameters=[
            *PAGE_PARAMETERS,
            OpenApiParameter("customer_id[is]", str),
        ],
        responses=answers(PAYMENT_SOURCE, many=True),
    )
    def get(self, request):
        params = self.params(request)
        return page_answer(
            PaymentMethod.objects.all(),
            params,
            lambda m: {"payment_source": payment_source_resource(m)},
            filters={"customer_id": "customer_id"},
        )


class PaymentSourceView(MerchantView):
    @extend_schema(tags=["payment_sources"], responses=answers(PAYMENT_SOURCE))
    def get(self, request, source_id):
        method = get_or_not_found(PaymentMethod.objects.all(), source_id, "Payment source", prefix="pm_")
        return Response({"payment_source": payment_source_resource(method)})


# --- invoices --------------------------------------------------------------------------------------------


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
        return page_answer(
            _invoices(),
            self.params(request),
            lambda i: {"invoice": invoice_resource(i, subscription_id=_subscription_id(i))},
            filters={"customer_id": "customer_id"},
        )


class InvoiceView(MerchantView):
    @extend_schema(tags=["invoices"], responses=answers(INVOICE))
    def get(self, request, invoice_id):
        invoice = get_or_not_found(_invoices(), invoice_id, "Invoice")
        return Response({"invoice": invoice_resource(invoice, subscription_id=_subscription_id(invoice))})
