"""The customer's gifts in their personal data copy (accounts/personal_data.py): those they gave, and those they
received, without codes or link tokens. And the gifts' part of an erasure (accounts/erasure.py), with the events'
copies of what it removes (gifts/retention.py removes the same fields once a gift is long over)."""

import re

from django.db.models import Q

from gifts.models import BulkList, BulkRow, Gift, GiftStatus, GiftTimeline
from giftshop.models import Event

# A gift they gave that is over keeps no note: it was read (or never will be), and the note is their words.
NOTE_KEPT_WHILE = [GiftStatus.SCHEDULED, GiftStatus.UNCLAIMED, GiftStatus.EXPIRED]


def gifts(customer):
    given = customer.gifts_given.select_related("offer").order_by("created_at", "pk")
    received = customer.gifts_received.select_related("offer", "gifter").order_by("created_at", "pk")
    return {
        "given": [
            {
                "offer": gift.offer.title,
                "status": gift.status,
                "recipient_email": gift.recipient_email,
                "recipient_first_name": gift.recipient_first_name,
                "signature": gift.signature,
                "personal_note": gift.personal_note,
                "scheduled_at": gift.scheduled_at,
                "time_zone": gift.time_zone,
                "sent_at": gift.sent_at,
                "claimed_at": gift.claimed_at,
            }
            for gift in given
        ],
        "received": [
            {
                "offer": gift.offer.title,
                "status": gift.status,
                "from": gift.from_name,
                "personal_note": gift.personal_note,
                "sent_at": gift.sent_at,
                "claimed_at": gift.claimed_at,
            }
            for gift in received
        ],
    }


def erase_gifts(erasure):
    """The gifts' part of an erasure. Gifts they GAVE keep working for their recipients: the code, offer, delivery
    time, recipient and note stay, so an unredeemed gift is still delivered and redeemable; the signature (their
    name) goes, and the recipient is told the gift is from "Someone" (Gift.from_name). The note stays while the gift
    can still be delivered, redeemed or sent again (it is the recipient's message), and goes from gifts that are
    over. Gifts they RECEIVED (as the receiver, or sent to their address) name the pseudonymous address instead,
    without names; their state is untouched (a gift still on its way to them cannot arrive: the provider refuses the
    address, and its gifter is asked for another). The stored events' copies follow."""
    customer, now = erasure.customer, erasure.now
    given = Gift.objects.filter(gifter=customer)
    given_ids = list(given.values_list("pk", flat=True))
    given.exclude(signature="").update(signature="", updated_at=now)
    over = given.exclude(status__in=NOTE_KEPT_WHILE)
    over_ids = set(over.values_list("pk", flat=True))
    over.exclude(personal_note="").update(personal_note="", updated_at=now)
    events_scrub(set(given_ids) - over_ids, gifter_keys=["signature"])
    events_scrub(over_ids, gifter_keys=["signature", "note"])

    to_them = Q(receiver=customer)
    for address in erasure.addresses:
        to_them |= Q(recipient_email__iexact=address)
    received = Gift.objects.filter(to_them)
    received_ids = list(received.values_list("pk", flat=True))
    received.update(recipient_email=erasure.address, recipient_first_name="", recipient_last_name="", updated_at=now)
    events_scrub(received_ids, receiver=erasure.address)
    _staff_traces_erase(erasure)


def erase_gift_lists(erasure):
    """Gift lists (issue 18): their lists never paid (drafts: recipients' addresses, names and messages that no gift
    needs) go; lines of other people's lists addressed to them name the pseudonymous address, without the name. Their
    paid lists stay as the gifts made from them (each line keeps no copy once its gift exists)."""
    drafts = BulkList.objects.filter(gifter=erasure.customer, status=BulkList.Status.DRAFT)
    BulkRow.objects.filter(bulk_list__in=drafts).delete()
    drafts.delete()
    to_them = Q()
    for address in erasure.addresses:
        to_them |= Q(recipient_email__iexact=address)
    if erasure.addresses:
        BulkRow.objects.filter(to_them).update(recipient_email=erasure.address, recipient_first_name="")


def _staff_traces_erase(erasure):
    """A member of staff is named by address where they changed a gift (a timeline's actor, an event's comment,
    e.g. "recipient email changed by admin:<address>"): the pseudonym stands there instead."""
    for address in erasure.addresses:
        GiftTimeline.objects.filter(actor__iexact=f"admin:{address}").update(actor=f"admin:{erasure.address}")
        for event in Event.objects.filter(content__comment__icontains=address).only("pk", "content"):
            comment = re.sub(re.escape(address), erasure.address, event.content["comment"], flags=re.IGNORECASE)
            Event.objects.filter(pk=event.pk).update(content={**event.content, "comment": comment})


def events_scrub(gift_ids, *, gifter_keys=(), receiver=None):
    """The stored events of these gifts (the gift as it was, in Chargebee's envelope) without the gifter part's
    `gifter_keys` ("signature", "note"), and, when `receiver` is given, with the receiver part naming `receiver` as
    its email and no names. A webhook delivery still waiting sends the event as it is now."""
    changed = []
    for event in Event.objects.filter(gift_id__in=list(gift_ids)).only("pk", "content").order_by("pk"):
        gift = event.content.get("gift") if isinstance(event.content, dict) else None
        if not isinstance(gift, dict):
            continue
        before = repr(gift)
        for key in gifter_keys:
            gift.get("gifter", {}).pop(key, None)
        part = gift.get("gift_receiver")
        if receiver is not None and isinstance(part, dict):
            part.pop("first_name", None)
            part.pop("last_name", None)
            part["email"] = receiver
        if repr(gift) != before:
            changed.append(event)
    Event.objects.bulk_update(changed, ["content"], batch_size=500)
