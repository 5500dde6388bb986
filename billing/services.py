"""Everything that moves money: pricing and paying orders, charging saved cards and refunding through the gateway
(never holding a transaction open across a gateway call), invoices, the ledger's rows, and the customer's saved
cards. The merchant API's gift sales are in billing/gift_sales.py, renewals in billing/renewals.py."""

import contextlib
import logging
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from functools import partial

from django.conf import settings
from django.db import DatabaseError, IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone, translation
from django.utils.module_loading import import_string
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from accounts.models import Customer, PaymentMethod, Subscription, Transaction
from billing.credit import credit_balance, credit_refund, credit_spend, credit_spend_undo, order_credit_key
from billing.gateways import PaymentError, get_gateway
from billing.models import CreditEntry, Invoice, InvoiceLine, Order, Payment
from emails.services import email_queue
from gifts.models import DeliveryMethod, gift_fields_clean
from gifts.services import gift_create_from_order
from giftshop.errors import ServiceError
from giftshop.i18n import language_of
from giftshop.money import money, quantize
from offers.models import Coupon, Offer, quantity_percent_off

logger = logging.getLogger(__name__)
# A payment attempt younger than this blocks a second attempt on the same order (double-click protection).
PAYMENT_IN_FLIGHT = timedelta(minutes=2)


class OrderError(ServiceError):
    pass


COUPON_USED_UP = gettext_lazy("This coupon has been used up.")


def coupon_find(code, *, offer, now):
    code = (code or "").strip()
    # A code no coupon can have (a NUL byte, which PostgreSQL refuses in text, or overlong) is simply not valid.
    plausible = code.isprintable() and len(code) <= Coupon._meta.get_field("code").max_length
    coupon = Coupon.objects.filter(code__iexact=code).first() if code and plausible else None
    if coupon is not None and coupon.used_up:
        raise OrderError(COUPON_USED_UP, field="couponCode", code="coupon_used_up")
    if coupon is None or not coupon.is_valid_at(now):
        raise OrderError(_("This coupon code is not valid."), field="couponCode", code="invalid_coupon")
    if coupon.offers.exists() and not coupon.offers.filter(pk=offer.pk).exists():
        raise OrderError(_("This coupon does not apply to this offer."), field="couponCode", code="invalid_coupon")
    return coupon


def coupons_take(coupons, *, field="couponCode"):
    """Takes one redemption of each coupon before the charge, in one transaction of conditional UPDATEs, so the
    count never passes a coupon's max_redemptions however many customers pay at once: the one who finds it
    used up is told so, and nothing is charged. Give them back with coupons_give_back if the purchase fails."""
    with transaction.atomic():
        for coupon in coupons:
            taken = Coupon.objects.filter(
                Q(max_redemptions__isnull=True) | Q(redemptions__lt=F("max_redemptions")), pk=coupon.pk
            ).update(redemptions=F("redemptions") + 1)
            if not taken:  # the transaction gives back the ones taken before it
                raise OrderError(COUPON_USED_UP, field=field, code="coupon_used_up")


def coupons_give_back(coupons):
    """The purchase the coupons were taken for did not happen (a decline, a failure after the charge)."""
    for coupon in coupons:
        Coupon.objects.filter(pk=coupon.pk, redemptions__gt=0).update(redemptions=F("redemptions") - 1)


PRICE_FIELDS = ["currency", "offer_price", "discount_amount", "tax_value", "total_price"]


def _price(order):
    order.currency = order.offer.currency
    order.offer_price = quantize(order.offer.price) * order.quantity
    # A bulk list's quantity tier first (offers.QuantityTier), then the coupon on what is left, as on one gift.
    tier = quantize(order.offer_price * quantity_percent_off(order.offer, order.quantity) / 100)
    coupon = order.coupon.discount_on(order.offer_price - tier, order.currency) if order.coupon else quantize(0)
    order.discount_amount = min(tier + coupon, order.offer_price)
    order.tax_value = quantize(0)  # prices are tax-inclusive; a tax engine would plug in here
    order.total_price = order.offer_price - order.discount_amount + order.tax_value


