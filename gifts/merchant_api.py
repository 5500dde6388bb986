"""Merchant API (Chargebee v2 contract) endpoints of gifts and events."""

import uuid

from django.db.models import Prefetch
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.response import Response

from accounts.models import Customer, PaymentMethod
from accounts.resources import SUBSCRIPTION_SCHEMA, subscription_resource
from billing.gateways import PaymentError
from billing.resources import INVOICE_SCHEMA, invoice_resource
from gifts import purchase, services
from gifts.models import Event, Gift, GiftStatus
from gifts.resources import EVENT_SCHEMA, GIFT_SCHEMA, event_resource, gift_resource
from giftshop.chargebee import (
    PAGE_PARAMETERS,
    ChargebeeError,
    MerchantView,
    answers,
    apply_filters,
    boolean,
    group,
    integer,
    invalid_state,
    listing,
    not_found,
    paginate,
    scalar,
    timestamp,
    wrong_value,
)
from giftshop.errors import ServiceError
from offers.models import Addon, Offer, parse_offer_id

GIFT = answers({"gift": GIFT_SCHEMA}, optional={"subscription": SUBSCRIPTION_SCHEMA})
EVENT = {"event": EVENT_SCHEMA}
IDEMPOTENCY = OpenApiParameter(
    "chargebee-idempotency-key",
    str,
    OpenApiParameter.HEADER,
    required=False,
    description="Up to 100 characters. A repeat with the same request replays the stored response with header "
    "chargebee-idempotency-replayed: true; with another request it is 422. Kept for 24 hours.",
)


def _gifts():
    return Gift.objects.select_related("subscription__offer").prefetch_related(
        "timeline", Prefetch("subscription__gifts", queryset=Gift.objects.only("pk", "subscription_id"))
    )


def gift_get(gift_id):
    if not str(gift_id).isdecimal():
        raise not_found(f"Gift {gift_id} not found", param="id")
    gift = _gifts().filter(pk=int(gift_id)).first()
    if gift is None:
        raise not_found(f"Gift {gift_id} not found", param="id")
    return gift


def gift_body(gift, **extra):
    body = {"gift": gift_resource(gift)}
    if gift.subscription_id:
        body["subscription"] = subscription_resource(gift.subscription)
    body.update(extra)
    return body


def _customer(customer_id, param):
    customer = Customer.objects.filter(pk=int(customer_id)).first() if str(customer_id).isdecimal() else None
    if customer is None:
        raise not_found(f"Customer {customer_id} not found", param=param)
    return customer


def _payment_method(gifter, source_id):
    if source_id is None:
        return None
    pk = str(source_id).removeprefix("pm_")
    method = PaymentMethod.objects.filter(pk=int(pk), customer=gifter).first() if pk.isdecimal() else None
    if method is None:
        raise not_found(f"Payment source {source_id} not found", param="gifter[payment_src_id]")
    return method


def _addons(params):
    raw = group(params, "addons", lists=True)
    ids, quantities = raw.get("id") or [], raw.get("quantity") or []
    if not isinstance(ids, list) or not isinstance(quantities, list):
        raise wrong_value("Use addons[id][0], addons[quantity][0].", param="addons")
    result = []
    for index, code in enumerate(ids):
        addon = Addon.objects.filter(code=code).first()
        if addon is None:
            raise not_found(f"Addon {code} not found", param=f"addons[id][{index}]")
        quantity = integer(
            quantities[index] if index < len(quantities) else None,
            f"addons[quantity][{index}]",
            minimum=1,
            maximum=1000,
            default=1,
        )
        result.append((addon, quantity))
    return result


