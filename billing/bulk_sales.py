"""Paying for a bulk gift list (issue 18): one order for all its valid rows, priced with the offer's quantity tiers
and a coupon as usual (billing.services._price), one charge through the gateway and one invoice (a plan line of N
gifts); the list is frozen as paid in the payment's transaction and its gifts are made afterwards by a background
task (gifts/bulk.py), so paying never waits for 5,000 inserts."""

from datetime import datetime
from functools import partial

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import Transaction
from billing.models import Order
from billing.services import OrderError, order_create, order_pay, order_update, price_preview
from gifts import bulk, group_codes, tasks
from gifts.models import BulkList, GroupCode, gift_fields_clean
from giftshop.money import money


def bulk_price(*, bulk_list, coupon_code=None):
    """What paying for the list would cost now (nothing is saved): an unsaved Order with the breakdown; OrderError
    for a bad coupon."""
    quantity = bulk.bulk_list_summary(bulk_list)["valid"]
    return price_preview(offer=bulk_list.offer, coupon_code=coupon_code or None, quantity=max(quantity, 1))


def bulk_checkout(
    *, gifter, list_id, coupon_code=None, payment_method=None, card_token=None, shown_total=None, pay=True
):
    """Pays for a draft list: the order for its current revision (a double submit finds the same one; a changed list
    gets a new one), priced again, compared with the total the gifter saw (`shown_total`: OrderError
    price_changed), charged once. Returns the list, paid. Raises ServiceError (the list has problems, a bad coupon),
    OrderError or PaymentError (a decline: nothing is created and the list stays payable). With `pay=False` the
    order is only made ready (list.pending_order) for the browser to pay (Stripe's Payment Element): the order
    carries its fulfilment, so whoever completes that payment makes the list paid."""
    bulk_list = bulk.bulk_list_for_gifter(gifter, list_id)
    if bulk_list.status != BulkList.Status.DRAFT:
        return bulk_list  # paid already: a double submit, or Back and Pay again
    quantity = bulk.bulk_list_payable(bulk_list, timezone.now())
    key = f"bulk-{bulk_list.pk}-{bulk_list.revision}"
    order = Order.objects.filter(checkout_key=key).first()
    if order is None:
        try:
            order = order_create(
                customer=gifter,
                offer=bulk_list.offer,
                buy_as_gift=True,
                coupon_code=coupon_code or None,
                checkout_key=key,
                quantity=quantity,
            )
        except IntegrityError:  # the same form submitted twice at once: the other request made the order
            order = Order.objects.get(checkout_key=key)
    if order.status == Order.Status.PENDING:
        fulfilment = {"kind": "bulk_list", "list_id": bulk_list.pk, "revision": bulk_list.revision}
        Order.objects.filter(pk=order.pk).update(fulfilment=fulfilment)
        order = order_update(order=order, coupon_code=coupon_code or None)
        _price_as_shown(order, shown_total)
        if not pay:
            bulk_list.pending_order = order
            return bulk_list
        order_pay(order=order, payment_method=payment_method, card_token=card_token)
    bulk_list.refresh_from_db()
    return bulk_list


def _price_as_shown(order, shown_total):
    """The gifter pays the total they saw, or is shown the new one (OrderError price_changed, 409)."""
    if shown_total is not None and order.total_price != shown_total:
        raise OrderError(
            _("The price has changed: the total is now %(total)s. Check the new total and pay again.")
            % {"total": money(order.total_price, order.currency)},
            code="price_changed",
            status=409,
        )


def fulfil_list(*, order, invoice, now, list_id, revision):
    """In the payment's transaction: the list is paid for this revision (else the payment is refunded), and its
    gifts are made by a task once that commits."""
    bulk.bulk_list_paid(list_id=list_id, revision=revision, order=order, invoice=invoice, now=now)
    transaction.on_commit(partial(tasks.bulk_gifts_create.delay, list_id), robust=True)
    # The ledger row names the list: its gifts do not exist yet, and one payment pays for all of them.
    return Transaction.TargetType.GIFT, f"list-{list_id}"


# --- group codes ---


def group_code_checkout(
    *, gifter, offer, seats, checkout_key, expires_at=None, personal_note="", coupon_code=None, payment_method=None,
    card_token=None, shown_total=None, pay=True,
):  # fmt: skip
    """Buys one group code of `seats` seats: one order (quantity = seats, the quantity tiers apply), one charge, one
    invoice; the code is made in the payment's transaction. A double submit (same `checkout_key`) finds the same
    order and its code. Returns the GroupCode; with `pay=False`, the order made ready for the browser to pay
    (Stripe), which makes the code whoever completes the payment."""
    gift_fields_clean(personal_note=personal_note)  # every refusal before the charge
    if expires_at is not None and expires_at <= timezone.now():
        raise OrderError(_("The code must be redeemable until a date in the future."), field="expires_at")
    checkout_key = f"{checkout_key[:40]}:{seats}"  # other seats after a decline: another order
    order = Order.objects.filter(checkout_key=checkout_key).first()
    if order is None:
        try:
            order = order_create(
                customer=gifter,
                offer=offer,
                buy_as_gift=True,
                coupon_code=coupon_code or None,
                checkout_key=checkout_key,
                quantity=seats,
            )
        except IntegrityError:
            order = Order.objects.get(checkout_key=checkout_key)
    if order.customer_id != gifter.pk or order.offer_id != offer.pk:
        raise OrderError(_("This form belongs to another order; reload the page."), code="checkout_mismatch")
    if order.status == Order.Status.PENDING:
        fulfilment = {"kind": "group_code", "expires_at": expires_at.isoformat() if expires_at else None}
        Order.objects.filter(pk=order.pk).update(fulfilment={**fulfilment, "personal_note": personal_note})
        order = order_update(order=order, coupon_code=coupon_code or None)
        _price_as_shown(order, shown_total)
        if not pay:
            return order
        order_pay(order=order, payment_method=payment_method, card_token=card_token)
    return GroupCode.objects.get(order=order)


def fulfil_group(*, order, invoice, now, expires_at, personal_note):
    group = group_codes.group_code_create(
        gifter=order.customer,
        offer=order.offer,
        seats=order.quantity,
        expires_at=datetime.fromisoformat(expires_at) if expires_at else None,
        personal_note=personal_note,
        order=order,
        invoice=invoice,
        now=now,
    )
    return Transaction.TargetType.GIFT, f"group-{group.pk}"