@transaction.atomic
def order_create(
    *,
    customer: Customer,
    offer: Offer,
    buy_as_gift=False,
    coupon_code=None,
    payment_method_id="",
    checkout_key=None,
    quantity=1,
):
    """A pending order. Its gift, if it is one, is in the buyer's stored language until one is chosen
    (order_update's `gift_language`)."""
    now = timezone.now()
    if not offer.active:
        raise OrderError(_("This offer is not on sale."), field="offerId", code="inactive_offer")
    if buy_as_gift and not offer.giftable:
        raise OrderError(_("This offer cannot be bought as a gift."), field="buyAsAGift", code="not_giftable")
    order = Order(
        customer=customer,
        offer=offer,
        buy_as_gift=buy_as_gift,
        payment_method_id=payment_method_id or "",
        checkout_key=checkout_key,
        quantity=quantity,
        gift_language=language_of(customer.locale) if customer.locale else "",
    )
    order.coupon = coupon_find(coupon_code, offer=offer, now=now) if coupon_code else None
    _price(order)
    order.save()
    return order


_UNSET = object()


@transaction.atomic
def order_update(
    *,
    order: Order,
    buy_as_gift=None,
    coupon_code=_UNSET,
    payment_method_id=None,
    recipient_email=_UNSET,
    scheduled_at=_UNSET,
    personal_note=_UNSET,
    time_zone=_UNSET,
    recipient_first_name=_UNSET,
    signature=_UNSET,
    delivery_method=_UNSET,
    design=_UNSET,
    gift_language=_UNSET,
):
    """Changes any subset of an unpaid order and prices it again. `scheduled_at` is an aware datetime (a past
    one means deliver at once) or None; `time_zone` the IANA zone it was chosen in (the gift shows its times
    there); `delivery_method` "email" or "handover" (the gifter gives it in person: no address is needed);
    `design` a GiftDesign (gifts.selectors.design_for_checkout) or None; `gift_language` the language the
    recipient reads the gift in (gift_language_clean)."""
    order = Order.objects.select_for_update(of=("self",)).select_related("offer").get(pk=order.pk)
    now = timezone.now()
    if order.status != Order.Status.PENDING:
        raise OrderError(_("This order is already paid and cannot be changed."), code="order_paid", status=409)
    if order.is_expired(now):
        raise OrderError(_("This order has expired; create a new one."), code="order_expired", status=409)
    if buy_as_gift is not None:
        if buy_as_gift and not order.offer.giftable:
            raise OrderError(_("This offer cannot be bought as a gift."), field="buyAsAGift", code="not_giftable")
        order.buy_as_gift = buy_as_gift
    if coupon_code is not _UNSET:
        order.coupon = coupon_find(coupon_code, offer=order.offer, now=now) if coupon_code else None
    if payment_method_id is not None:
        order.payment_method_id = str(payment_method_id)
    if recipient_email is not _UNSET:  # it may be cleared again until payment, which asks for one
        order.recipient_email = (
            gift_fields_clean(names="mediastore", recipient_email=recipient_email)["recipient_email"]
            if recipient_email
            else ""
        )
    if scheduled_at is not _UNSET:
        order.scheduled_at = scheduled_at
    if personal_note is not _UNSET:
        order.personal_note = gift_fields_clean(names="mediastore", personal_note=personal_note)["personal_note"]
    if time_zone is not _UNSET:
        order.time_zone = time_zone or ""
    if delivery_method is not _UNSET:
        if delivery_method not in DeliveryMethod.values:
            raise OrderError(
                _("Choose how the gift is given: “email” or “handover”."), field="deliveryMethod", code="invalid_method"
            )
        order.delivery_method = delivery_method
    if design is not _UNSET:
        order.design = design
    if gift_language is not _UNSET:
        order.gift_language = gift_language_clean(gift_language)
    given = {"recipient_first_name": recipient_first_name, "signature": signature}
    given = {name: value for name, value in given.items() if value is not _UNSET}
    for name, value in gift_fields_clean(names="mediastore", **given).items():
        setattr(order, name, value)
    _price(order)
    order.save(
        update_fields=[
            "buy_as_gift",
            "coupon",
            "payment_method_id",
            "recipient_email",
            "scheduled_at",
            "personal_note",
            "time_zone",
            "recipient_first_name",
            "signature",
            "delivery_method",
            "design",
            "gift_language",
            *PRICE_FIELDS,
        ]
    )
    return order


def gift_language_clean(value, *, field="language"):
    """One of the site's languages (settings.LANGUAGES) for a gift, from a language tag or locale: "de", "de-DE" and
    "de_DE" are "de"; empty is none chosen (""). Any other is refused (422) naming `field`."""
    tag = str(value or "").strip().replace("_", "-").lower()
    if not tag:
        return ""
    try:
        return translation.get_supported_language_variant(tag)
    except LookupError:
        codes = ", ".join(code for code, _name in settings.LANGUAGES)
        raise OrderError(
            _("There is no such language to choose for the gift: use one of %(codes)s.") % {"codes": codes},
            code="invalid_language",
            field=field,
        ) from None