class GiftsView(MerchantView):
    @extend_schema(
        tags=["gifts"],
        parameters=[IDEMPOTENCY],
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
        offer = Offer.objects.filter(short_id=parse_offer_id(plan_id) or "").first()
        if offer is None:
            raise not_found(f"Plan {plan_id} not found", param="subscription[plan_id]")
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
        record = getattr(request._request, "idempotency_record", None)
        try:
            result = purchase.gift_purchase(
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
        gift = gift_get(result.gift.pk)
        return Response(
            gift_body(gift, invoice=invoice_resource(result.invoice, subscription_id=str(result.subscription.pk)))
        )

    @extend_schema(
        operation_id="gifts_list",
        tags=["gifts"],
        parameters=[
            *PAGE_PARAMETERS,
            OpenApiParameter("status[is]", str),
            OpenApiParameter("status[is_not]", str),
            OpenApiParameter("status[in]", str, description="[a,b], JSON or Python list"),
            OpenApiParameter("status[not_in]", str),
            OpenApiParameter("gift_receiver[email][is]", str),
            OpenApiParameter("gift_receiver[email][is_not]", str),
            OpenApiParameter("gift_receiver[email][starts_with]", str),
            OpenApiParameter("gifter[customer_id][is]", str),
            OpenApiParameter("gifter[customer_id][is_not]", str),
            OpenApiParameter("gifter[customer_id][in]", str),
            OpenApiParameter("gifter[customer_id][not_in]", str),
            OpenApiParameter("gift_receiver[customer_id][is]", str),
        ],
        responses=answers({"gift": GIFT_SCHEMA}, optional={"subscription": SUBSCRIPTION_SCHEMA}, many=True),
    )
    def get(self, request):
        params = self.params(request)
        status_filter = params.get("status") or {}
        for raw in status_filter.values() if isinstance(status_filter, dict) else []:
            values = raw if isinstance(raw, list) else [raw]
            for value in values:
                for item in str(value).strip("[]").split(","):
                    item = item.strip().strip("'\"")
                    if item and item not in GiftStatus.values:
                        raise wrong_value(f"status {item} is not a gift status", param="status")
        gifts = apply_filters(
            _gifts(),
            params,
            {
                "status": "status",
                "gift_receiver.email": "recipient_email",
                "gifter.customer_id": "gifter_id",
                "gift_receiver.customer_id": "receiver_id",
            },
        )
        rows, next_offset = paginate(gifts, params)
        return Response(listing([gift_body(gift) for gift in rows], next_offset))


class GiftView(MerchantView):
    @extend_schema(tags=["gifts"], responses=GIFT)
    def get(self, request, gift_id):
        return Response(gift_body(gift_get(gift_id)))


def _state_errors(action):
    try:
        return action()
    except ServiceError as error:
        if error.status == 409:
            raise invalid_state(error.message) from None
        raise


class GiftClaimView(MerchantView):
    @extend_schema(
        tags=["gifts"],
        request=None,
        parameters=[IDEMPOTENCY],
        responses=GIFT,
    )
    def post(self, request, gift_id):
        gift = gift_get(gift_id)

        def claim():
            try:
                return services.gift_claim(gift_id=gift.pk, only_from=[GiftStatus.UNCLAIMED])
            except services.RedeemRefused as refused:
                raise invalid_state(refused.message) from None

        _state_errors(claim)
        return Response(gift_body(gift_get(gift.pk)))


class GiftCancelView(MerchantView):
    @extend_schema(
        tags=["gifts"],
        request=None,
        parameters=[IDEMPOTENCY],
        responses=GIFT,
    )
    def post(self, request, gift_id):
        gift = gift_get(gift_id)
        _state_errors(lambda: purchase.gift_cancel(gift_id=gift.pk))
        return Response(gift_body(gift_get(gift.pk)))


class GiftUpdateView(MerchantView):
    @extend_schema(
        tags=["gifts"],
        parameters=[IDEMPOTENCY],
        request={"application/x-www-form-urlencoded": OpenApiTypes.OBJECT},
        responses=GIFT,
    )
    def post(self, request, gift_id):
        gift = gift_get(gift_id)
        params = self.params(request)
        receiver = group(params, "gift_receiver")
        _state_errors(
            lambda: purchase.gift_update(
                gift_id=gift.pk,
                scheduled_at=timestamp(params.get("scheduled_at"), "scheduled_at"),
                comment=scalar(params, "comment"),
                recipient_email=receiver.get("email"),
                first_name=receiver.get("first_name"),
                last_name=receiver.get("last_name"),
            )
        )
        return Response(gift_body(gift_get(gift.pk)))


class EventsView(MerchantView):
    @extend_schema(
        operation_id="events_list",
        tags=["events"],
        parameters=[
            *PAGE_PARAMETERS,
            OpenApiParameter("event_type[is]", str),
            OpenApiParameter("event_type[in]", str),
        ],
        responses=answers(EVENT, many=True),
    )
    def get(self, request):
        params = self.params(request)
        events = apply_filters(Event.objects.all(), params, {"event_type": "event_type"})
        rows, next_offset = paginate(events, params)
        return Response(listing([{"event": event_resource(event)} for event in rows], next_offset))


class EventView(MerchantView):
    @extend_schema(tags=["events"], responses=answers(EVENT))
    def get(self, request, event_id):
        pk = str(event_id).removeprefix("ev_")
        event = Event.objects.filter(pk=int(pk)).first() if pk.isdecimal() else None
        if event is None:
            raise not_found(f"Event {event_id} not found", param="id")
        return Response({"event": event_resource(event)})
