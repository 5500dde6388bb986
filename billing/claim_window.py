"""What a gifter gets back when their gift's claim window ends unredeemed (issue 16), per its offer's
`claim_window_end`: nothing (expire, as before), a refund through the gateway, or account credit.

gifts.services.expire_due_gifts expires the gifts (gifts may not import billing); this sweep, run by beat right
after it (billing.tasks.settle_expired_gifts), settles each expired gift of a refund or credit offer once:

- credit: a CreditEntry (reason gift_unredeemed, key `gift:<id>:unredeemed`) of what was paid for the gift, and
  the event `gift_credited`;
- refund: the refund owed (a pending refund Payment under the charge's refund key, `refund:<charge>`, or for one
  gift of a list `refund:<charge>:gift:<id>`; any account credit that paid with the card comes back) and the event
  `gift_refunded`, written under the gift's row lock in one transaction; the gateway is asked after commit, and a
  refund it failed is asked again by the next sweep.

What "paid for the gift" is: its charge (billing/gift_sales.gift_charge); for one gift of a bulk list or a group
code (one invoice for N gifts, no order of its own), the invoice's total divided by N, exactly the share a
cancellation of that gift refunds (gift_sales.gift_share_of), so a list's gifts together never get back more than the
list cost. A gift nothing was paid for (a free order, or one made by support) gets nothing."""

import contextlib
import logging
from dataclasses import dataclass
from decimal import Decimal

from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from billing.credit import credit_give
from billing.gateways import PaymentError
from billing.gift_sales import gift_charge, gift_share_of
from billing.models import CreditEntry, Payment
from billing.services import PAYMENT_IN_FLIGHT, refund, refund_owed
from gifts import services as gift_services
from gifts.models import Gift, GiftStatus
from gifts.selectors import gift_for_update
from giftshop.models import Event
from giftshop.money import quantize, to_minor_units
from offers.models import ClaimWindowEnd

logger = logging.getLogger(__name__)
SETTLED_EVENTS = ("gift_refunded", "gift_credited")
REFUND_REASON = "unredeemed gift"


@dataclass
class Settlement:
    gift_id: int
    kind: str  # refund | credit | none
    amount: Decimal
    currency: str


def gift_unredeemed_key(gift_id):
    return f"gift:{gift_id}:unredeemed"


def gifts_to_settle():
    """Expired gifts of refund or credit offers not settled yet (no gift_refunded / gift_credited event)."""
    settled = Event.objects.filter(gift=OuterRef("pk"), event_type__in=SETTLED_EVENTS)
    return Gift.objects.filter(
        status=GiftStatus.EXPIRED,
        offer__claim_window_end__in=[ClaimWindowEnd.REFUND, ClaimWindowEnd.CREDIT],
        invoice__isnull=False,
    ).exclude(Exists(settled))


def paid_for_gift(gift, paid):
    """(charge amount to refund, refund key) for the gift out of its charge `paid`: all of it, or a list's share."""
    share = gift_share_of(gift, paid)
    # One gift's own charge is refunded in full under its charge's refund key, so the credit that paid part of it
    # comes back as well (billing/services.refund).
    return share.get("amount", paid.amount), share.get("key", f"refund:{paid.pk}")


def expired_gift_settle(*, gift_id, now=None):
    """Settles one expired gift under its offer's policy, once: returns a Settlement (kind "none": nothing to do,
    or settled before). The refund itself is asked of the gateway after the transaction commits."""
    now = now or timezone.now()
    owed = paid = None
    with transaction.atomic():
        gift = gift_for_update(gift_id, "offer", "gifter")
        policy = gift.offer.claim_window_end
        settled = Event.objects.filter(gift_id=gift.pk, event_type__in=SETTLED_EVENTS).exists()
        paid = gift_charge(gift) if gift.status == GiftStatus.EXPIRED else None
        if settled or paid is None or policy == ClaimWindowEnd.EXPIRE:
            return Settlement(gift.pk, "none", Decimal("0.00"), gift.offer.currency)
        amount, key = paid_for_gift(gift, paid)
        if policy == ClaimWindowEnd.CREDIT:
            # What the gift cost in all (a card charge and any credit that paid with it), from its invoice.
            invoice = paid.invoice
            credit = invoice.total if amount == paid.amount else amount
            credit = min(quantize(credit), invoice.total - invoice.amount_refunded)
            credit_give(
                customer=gift.gifter,
                amount=credit,
                currency=invoice.currency,
                reason=CreditEntry.Reason.GIFT_UNREDEEMED,
                key=gift_unredeemed_key(gift.pk),
                gift=gift,
                invoice=invoice,
            )
            extra = {"credit": {"amount": to_minor_units(credit, invoice.currency), "currency_code": invoice.currency}}
            gift_services.events_record(gift_ids=[gift.pk], event_type="gift_credited", now=now, extra=extra)
            return Settlement(gift.pk, "credit", credit, invoice.currency)
        owed = refund_owed(payment=paid, reason=f"{REFUND_REASON} {gift.pk}", amount=amount, key=key)
        extra = {"refund": {"amount": to_minor_units(amount, paid.currency), "currency_code": paid.currency}}
        gift_services.events_record(gift_ids=[gift.pk], event_type="gift_refunded", now=now, extra=extra)
    with contextlib.suppress(PaymentError):  # logged by refund(); the row stays pending and the next sweep retries
        refund(payment=paid, reason=owed.failure_message, amount=owed.amount, key=owed.idempotency_key)
    return Settlement(gift.pk, "refund", owed.amount, owed.currency)


def _refunds_to_retry(now):
    """Refunds of unredeemed gifts the gateway failed (or a crash left unasked), older than an attempt in flight:
    pending refunds of an invoice one of whose gifts was refunded so (a list's other pending refunds are owed too)."""
    refunded = Event.objects.filter(event_type="gift_refunded", gift__invoice_id=OuterRef("invoice_id"))
    return Payment.objects.filter(
        Exists(refunded),
        kind=Payment.Kind.REFUND,
        status=Payment.Status.PENDING,
        created_at__lt=now - PAYMENT_IN_FLIGHT,
    ).order_by("pk")


def settle_expired_gifts(*, now=None, batch_size=200):
    """The sweep: settles every expired, unsettled gift of a refund or credit offer, then retries the refunds left
    pending. Safe to run anywhere, any number of times (the gift's lock and the event decide each once). Returns the
    number of gifts settled."""
    now = now or timezone.now()
    count = 0
    for gift_id in list(gifts_to_settle().order_by("pk").values_list("pk", flat=True)[:batch_size]):
        try:
            if expired_gift_settle(gift_id=gift_id, now=now).kind != "none":
                count += 1
        except Exception:
            logger.exception("settling expired gift %s failed; the next sweep tries again", gift_id)
    for row in _refunds_to_retry(now)[:batch_size]:
        charge_key = row.idempotency_key.split(":gift:", 1)[0]
        paid = Payment.objects.filter(pk=charge_key.removeprefix("refund:")).first()
        if paid is not None:
            with contextlib.suppress(PaymentError):
                refund(payment=paid, amount=row.amount, key=row.idempotency_key)
    return count