@dataclass
class PaymentResult:
    order: Order
    payment: Payment
    invoice: Invoice
    transaction: Transaction
    gift: object = None
    subscription: Subscription = None


FOREIGN_CARD_TOKEN = "foreign_card_token"  # noqa: S105 - an error code, not a secret


def _payment_source(customer, *, payment_method=None, card_token=None):
    """(token, PaymentMethod or None, label) to charge: a given card, a one-off token, or the default card."""
    if payment_method is not None:
        if payment_method.customer_id != customer.pk:
            raise OrderError(_("Unknown payment method."), field="paymentMethodId", code="invalid_payment_method")
        return payment_method.token, payment_method, payment_method.label
    if card_token:
        saved = PaymentMethod.objects.filter(token=card_token).first()
        if saved is not None and saved.customer_id == customer.pk:
            return saved.token, saved, saved.label
        if saved is not None:
            # A stored card's token is a charge credential of its customer only (one that leaked, say from a log,
            # must not pay for someone else): refused like an unknown payment method, and counted by the caller.
            raise OrderError(_("Unknown payment method."), field="cardToken", code=FOREIGN_CARD_TOKEN)
        described = get_gateway().describe(card_token)
        label = f"{described[0]} •••• {described[1]}" if described else "card"
        return card_token, None, label
    default = customer.payment_methods.filter(is_default=True).first()
    if default is None:
        raise OrderError(_("Add a payment method first."), field="paymentMethodId", code="no_payment_method")
    return default.token, default, default.label


FREE_LABEL = "no payment needed"
CREDIT_LABEL = "account credit"


def order_pay(*, order: Order, payment_method: PaymentMethod = None, card_token=None, fulfil=None) -> PaymentResult:
    """Charges the order once and fulfils it: the invoice, the ledger row, and the gift or subscription, all or
    nothing. A decline raises PaymentError and leaves the order payable with another card. A free order (a full
    discount) paid with no card is completed without the gateway. `fulfil(order=, invoice=, now=)`, when given,
    makes what the order pays for instead (a bulk gift list: billing/bulk_sales.py) in the completing transaction
    and returns the ledger row's (target_type, target_id)."""
    fulfil = fulfil or stored_fulfilment(order)
    # Account credit (issue 16) pays first, for an order of one gift or subscription (a bulk list's gifts are
    # refunded a share at a time, from its card charge): when it covers the total, no card is needed.
    spend_credit = fulfil is None and order.quantity == 1
    credit = credit_balance(customer=order.customer, currency=order.currency) if spend_credit else 0
    free = payment_method is None and not card_token and order.total_price <= credit
    if free:
        token, method, label = None, None, CREDIT_LABEL if order.total_price else FREE_LABEL
    else:
        token, method, label = _payment_source(order.customer, payment_method=payment_method, card_token=card_token)
    _price_still_holds(order)  # a free order whose price rose is refused here, before anything is recorded
    payment, coupons = _payment_start(
        order=order, method=method, label=label, one_gift=fulfil is None, spend_credit=spend_credit
    )
    reference = f"free-{payment.pk}"  # a payment of 0 that no gateway saw (a free order, or one credit paid)
    if payment.amount and token is None:  # another checkout spent the credit meanwhile: nothing is charged
        _payment_failed(payment, PaymentError("credit_changed", "Your account credit changed."))
        credit_spend_undo(key=order_credit_key(order))
        coupons_give_back(coupons)
        raise OrderError(
            _("Your account credit no longer covers this order; choose a card to pay the rest."),
            field="paymentMethodId",
            code="credit_changed",
            status=409,
        )
    if payment.amount:
        try:
            charge = get_gateway().charge(
                token=token, amount=payment.amount, currency=payment.currency, idempotency_key=payment.idempotency_key
            )
            reference = charge.reference
        except PaymentError as error:
            _payment_failed(payment, error)
            credit_spend_undo(key=order_credit_key(order))  # the declined attempt spent nothing
            coupons_give_back(coupons)
            raise
    # The money is taken: recorded on its own first, so that whatever fails next can be refunded.
    Payment.objects.filter(pk=payment.pk).update(
        status=Payment.Status.SUCCEEDED, reference=reference, completed_at=timezone.now()
    )
    payment.refresh_from_db()
    with refunded_on_failure(payment, coupons, reason=f"order {order.pk} could not be completed"):
        return _payment_complete(payment=payment, fulfil=fulfil)


