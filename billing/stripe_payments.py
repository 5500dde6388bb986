"""Payments that the customer confirms in the browser with Stripe's Payment Element: the web checkout's (card,
wallets, 3-D Secure) and a renewal whose bank asked for authentication. The server makes the PaymentIntent for the
order's total (one per payment attempt, its idempotency key the attempt's), the browser confirms it, and the order
is paid only once the server has seen the PaymentIntent succeed: on the browser's return or by the
`payment_intent.succeeded` webhook, whichever comes first, exactly once (services.payment_settle)."""

import logging
from datetime import UTC, datetime

from django.conf import settings
from django.core import signing
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import PaymentMethod
from billing import services
from billing.gateways import PaymentError, get_gateway
from billing.models import Dispute, Order, Payment, StripeCustomer
from billing.renewals import renewal_book_authenticated
from billing.stripe_gateway import StripeGateway, major_units
from giftshop.errors import ServiceError

logger = logging.getLogger(__name__)

STRIPE = "billing.stripe_gateway.StripeGateway"
GIVEN_UP = ("replaced", "abandoned")  # payment_abandon's codes
AUTHENTICATE_SALT = "billing.stripe.authenticate"
AUTHENTICATE_LINK_AGE = 14 * 24 * 3600  # seconds: past the last renewal retry (7 days)


def enabled():
    """Whether the shop takes cards through Stripe (PAYMENT_GATEWAY=stripe)."""
    return settings.PAYMENT_GATEWAY == STRIPE


def gateway() -> StripeGateway:
    return get_gateway()


def order_payment(*, order, payment_method=None, save_card=False):
    """The order's payment for the browser to confirm, as (Payment, client secret): the one already open for this
    amount and card, or a new one (an open one for another total or card is given up first). `payment_method`: a
    saved card to pay with; else the Payment Element collects one, kept on file if `save_card`."""
    stripe = gateway()
    open_payment = (
        order.payments.filter(status=Payment.Status.PENDING, kind=Payment.Kind.CHARGE, gateway=StripeGateway.name)
        .exclude(reference="")
        .order_by("-pk")
        .first()
    )
    if open_payment is not None:
        same = open_payment.amount == order.total_price and open_payment.payment_method_id == (
            payment_method.pk if payment_method else None
        )
        intent = stripe.intent_get(open_payment.reference)
        if intent.status == "processing":
            raise services.OrderError(
                _("A payment for this order is being processed."), code="payment_in_progress", status=409
            )
        if same and intent.status not in ("canceled", "succeeded"):
            return open_payment, intent.client_secret
        if intent.status != "succeeded":
            intent = stripe.intent_cancel(open_payment.reference)
        if intent.status == "succeeded":  # paid meanwhile, its webhook not here yet
            settle(intent)
            return open_payment, intent.client_secret
        services.payment_abandon(payment=open_payment, code="replaced", message="A new payment attempt replaced it.")
    label = payment_method.label if payment_method else "card"
    payment = services.payment_open(order=order, method=payment_method, label=label)
    try:
        intent = stripe.intent_create(
            amount=payment.amount,
            currency=payment.currency,
            idempotency_key=payment.idempotency_key,
            customer_id=stripe.customer_id(order.customer) if (save_card or payment_method) else None,
            payment_method=payment_method.token if payment_method else None,
            save=save_card and payment_method is None,
            metadata={"giftshop_order": str(order.pk), "giftshop_payment": str(payment.pk)},
        )
    except Exception as error:
        services.payment_abandon(payment=payment, code=getattr(error, "code", "gateway_error"), message=str(error))
        raise
    Payment.objects.filter(pk=payment.pk).update(reference=intent.id)
    payment.reference = intent.id
    return payment, intent.client_secret


def settle(intent):
    """What the server learnt of a PaymentIntent (returned from the browser, or from a webhook) applied once: a
    succeeded one pays its order, or books the renewal it was authenticated for; a failed one is noted on its
    payment, which stays open for another card. Returns the Payment it concerns, or None."""
    payment = Payment.objects.filter(reference=intent.id, kind=Payment.Kind.CHARGE).order_by("-pk").first()
    if payment is None:
        return None
    if intent.status == "succeeded":
        if intent.amount != payment.amount or intent.currency != payment.currency:
            logger.error("PaymentIntent %s is for %s %s, payment %s for %s %s: not settled", intent.id,
                         intent.amount, intent.currency, payment.pk, payment.amount, payment.currency)  # fmt: skip
            return payment
        if payment.status == Payment.Status.PENDING and payment.order_id:
            if services.payment_settle(payment=payment, reference=intent.id):
                _card_keep(payment, intent)
        elif payment.status == Payment.Status.FAILED and payment.failure_code == "authentication_required":
            renewal_book_authenticated(payment=payment, reference=intent.id)
        elif payment.status == Payment.Status.FAILED and payment.failure_code in GIVEN_UP:
            # Given up for a new attempt, yet paid (confirmed in a tab left open): nobody pays for nothing.
            logger.warning("payment %s was given up but PaymentIntent %s succeeded: refunding", payment.pk, intent.id)
            services.refund(payment=payment, reason="a payment attempt that was given up")
    elif intent.status == "requires_payment_method" and intent.error_message and payment.status == "pending":
        Payment.objects.filter(pk=payment.pk, status=Payment.Status.PENDING).update(
            failure_code="declined", failure_message=intent.error_message[:200]
        )
    payment.refresh_from_db()
    return payment


