"""Gift sales of the merchant API (Chargebee's gifts): the purchase that charges the gifter at once (the charge,
the invoice, the receiver's future subscription, the gift) and the cancellation that refunds them; and any gift's
cancellation with its refund: support's (admin), the merchant's, and its gifter's withdrawal inside the offer's refund
window (issue 16). The gift itself is made and moved by gifts.services; this module adds the money."""

import contextlib
import logging
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import Subscription, Transaction
from accounts.selectors import customer_for_email
from billing.gateways import PaymentError
from billing.models import Payment
from billing.services import (
    PAYMENT_IN_FLIGHT,
    charge,
    coupon_find,
    coupons_give_back,
    coupons_take,
    invoice_create,
    ledger_record,
    refund,
    refund_owed,
    refunded_on_failure,
)
from emails.models import Email
from emails.services import email_queue
from gifts import services
from gifts.models import Gift, GiftAction, GiftStatus, gift_fields_clean, scheduled_or_now
from gifts.selectors import gift_for_update
from giftshop.errors import ServiceError
from giftshop.money import quantize, to_minor_units

logger = logging.getLogger(__name__)


@dataclass
class MerchantGift:
    gift: Gift
    subscription: Subscription
    invoice: object


def _price(*, offer, addons, coupons):
    subtotal = quantize(offer.price) + sum((quantize(addon.price) * qty for addon, qty in addons), quantize(0))
    discount = quantize(0)
    for coupon in coupons:
        discount += coupon.discount_on(subtotal - discount, offer.currency)
    return subtotal, min(discount, subtotal)


def gift_purchase(
    *,
    gifter,
    offer,
    receiver,
    recipient_email,
    recipient_first_name="",
    recipient_last_name="",
    scheduled_at=None,
    auto_claim=None,
    no_expiry=None,
    claim_expiry_date=None,
    coupon_codes=(),
    addons=(),
    signature="",
    note="",
    payment_method=None,
    idempotency_key,
    now=None,
):
    """Charges the gifter at once and creates the `scheduled` gift, the receiver's `future` subscription (term:
    delivery + one period) and an invoice raised on the gifter (is_gifted, term not yet final). A decline raises
    PaymentError and creates nothing but the failed payment record."""
    now = now or timezone.now()
    if not offer.active or not offer.giftable:
        raise ServiceError(f"Plan {offer.long_id} is not a gift plan.", field="subscription[plan_id]")
    for addon, quantity in addons:
        if not addon.active or (addon.offers.exists() and not addon.offers.filter(pk=offer.pk).exists()):
            raise ServiceError(f"Addon {addon.code} is not applicable to this plan.", field="addons[id]")
        if addon.currency != offer.currency:
            raise ServiceError(
                f"Addon {addon.code} is priced in {addon.currency}, the plan in {offer.currency}.", field="addons[id]"
            )
        if quantity < 1:
            raise ServiceError("Addon quantity must be at least 1.", field="addons[quantity]")
    coupons = []
    for index, code in enumerate(coupon_codes):
        try:
            coupon = coupon_find(code, offer=offer, now=now)
        except ServiceError as error:
            error.field = f"coupon_ids[{index}]"  # the merchant API's name for it, not the storefront's
            raise
        if coupon in coupons:  # a coupon applies once per purchase, however often it is listed
            raise ServiceError(f"Coupon {coupon.code} is already applied.", field=f"coupon_ids[{index}]")
        coupons.append(coupon)
    # Every refusal comes before the charge: one raised after it (in _fulfil) would keep the money and give no gift.
    gift_fields = gift_fields_clean(
        names="chargebee",
        recipient_email=recipient_email,
        recipient_first_name=recipient_first_name,
        recipient_last_name=recipient_last_name,
        signature=signature,
        personal_note=note,
    )
    scheduled_at = scheduled_or_now(scheduled_at, now)
    services.gift_defaults(  # the date rules, checked before any money moves
        scheduled_at=scheduled_at, auto_claim=auto_claim, no_expiry=no_expiry, claim_expiry_date=claim_expiry_date
    )
    payment_method = payment_method or gifter.payment_methods.filter(is_default=True).first()
    if payment_method is None:
        raise PaymentError("payment_method_not_present", "The gifter has no payment method on file.")
    subtotal, discount = _price(offer=offer, addons=addons, coupons=coupons)
    coupons_take(coupons, field="coupon_ids")
    try:
        payment = charge(
            customer=gifter,
            amount=subtotal - discount,
            currency=offer.currency,
            payment_method=payment_method,
            idempotency_key=f"merchant-gift:{idempotency_key}",
        )
    except PaymentError:
        coupons_give_back(coupons)
        raise
    with refunded_on_failure(payment, coupons, reason="the merchant gift could not be created"):
        return _fulfil(
            payment=payment,
            gifter=gifter,
            offer=offer,
            receiver=receiver,
            addons=addons,
            coupons=coupons,
            discount=discount,
            now=now,
            gift_fields={
                **gift_fields,
                "scheduled_at": scheduled_at,
                "auto_claim": auto_claim,
                "no_expiry": no_expiry,
                "claim_expiry_date": claim_expiry_date,
            },
        )