@contextmanager
def refunded_on_failure(payment, coupons=(), *, reason):
    """Whatever fails after a successful charge (a constraint, a lost database connection, a bug) refunds the
    charge and gives the coupons back before the error goes on: nobody pays for nothing. A crash that kills the
    process runs none of this: the retry of the same request then finds the charge and completes the purchase."""
    try:
        yield
    except Exception:
        logger.exception("payment %s taken but the purchase failed: refunding it", payment.pk)
        with contextlib.suppress(DatabaseError):  # what the rolled-back transaction wrote to it (an invoice) is gone
            payment.refresh_from_db()
        coupons_give_back(coupons)
        with contextlib.suppress(PaymentError):  # refund() logs it; its pending row is there for support
            refund(payment=payment, reason=reason)
            # Refunded: a retry of the same request (same idempotency key) must charge anew, not reuse this charge.
            Payment.objects.filter(pk=payment.pk).update(idempotency_key=f"{payment.idempotency_key}:refunded")
            if payment.order_id:  # and spend credit anew (refund() gave this spend back)
                spent_key = order_credit_key(Order(pk=payment.order_id))
                CreditEntry.objects.filter(key=spent_key).update(key=f"{spent_key}:refunded:{payment.pk}")
        raise


@transaction.atomic
def _payment_start(*, order, method, label, one_gift=True, spend_credit=False):
    order = Order.objects.select_for_update(of=("self",)).select_related("offer").get(pk=order.pk)
    now = timezone.now()
    if order.status == Order.Status.PAID:
        raise OrderError(_("This order is already paid."), code="order_paid", status=409)
    if order.is_expired(now):
        raise OrderError(_("This order has expired; create a new one."), code="order_expired", status=409)
    if not order.offer.active:
        raise OrderError(_("This offer is not on sale any more."), field="offerId", code="inactive_offer")
    if order.buy_as_gift:
        if not order.offer.giftable:
            raise OrderError(_("This offer cannot be bought as a gift."), field="buyAsAGift", code="not_giftable")
        handover = order.delivery_method == DeliveryMethod.HANDOVER
        if not order.recipient_email and one_gift and not handover:  # a bulk list's recipients are its rows
            raise OrderError(_("Give the recipient's email address first."), field="recipientEmail", code="missing")
    if order.coupon_id:
        coupon_find(order.coupon.code, offer=order.offer, now=now)
    in_flight = order.payments.filter(status=Payment.Status.PENDING, created_at__gt=now - PAYMENT_IN_FLIGHT)
    if in_flight.exists():
        raise OrderError(
            _("A payment for this order is already being processed."), code="payment_in_progress", status=409
        )
    coupons = [order.coupon] if order.coupon_id else []
    coupons_take(coupons)
    spent = 0
    if spend_credit and order.total_price:  # locks the customer's row: a second checkout waits, then sees less
        spent = credit_spend(
            customer=order.customer,
            currency=order.currency,
            up_to=order.total_price,
            key=order_credit_key(order),
            order=order,
        )
    payment = Payment.objects.create(
        customer_id=order.customer_id,
        order=order,
        amount=order.total_price - spent,
        currency=order.currency,
        gateway=get_gateway().name,
        payment_method=method,
        payment_method_label=label,
        idempotency_key=f"order-{order.pk}-{uuid.uuid4().hex}",
    )
    return payment, coupons


def _price_still_holds(order):
    """The order is priced again before any charge: if the offer's price (or its coupon) changed since the payer
    saw the total, the order keeps the new prices (the answer shows them) and the payer confirms them by paying
    again."""
    with transaction.atomic():
        order = Order.objects.select_for_update(of=("self",)).select_related("offer", "coupon").get(pk=order.pk)
        seen = order.total_price
        _price(order)
        changed = order.status == Order.Status.PENDING and order.total_price != seen
        if changed:
            order.save(update_fields=PRICE_FIELDS)
    if changed:
        raise OrderError(
            _("The price has changed: the total is now %(total)s. Check the new total and pay again.")
            % {"total": money(order.total_price, order.currency)},
            code="price_changed",
            status=409,
        )


def stored_fulfilment(order):
    """The order's own fulfilment (Order.fulfilment, by settings.ORDER_FULFILMENTS) as a `fulfil` callable, or None
    for an order of one gift or subscription."""
    if not order.fulfilment:
        return None
    arguments = dict(order.fulfilment)
    return partial(import_string(settings.ORDER_FULFILMENTS[arguments.pop("kind")]), **arguments)