def _card_keep(payment, intent):
    """The card the customer agreed to keep (setup_future_usage) is saved on their account once it has paid."""
    if not intent.saves_card or not intent.payment_method or payment.payment_method_id:
        return
    order = Order.objects.select_related("customer").get(pk=payment.order_id)
    if PaymentMethod.objects.filter(gateway=StripeGateway.name, token=intent.payment_method).exists():
        return
    try:
        method = services.payment_method_from_token(customer=order.customer, token=intent.payment_method)
    except ServiceError as error:  # paid all the same; only the card is not kept
        logger.warning("card of payment %s not kept: %s", payment.pk, error.message)
        return
    Payment.objects.filter(pk=payment.pk).update(payment_method=method, payment_method_label=method.label)


def dispute_record(dispute, *, event_created):
    """A Dispute from Stripe (created, updated or closed), kept on its payment and order; an older event than the
    one already taken changes nothing (events may arrive out of order)."""
    when = datetime.fromtimestamp(event_created, tz=UTC)
    payment = (
        Payment.objects.filter(reference=dispute["payment_intent"], kind=Payment.Kind.CHARGE).order_by("-pk").first()
        if dispute.get("payment_intent")
        else None
    )
    currency = dispute["currency"].upper()
    due = (dispute.get("evidence_details") or {}).get("due_by")
    fields = {
        "payment": payment,
        "order_id": payment.order_id if payment else None,
        "payment_intent": dispute.get("payment_intent") or "",
        "amount": major_units(dispute["amount"], currency),
        "currency": currency,
        "reason": dispute.get("reason") or "",
        "status": dispute["status"],
        "evidence_due_by": datetime.fromtimestamp(due, tz=UTC) if due else None,
        "updated_at": when,
    }
    with transaction.atomic():
        row, created = Dispute.objects.select_for_update().get_or_create(
            stripe_id=dispute["id"],
            defaults={**fields, "created_at": datetime.fromtimestamp(dispute["created"], tz=UTC)},
        )
        if not created and row.updated_at <= when:
            Dispute.objects.filter(pk=row.pk).update(**fields)
    if created:
        logger.warning("payment %s disputed (%s): %s", payment.pk if payment else "?", dispute["id"], fields["reason"])
    return row


def open_payments_release(*, now=None, batch_size=100):
    """Browser payments left unconfirmed past their order's lifetime (the customer went away): each PaymentIntent
    is read back — one that succeeded after all (its webhook lost) pays its order; any other is canceled at
    Stripe and its payment given up, so its coupon is free again. Runs with the renewal sweep (billing/tasks.py).
    Returns the number looked at."""
    now = now or timezone.now()
    stale = list(
        Payment.objects.filter(
            status=Payment.Status.PENDING,
            kind=Payment.Kind.CHARGE,
            gateway=StripeGateway.name,
            order__expires_at__lte=now,
        )
        .exclude(reference="")
        .order_by("pk")[:batch_size]
    )
    stripe = gateway()
    for payment in stale:
        try:
            intent = stripe.intent_get(payment.reference)
            if intent.status not in ("succeeded", "processing"):
                intent = stripe.intent_cancel(payment.reference)
            if intent.status in ("succeeded", "processing"):
                settle(intent)
                continue
        except PaymentError as error:
            logger.warning("open payment %s not released now: %s", payment.pk, error.message)
            continue
        services.payment_abandon(payment=payment, code="abandoned", message="Not confirmed before the order expired.")
    return len(stale)


# --- a renewal the bank wants authenticated: the emailed link ----------------------------------------------------


def authenticate_token(payment):
    return signing.dumps(payment.pk, salt=AUTHENTICATE_SALT, compress=True)


def authenticate_payment(token):
    """The payment an emailed authentication link names, or None (tampered, or older than two weeks)."""
    try:
        pk = signing.loads(token, salt=AUTHENTICATE_SALT, max_age=AUTHENTICATE_LINK_AGE)
    except signing.BadSignature:
        return None
    return Payment.objects.select_related("customer", "payment_method").filter(pk=pk).first()


# --- an erased customer's Customer at Stripe ----------------------------------------------------------------------


def stripe_customers_forget(*, stripe_ids):
    """Deletes erased customers' Customers at Stripe (their name, address and attached cards), then the rows that
    named them; queued by billing.personal_data.erase_stripe_customers once the erasure commits. A Stripe error
    leaves the row for the task's retry (one Stripe no longer knows counts as deleted). Without Stripe's key (the
    shop moved to another gateway) nothing can be deleted there: logged, the rows kept for when it is set again."""
    if not settings.STRIPE_SECRET_KEY:
        logger.warning(
            "%s Stripe customer(s) of erased customers not deleted: STRIPE_SECRET_KEY is not set", len(stripe_ids)
        )
        return 0
    stripe_gateway = StripeGateway()
    for stripe_id in stripe_ids:
        stripe_gateway.customer_forget(stripe_id)
        StripeCustomer.objects.filter(stripe_id=stripe_id).delete()
    return len(stripe_ids)
