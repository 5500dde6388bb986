"""Merchant API (Chargebee v2 contract) endpoints of gifts and events; the ones that move money (the purchase, the
cancellation with its refund) are billing's."""
# Messages here stay in English, untranslated: they are part of the Chargebee v2 wire contract its client reads.

from django.db.models import Case, F, Prefetch, Value, When
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.response import Response

from accounts.resources import SUBSCRIPTION_SCHEMA, subscription_resource
from gifts import services
from gifts.models import Gift, GiftAction, GiftStatus
from gifts.resources import CHARGEBEE_STATUSES, GIFT_SCHEMA, gift_resource
from gifts.verification import RedeemRefused
from giftshop.chargebee import (
    IDEMPOTENCY_PARAMETER,
    PAGE_PARAMETERS,
    MerchantView,
    answers,
    get_or_not_found,
    group,
    invalid_state,
    page_answer,
    scalar,
    timestamp,
    wrong_value,
)
from giftshop.errors import ServiceError
from giftshop.models import Event
from giftshop.webhooks import EVENT_SCHEMA, event_resource

GIFT = answers({"gift": GIFT_SCHEMA}, optional={"subscription": SUBSCRIPTION_SCHEMA})
EVENT = {"event": EVENT_SCHEMA}


def _gifts():
    # `chargebee_status`: what the status filters compare, the status as gift_resource shows it (a declined gift is
    # `unclaimed` to Chargebee: gifts/resources.py).
    chargebee_status = Case(
        When(status=GiftStatus.DECLINED, then=Value(GiftStatus.UNCLAIMED.value)), default=F("status")
    )
    return (
        Gift.objects.select_related("subscription__offer")
        .prefetch_related(
            "timeline", Prefetch("subscription__gifts", queryset=Gift.objects.only("pk", "subscription_id"))
        )
        .annotate(chargebee_status=chargebee_status)
    )


def gift_get(gift_id):
    return get_or_not_found(_gifts(), gift_id, "Gift")


def gift_body(gift, **extra):
    body = {"gift": gift_resource(gift)}
    if gift.subscription_id:
        body["subscription"] = subscription_resource(gift.subscription)
    body.update(extra)
    return body


class GiftsView(MerchantView):
    """The gift list; billing's view of the same path adds the purchase (POST)."""

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
                    if item and item not in CHARGEBEE_STATUSES:
                        raise wrong_value(f"status {item} is not a gift status", param="status")
        filters = {
            "status": "chargebee_status",
            "gift_receiver.email": "recipient_email",
            "gifter.customer_id": "gifter_id",
            "gift_receiver.customer_id": "receiver_id",
        }
        return page_answer(_gifts(), params, gift_body, filters=filters)


class GiftView(MerchantView):
    @extend_schema(tags=["gifts"], responses=GIFT)
    def get(self, request, gift_id):
        return Response(gift_body(gift_get(gift_id)))


def state_errors(action):
    """Runs a gift service; its refusal of the gift's state (409) is answered as Chargebee's invalid_state."""
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
        parameters=[IDEMPOTENCY_PARAMETER],
        responses=GIFT,
    )
    def post(self, request, gift_id):
        gift = gift_get(gift_id)

        def claim():
            try:
                return services.gift_claim(gift_id=gift.pk, action=GiftAction.CLAIM)
            except RedeemRefused as refused:
                raise invalid_state(refused.message) from None

        state_errors(claim)
        return Response(gift_body(gift_get(gift.pk)))


class GiftUpdateView(MerchantView):
    @extend_schema(
        tags=["gifts"],
        parameters=[IDEMPOTENCY_PARAMETER],
        request={"application/x-www-form-urlencoded": OpenApiTypes.OBJECT},
        responses=GIFT,
    )
    def post(self, request, gift_id):
        gift = gift_get(gift_id)
        params = self.params(request)
        receiver = group(params, "gift_receiver")
        state_errors(
            lambda: services.gift_update(
                gift_id=gift.pk,
                action=GiftAction.UPDATE,
                actor="merchant",
                names="chargebee",
                scheduled_at=timestamp(params.get("scheduled_at"), "scheduled_at"),
                comment=scalar(params, "comment"),
                recipient_email=receiver.get("email"),
                recipient_first_name=receiver.get("first_name"),
                recipient_last_name=receiver.get("last_name"),
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
        return page_answer(
            Event.objects.all(),
            params,
            lambda event: {"event": event_resource(event)},
            filters={"event_type": "event_type"},
        )


class EventView(MerchantView):
    @extend_schema(tags=["events"], responses=answers(EVENT))
    def get(self, request, event_id):
        event = get_or_not_found(Event.objects.all(), event_id, "Event", prefix="ev_")
        return Response({"event": event_resource(event)})