@transaction.atomic
def _payment_complete(*, payment, fulfil=None):
    now = timezone.now()
    order = (
        Order.objects.select_for_update(of=("self",))
        .select_related("offer", "customer", "coupon")
        .get(pk=payment.order_id)
    )
    fulfil = fulfil or stored_fulfilment(order)  # a payment the browser confirmed (Stripe) fulfils the same
    Order.objects.filter(pk=order.pk).update(status=Order.Status.PAID, paid_at=now)
    order.status, order.paid_at = Order.Status.PAID, now
    invoice = invoice_create(
        customer=order.customer,
        order=order,
        offer=order.offer,
        discount=order.discount_amount,
        is_gifted=order.buy_as_gift,
        paid_at=now,
        quantity=order.quantity,
    )
    Payment.objects.filter(pk=payment.pk).update(invoice=invoice)
    CreditEntry.objects.filter(key=order_credit_key(order)).update(invoice=invoice)
    payment.refresh_from_db()
    result = PaymentResult(order=order, payment=payment, invoice=invoice, transaction=None)
    if fulfil is not None:
        target = fulfil(order=order, invoice=invoice, now=now)
    elif order.buy_as_gift:
        result.gift = gift_create_from_order(order=order, invoice=invoice, now=now)
        target = (Transaction.TargetType.GIFT, result.gift.pk)
    else:
        result.subscription = Subscription.objects.create(
            customer=order.customer,
            offer=order.offer,
            status=Subscription.Status.ACTIVE,
            term_start=now,
            term_end=order.offer.term_end(now),
            auto_renew=True,
            origin=Subscription.Origin.PURCHASE,
        )
        target = (Transaction.TargetType.SUBSCRIPTION, result.subscription.pk)
        email_queue(kind="order_receipt", key=f"order:{order.pk}:receipt", to=order.customer.email, order=order)
    result.transaction = ledger_record(
        payment=payment,
        offer=order.offer,
        amount=order.total_price,
        currency=order.currency,
        target_type=target[0],
        target_id=target[1],
        occurred_at=now,
    )
    return result


def ledger_record(
    *,
    payment,
    offer,
    target_type,
    target_id,
    kind=Transaction.Kind.PURCHASE,
    amount=None,
    currency=None,
    reference=None,
    occurred_at=None,
):
    """The payer's ledger row for a payment through the gateway: what was paid (the payment's amount unless told),
    with which card, and what it paid for (`target_type`: a gift or a subscription). Call inside the transaction
    that books the payment."""
    return Transaction.objects.create(
        customer_id=payment.customer_id,
        occurred_at=occurred_at or timezone.now(),
        kind=kind,
        offer=offer,
        amount=payment.amount if amount is None else amount,
        currency=currency or payment.currency,
        payment_method_id=payment.payment_method_id,
        payment_method_label=payment.payment_method_label,
        payment_reference=payment.reference if reference is None else reference,
        target_type=target_type,
        target_id=str(target_id),
    )


def invoice_create(
    *,
    customer,
    offer,
    order=None,
    discount=None,
    addons=(),
    is_gifted=False,
    paid_at=None,
    term_finalized=True,
    quantity=1,
):
    """An invoice with one plan line (`quantity` of the offer: a bulk gift list's gifts) and a line per (addon,
    quantity); `discount` comes off the subtotal."""
    lines = [
        InvoiceLine(
            description=offer.title,
            entity_type="plan",
            entity_id=offer.long_id,
            quantity=quantity,
            unit_amount=quantize(offer.price),
            amount=quantize(offer.price) * quantity,
        )
    ]
    for addon, quantity in addons:
        lines.append(
            InvoiceLine(
                description=addon.name,
                entity_type="addon",
                entity_id=addon.code,
                quantity=quantity,
                unit_amount=quantize(addon.price),
                amount=quantize(addon.price) * quantity,
            )
        )
    subtotal = sum((line.amount for line in lines), quantize(0))
    discount = min(quantize(discount or 0), subtotal)
    invoice = Invoice.objects.create(
        customer=customer,
        order=order,
        currency=offer.currency,
        subtotal=subtotal,
        discount=discount,
        total=subtotal - discount,
        is_gifted=is_gifted,
        term_finalized=term_finalized,
        paid_at=paid_at,
    )
    for line in lines:
        line.invoice = invoice
    InvoiceLine.objects.bulk_create(lines)
    return invoice


