"""Gifts as Chargebee resources: the merchant API's responses and the events' content."""
# Messages here stay in English, untranslated: they are part of the Chargebee v2 wire contract its client reads.

from gifts.models import GiftStatus
from giftshop.chargebee import BOOLEAN, INTEGER, STRING, object_schema, resource_schema

# Chargebee's gift has five statuses and no "declined" (issue 16), and clients built on its enum know no other. To
# Chargebee a gift its recipient declined is still what `unclaimed` means there: delivered, not redeemed, not ended,
# and still the gifter's to send elsewhere or the merchant's to cancel (refunded), until its claim window ends. So the
# merchant API and the events of its webhooks show it as `unclaimed` (its timeline leaves the decline out); the
# decline itself reaches the merchant as the event `gift_declined`, an event type of ours as `gift_withdrawn` is,
# and a merchant action refused for it says so (Gift.refusal).
CHARGEBEE_STATUSES = [status for status in GiftStatus.values if status != GiftStatus.DECLINED]
GIFT_STATUS = {"type": "string", "enum": CHARGEBEE_STATUSES}


def chargebee_status(status):
    return GiftStatus.UNCLAIMED.value if status == GiftStatus.DECLINED else status


GIFT_SCHEMA = resource_schema(
    "gift",
    required=["status", "auto_claim", "no_expiry", "resource_version", "gifter", "gift_receiver", "gift_timelines"],
    status=GIFT_STATUS,
    scheduled_at=INTEGER,
    auto_claim=BOOLEAN,
    no_expiry=BOOLEAN,
    claim_expiry_date=INTEGER,
    resource_version=INTEGER,
    updated_at=INTEGER,
    gifter=object_schema(
        "gifter", required=["customer_id"], customer_id=STRING, invoice_id=STRING, signature=STRING, note=STRING
    ),
    gift_receiver=object_schema(
        "gift_receiver",
        required=["email"],
        customer_id=STRING,
        subscription_id=STRING,
        first_name=STRING,
        last_name=STRING,
        email=STRING,
    ),
    gift_timelines={
        "type": "array",
        "items": object_schema(
            "gift_timeline", required=["status", "occurred_at"], status=GIFT_STATUS, occurred_at=INTEGER
        ),
    },
)


def ts(when):
    return int(when.timestamp()) if when else None


def gift_resource(gift, timelines=None):
    """`timelines`: the gift's GiftTimeline rows, when the caller prefetched them."""
    timelines = gift.timeline.all() if timelines is None else timelines
    receiver = {
        "customer_id": str(gift.receiver_id) if gift.receiver_id else None,
        "subscription_id": str(gift.subscription_id) if gift.subscription_id else None,
        "first_name": gift.recipient_first_name or None,
        "last_name": gift.recipient_last_name or None,
        "email": gift.recipient_email,
        "object": "gift_receiver",
    }
    resource = {
        "id": str(gift.pk),
        "status": chargebee_status(gift.status),
        "scheduled_at": ts(gift.scheduled_at),
        "auto_claim": gift.auto_claim,
        "no_expiry": gift.no_expiry,
        "claim_expiry_date": ts(gift.claim_expiry_date),
        "resource_version": gift.resource_version,
        "updated_at": ts(gift.updated_at),
        "object": "gift",
        "gifter": {
            "customer_id": str(gift.gifter_id),
            "invoice_id": str(gift.invoice_id) if gift.invoice_id else None,
            "signature": gift.signature or None,
            "note": gift.personal_note or None,
            "object": "gifter",
        },
        "gift_receiver": {k: v for k, v in receiver.items() if v is not None},
        "gift_timelines": [
            {"status": row.status, "occurred_at": ts(row.occurred_at), "object": "gift_timeline"}
            for row in timelines
            if row.status != GiftStatus.DECLINED
        ],
    }
    resource["gifter"] = {k: v for k, v in resource["gifter"].items() if v is not None}
    return {k: v for k, v in resource.items() if v is not None}