@transaction.atomic
def _fulfil(*, payment, gifter, offer, receiver, addons, coupons, discount, now, gift_fields):
    existing = Gift.objects.filter(invoice__payments=payment).first()
    if existing is not None:  # a taken-over retry whose first attempt got this far
        return MerchantGift(existing, existing.subscription, existing.invoice)
    invoice = invoice_create(
        customer=gifter,
        offer=offer,
        discount=discount,
        addons=addons,
        is_gifted=True,
        paid_at=now,
        term_finalized=False,
    )
    Payment.objects.filter(pk=payment.pk).update(invoice=invoice)
    receiver = receiver or customer_for_email(gift_fields["recipient_email"])
    # Created before the gift so the gift_scheduled event already names it (gift_receiver.subscription_id).
    subscription = Subscription.objects.create(
        customer=receiver,
        offer=offer,
        status=Subscription.Status.FUTURE,
        term_start=gift_fields["scheduled_at"],
        term_end=offer.term_end(gift_fields["scheduled_at"]),
        auto_renew=False,
        renewable=False,  # Chargebee's gift subscriptions never renew, not even once a card is on file
        origin=Subscription.Origin.GIFT,
    )
    gift = services.gift_create(
        gifter=gifter,
        offer=offer,
        invoice=invoice,
        receiver=receiver,
        subscription=subscription,
        source=Gift.Source.MERCHANT,
        now=now,
        **gift_fields,
    )
    ledger_record(
        payment=payment,
        offer=offer,
        amount=invoice.total,
        currency=invoice.currency,
        target_type=Transaction.TargetType.GIFT,
        target_id=gift.pk,
        occurred_at=now,
    )
    gift.refresh_from_db()
    return MerchantGift(gift, subscription, invoice)


def gift_cancel(*, gift_id, now=None, actor="merchant"):
    """Cancels a `scheduled` or `unclaimed` gift: its future subscription is cancelled and the gifter refunded
    in full through the gateway (after the cancellation commits; a failed refund is logged and stays pending)."""
    now = now or timezone.now()
    with transaction.atomic():
        gift = gift_for_update(gift_id)
        gift.raise_refusal(GiftAction.CANCEL, now)
        _cancel_locked(gift, now=now, actor=actor)
        paid = gift_charge(gift)
    if paid is not None:
        # A failed refund is logged by refund(); its pending row is there for support to retry.
        with contextlib.suppress(PaymentError):
            refund(payment=paid, reason=f"gift {gift.pk} cancelled", **gift_share_of(gift, paid))
    gift.refresh_from_db()
    return gift


def _cancel_locked(gift, *, now, actor):
    """The cancellation of a gift whose row the caller locked and checked: the move, the gifter's email, the future
    subscription. Coupons the purchase used stay used: the cancel refunds money, not redemptions."""
    services.gift_transition(gift_ids=[gift.pk], to=GiftStatus.CANCELLED, now=now, actor=actor, cancelled_at=now)
    # A gift is cancelled once (the transition refuses a second time), so one key per gift.
    email_queue(kind=Email.Kind.GIFT_CANCELLED, key=f"gift:{gift.pk}:cancelled", to=gift.gifter.email, gift=gift)
    Subscription.objects.filter(gifts=gift, status=Subscription.Status.FUTURE).update(
        status=Subscription.Status.CANCELLED, cancelled_at=now, updated_at=now
    )