def _payment_failed(payment, error):
    """The gateway declined (or failed): the attempt is recorded as failed, with the gateway's reason (in the site's
    language, whoever's checkout it was: a record, not a message)."""
    with translation.override(settings.LANGUAGE_CODE):
        reason = str(error.message)
    Payment.objects.filter(pk=payment.pk).update(
        status=Payment.Status.FAILED,
        failure_code=error.code,
        failure_message=reason,
        completed_at=timezone.now(),
    )


def charge(*, customer, amount, currency, payment_method, idempotency_key, order=None):
    """Takes `amount` from a saved card: a pending Payment is recorded first (own transaction), the gateway is
    called outside any transaction with a key derived from ours (so a retried request cannot charge twice), and
    the outcome is written back. Returns the succeeded Payment, or raises PaymentError."""
    payment, created = Payment.objects.get_or_create(
        idempotency_key=idempotency_key,
        defaults={
            "customer": customer,
            "order": order,
            "amount": amount,
            "currency": currency,
            "gateway": get_gateway().name,
            "payment_method": payment_method,
            "payment_method_label": payment_method.label,
        },
    )
    if not created and payment.status == Payment.Status.SUCCEEDED:
        return payment  # a retry of a request whose charge went through
    try:
        # No one is there to authenticate (a renewal, a merchant-API sale): the gateway charges off session.
        result = get_gateway().charge(
            token=payment_method.token,
            amount=amount,
            currency=currency,
            idempotency_key=idempotency_key,
            off_session=True,
        )
    except PaymentError as error:
        _payment_failed(payment, error)
        # A retry with the same key gets a fresh attempt (e.g. after the customer fixed their card).
        Payment.objects.filter(pk=payment.pk).update(idempotency_key=f"{idempotency_key}:failed:{payment.pk}")
        raise
    Payment.objects.filter(pk=payment.pk).update(
        status=Payment.Status.SUCCEEDED, reference=result.reference, completed_at=timezone.now()
    )
    payment.refresh_from_db()
    return payment


def refund_owed(*, payment, reason="", amount=None, key=None):
    """The refund row of `payment` (in full, or `amount` under its own `key`), made `pending` if it is not there yet:
    written in the transaction of what makes the refund due (a withdrawn gift), it records the debt before the
    gateway is called after commit, and refund() then finds it by its key."""
    key = key or f"refund:{payment.pk}"
    amount = payment.amount if amount is None else amount
    refund_row, _created = Payment.objects.get_or_create(
        idempotency_key=key,
        defaults={
            "customer_id": payment.customer_id,
            "order_id": payment.order_id,
            "invoice_id": payment.invoice_id,
            "kind": Payment.Kind.REFUND,
            "amount": amount,
            "currency": payment.currency,
            "gateway": payment.gateway,
            "payment_method_id": payment.payment_method_id,
            "payment_method_label": payment.payment_method_label,
            "failure_message": reason[:200],
        },
    )
    return refund_row


def refund(*, payment, reason="", amount=None, key=None):
    """Refunds a succeeded charge through the gateway (outside any transaction) and books it: a refund Payment, the
    invoice's refunded amount and a refund row in the customer's ledger. Safe to call again. In full, or `amount` of
    it under its own `key` (one gift of a bulk list's charge: billing/gift_sales.gift_cancel)."""
    refund_row = refund_owed(payment=payment, reason=reason, amount=amount, key=key)
    if refund_row.status == Payment.Status.SUCCEEDED:
        return refund_row
    amount, key = refund_row.amount, refund_row.idempotency_key
    reference = f"refund-{payment.reference}"  # nothing was charged (a free order): no gateway to ask
    if amount:
        try:
            result = get_gateway().refund(
                reference=payment.reference, amount=amount, currency=payment.currency, idempotency_key=key
            )
            reference = result.reference
        except PaymentError as error:
            logger.error("refund of payment %s failed: %s", payment.pk, error.message)
            Payment.objects.filter(pk=refund_row.pk).update(failure_code=error.code, failure_message=error.message)
            raise
    with transaction.atomic():
        done = Payment.objects.filter(pk=refund_row.pk, status=Payment.Status.PENDING).update(
            status=Payment.Status.SUCCEEDED, reference=reference, completed_at=timezone.now()
        )
        back = 0
        if done and payment.order_id and key == f"refund:{payment.pk}":
            # A purchase refunded in full gets back the account credit that paid part of it (issue 16).
            back = credit_refund(spend_key=order_credit_key(Order(pk=payment.order_id)), back_key=f"{key}:credit")
        if done and payment.invoice_id:
            refunded = F("amount_refunded") + amount + back
            Invoice.objects.filter(pk=payment.invoice_id).update(amount_refunded=refunded)
            original = Transaction.objects.filter(payment_reference=payment.reference).select_related("offer").first()
            if original is not None:
                ledger_record(
                    payment=payment,
                    amount=amount,
                    kind=Transaction.Kind.REFUND,
                    offer=original.offer,
                    reference=reference,
                    target_type=original.target_type,
                    target_id=original.target_id,
                )
    refund_row.refresh_from_db()
    return refund_row


def checkout(
    *,
    customer,
    offer,
    checkout_key,
    as_gift,
    coupon_code=None,
    recipient_email="",
    scheduled_at=None,
    personal_note="",
    time_zone="",
    recipient_first_name="",
    signature="",
    delivery_method=DeliveryMethod.EMAIL,
    design=None,
    gift_language="",
    payment_method=None,
    card_token=None,
    pay=True,
):
    """The web checkout in one call: the order for this form render (found again on a double submit or a retry
    after a decline), updated and paid. Returns the paid order; raises OrderError or PaymentError. A guest's new
    account (no password, no zone yet) takes the zone chosen for the gift: its emails and pages then show
    times there."""
    order = Order.objects.filter(checkout_key=checkout_key).first()
    if order is None:
        try:
            order = order_create(
                customer=customer,
                offer=offer,
                buy_as_gift=as_gift,
                coupon_code=coupon_code or None,
                checkout_key=checkout_key,
            )
        except IntegrityError:  # the same form submitted twice at once: the other request made the order
            order = Order.objects.get(checkout_key=checkout_key)
    if order.customer_id != customer.pk or order.offer_id != offer.pk:
        raise OrderError(_("This checkout form belongs to another order; reload the page."), code="checkout_mismatch")
    if order.status == Order.Status.PAID:
        return order
    changes = {"buy_as_gift": as_gift, "coupon_code": coupon_code or None}
    if as_gift:
        changes.update(
            recipient_email=recipient_email,
            scheduled_at=scheduled_at,
            personal_note=personal_note,
            time_zone=time_zone,
            recipient_first_name=recipient_first_name,
            signature=signature,
            delivery_method=delivery_method,
            design=design,
            gift_language=gift_language,
        )
        if time_zone and not customer.time_zone and not customer.has_usable_password():
            Customer.objects.filter(pk=customer.pk, time_zone="").update(time_zone=time_zone)
            customer.time_zone = time_zone
    try:
        order = order_update(order=order, **changes)
        if not pay:
            return order  # the browser pays it (Stripe's Payment Element: billing/stripe_payments.py)
        order_pay(order=order, payment_method=payment_method, card_token=card_token)
    except OrderError as error:
        if error.code not in ("payment_in_progress", "order_paid"):
            raise
        _wait_until_paid(order)  # a double submit: the first request is paying
    order.refresh_from_db()
    return order