def gift_charge(gift):
    """The succeeded charge that paid for the gift (for a list's gift, the list's), or None: nothing was paid."""
    if not gift.invoice_id:
        return None
    charges = Payment.objects.filter(kind=Payment.Kind.CHARGE, status=Payment.Status.SUCCEEDED)
    return charges.filter(invoice_id=gift.invoice_id).order_by("pk").first()


# --- the gifter changes their mind (issue 16) -------------------------------------------------------------------


@dataclass
class Withdrawal:
    gift: Gift
    refund: Payment | None  # succeeded, or pending when the gateway failed (a repeat retries it); None: nothing paid


def gift_withdraw(*, gift_id, gifter, now=None):
    """The gifter takes back an unredeemed gift inside its offer's refund window (Gift.refusal's WITHDRAW rules): it
    is cancelled by them (actor `customer:<id>`: the recipient's link then says it was withdrawn), recorded as
    `gift_cancelled`, as every cancellation is, and `gift_withdrawn`, and refunded in full through the gateway.

    The gift's row lock decides a race with a redeem (whichever locks first wins; the other is refused) and with a
    second click. The refund owed is written `pending` in the cancellation's transaction and sent to the gateway
    after it commits, under the charge's refund key, so it is asked for once however often this runs. A repeat
    (double click, retried request) finds the gift withdrawn and answers the same, retrying a refund the gateway
    failed."""
    now = now or timezone.now()
    actor = f"customer:{gifter.pk}"
    with transaction.atomic():
        gift = gift_for_update(gift_id, "offer", "gifter")
        if gift.gifter_id != gifter.pk:
            raise ServiceError(_("Gift not found."), code="gift_not_found", status=404)
        paid = gift_charge(gift)
        repeat = _withdrawn_by(gift, actor)
        if not repeat:
            gift.raise_refusal(GiftAction.WITHDRAW, now)
            _cancel_locked(gift, now=now, actor=actor)
            extra = {"refund": _refund_resource(paid)}
            services.events_record(gift_ids=[gift.pk], event_type="gift_withdrawn", now=now, extra=extra)
        owed = refund_owed(payment=paid, reason=f"gift {gift.pk} withdrawn by its gifter") if paid else None
    # A repeat leaves a refund that another request is asking the gateway for right now (a double click) to it.
    in_flight = repeat and owed is not None and not owed.failure_code and owed.created_at > now - PAYMENT_IN_FLIGHT
    if owed is not None and owed.status != Payment.Status.SUCCEEDED and not in_flight:
        # A failure is logged by refund() and leaves the row pending: the gifter's next try, or support, retries it.
        with contextlib.suppress(PaymentError):
            refund(payment=paid, reason=f"gift {gift.pk} withdrawn by its gifter")
        owed.refresh_from_db()
    gift.refresh_from_db()
    return Withdrawal(gift, owed)


def withdrawal_refund(gift):
    """What withdrawing `gift` would refund, as (amount, currency), for the page that asks first; None: nothing."""
    paid = gift_charge(gift)
    return (paid.amount, paid.currency) if paid else None


def _withdrawn_by(gift, actor):
    return (
        gift.status == GiftStatus.CANCELLED and gift.timeline.filter(status=GiftStatus.CANCELLED, actor=actor).exists()
    )


def _refund_resource(paid):
    # The gift_withdrawn event's addition to Chargebee's envelope, in its money format (minor units).
    if paid is None:
        return None
    return {"amount": to_minor_units(paid.amount, paid.currency), "currency_code": paid.currency}


def gift_share_of(gift, payment):
    """What cancelling one gift refunds of the payment that bought it: all of it, or, for one gift of a bulk list
    (an invoice for N of the offer, issue 18), the list's total divided by N, under a refund key of the gift's own
    (so each gift of the list is refunded once, and never the whole list)."""
    invoice = payment.invoice
    quantity = invoice.lines.filter(entity_type="plan").values_list("quantity", flat=True).first() or 1
    if quantity == 1:
        return {}
    # Rounded shares can add up to a cent more than the total: the last ones are capped by what is left.
    share = min(quantize(invoice.total / quantity), invoice.total - invoice.amount_refunded)
    return {"amount": share, "key": f"refund:{payment.pk}:gift:{gift.pk}"}