def _wait_until_paid(order, timeout=15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if Order.objects.filter(pk=order.pk, status=Order.Status.PAID).exists():
            return
        time.sleep(0.1)


def price_preview(*, offer, coupon_code=None, quantity=1):
    """What an order for `quantity` of `offer` with this coupon would cost (nothing is saved); OrderError for a bad
    coupon."""
    order = Order(
        offer=offer,
        coupon=coupon_find(coupon_code, offer=offer, now=timezone.now()) if coupon_code else None,
        quantity=quantity,
    )
    _price(order)
    return order


# --- saved cards ----------------------------------------------------------------------------------------------


@transaction.atomic
def payment_method_add(*, customer, card_number, exp_month, exp_year, make_default=True):
    """Tokenises a card through the gateway and keeps the token (never the number)."""
    today = timezone.now().date()
    if (int(exp_year), int(exp_month)) < (today.year, today.month):
        raise ServiceError(_("This card has expired."), code="expired_card", field="expMonth")
    try:
        card = get_gateway().tokenize(number=card_number, exp_month=exp_month, exp_year=exp_year)
    except PaymentError as error:
        raise ServiceError(error.message, code=error.code, field="cardNumber") from None
    return _card_save(customer=customer, card=card, make_default=make_default)


@transaction.atomic
def payment_method_from_token(*, customer, token):
    """Saves a card the client already tokenised with the gateway (sandbox: tok_visa, …)."""
    try:
        card = get_gateway().exchange(token, customer=customer)
    except PaymentError as error:
        raise ServiceError(error.message, code=error.code, field="token_id") from None
    return _card_save(customer=customer, card=card, make_default=False)


def _card_save(*, customer, card, make_default):
    """Keeps a tokenised card (the first one is the default) and lets the customer's gift subscriptions renew."""
    has_default = customer.payment_methods.filter(is_default=True).exists()
    if make_default and has_default:
        customer.payment_methods.filter(is_default=True).update(is_default=False)
    method = PaymentMethod.objects.create(
        customer=customer,
        gateway=get_gateway().name,
        token=card.token,
        brand=card.brand,
        last4=card.last4,
        exp_month=card.exp_month,
        exp_year=card.exp_year,
        is_default=make_default or not has_default,
    )
    subscriptions_renewal_switch_on(customer=customer)
    return method


@transaction.atomic
def payment_method_remove(*, payment_method):
    was_default = payment_method.is_default
    customer = payment_method.customer
    payment_method.delete()
    forget = getattr(get_gateway(), "forget", None)  # a gateway that keeps cards (Stripe) detaches it
    if forget is not None and payment_method.gateway == get_gateway().name:
        transaction.on_commit(lambda: forget(payment_method.token))
    if was_default:
        successor = customer.payment_methods.order_by("-created_at").first()
        if successor:
            PaymentMethod.objects.filter(pk=successor.pk).update(is_default=True)


def subscriptions_renewal_switch_on(*, customer, now=None):
    """A card on file turns the customer's redeemed gifts into paid subscriptions: auto-renew switches on, and the
    first charge comes at the end of the gift term (billing/renewals.py). Chargebee's gift subscriptions (not
    `renewable`) stay non-renewing. Returns the number switched on."""
    now = now or timezone.now()
    return Subscription.objects.filter(
        customer=customer,
        status=Subscription.Status.ACTIVE,
        origin=Subscription.Origin.GIFT,
        auto_renew=False,
        renewable=True,
        term_end__gt=now,
    ).update(auto_renew=True, updated_at=now)


# --- payments the browser confirms (Stripe's Payment Element: billing/stripe_payments.py) ---------------------


def payment_open(*, order, method=None, label="card"):
    """Starts a payment of the order that the customer will confirm in the browser: the order priced again, its
    coupon taken, a pending Payment recorded (its idempotency key is the attempt's). Raises OrderError as
    order_pay does."""
    _price_still_holds(order)
    payment, _started = _payment_start(order=order, method=method, label=label, one_gift=not order.fulfilment)
    return payment


def payment_abandon(*, payment, code, message):
    """A browser payment that will not be completed (given up for a new attempt): failed, its coupon given back."""
    done = Payment.objects.filter(pk=payment.pk, status=Payment.Status.PENDING).update(
        status=Payment.Status.FAILED, failure_code=code, failure_message=message[:200], completed_at=timezone.now()
    )
    if done and payment.order_id:
        order = Order.objects.select_related("coupon").get(pk=payment.order_id)
        coupons_give_back([order.coupon] if order.coupon_id else [])


def payment_settle(*, payment, reference):
    """The gateway says the browser's payment succeeded: the order is completed exactly once, whoever tells first
    (the browser's return or the webhook; the other finds it done and returns False). The payment's row is locked
    while its order is completed, so a process killed half-way leaves it pending for the next telling. Whatever
    fails after the money was taken (say, the order was paid meanwhile by another payment) refunds it, and the
    payment is marked failed so that no later telling completes it."""
    failure = None
    with transaction.atomic():
        locked = Payment.objects.select_for_update().filter(pk=payment.pk, status=Payment.Status.PENDING).first()
        if locked is None:
            return False
        try:
            with transaction.atomic():
                Payment.objects.filter(pk=locked.pk).update(
                    status=Payment.Status.SUCCEEDED, reference=reference, completed_at=timezone.now()
                )
                locked.refresh_from_db()
                _payment_complete(payment=locked)
        except Exception as error:
            failure = error
            Payment.objects.filter(pk=locked.pk).update(
                status=Payment.Status.FAILED,
                reference=reference,
                failure_code="not_completed",
                failure_message=f"Paid, but the order could not be completed: refunded ({type(error).__name__}).",
                completed_at=timezone.now(),
            )
    if failure is not None:
        locked.refresh_from_db()
        order = Order.objects.select_related("coupon").get(pk=locked.order_id)
        with refunded_on_failure(locked, [order.coupon] if order.coupon_id else [], reason=f"order {order.pk} failed"):
            raise failure
    return True
