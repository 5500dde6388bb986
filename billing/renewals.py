"""The renewal engine: settles subscriptions whose term is over, by charging the payer's card for the next term
(one attempt at a time, idempotent per term) or by ending them, and retries a declined card on a schedule while
access stays."""

import logging
import time
from datetime import timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from accounts.models import RENEWAL_RETRY_AFTER, Subscription, Transaction
from billing import metrics
from billing.credit import credit_balance, credit_spend, credit_spend_undo
from billing.gateways import PaymentError
from billing.models import CreditEntry, Payment
from billing.services import CREDIT_LABEL, charge, invoice_create, ledger_record, refund
from billing.stripe_gateway import AuthenticationRequired
from emails.services import email_queue
from giftshop.money import quantize

logger = logging.getLogger(__name__)

Status = Subscription.Status
# A claim older than this belongs to a worker that died mid-renewal. Taking it over is safe: the charge's
# idempotency key is the same, so a charge that went through is found again instead of being taken twice.
CLAIM_TIMEOUT = timedelta(minutes=30)


def renew_due_subscriptions(*, now=None, batch_size=100, time_limit=60.0) -> int:
    """Renews or ends every subscription whose term is over, however overdue, in batches. A batch is claimed
    under SKIP LOCKED and marked `renewal_started_at` in one short transaction (so other workers skip it, and a
    gift redeemed meanwhile is refused until the payment is settled); each subscription is then settled outside
    any transaction. Stops after `time_limit` seconds, handing back what it claimed but did not reach (the next
    sweep goes on). Returns the number of subscriptions worked on."""
    deadline = time.monotonic() + time_limit
    settled, seen = 0, set()
    while True:
        now_ = now or timezone.now()
        ids = _claim(now=now_, batch_size=batch_size, exclude=seen)
        if not ids:
            return settled
        seen.update(ids)
        for position, pk in enumerate(ids):
            if time.monotonic() > deadline:
                _release(ids[position:], stamp=now_)
                return settled
            try:
                _settle(pk, now_)
            except Exception:
                logger.exception("renewal of subscription %s failed; the next sweep tries again", pk)
            finally:
                _release([pk], stamp=now_)
            settled += 1
        if len(ids) < batch_size:
            return settled


@transaction.atomic
def _claim(*, now, batch_size, exclude):
    ids = list(
        Subscription.objects.select_for_update(skip_locked=True)
        .filter(status__in=[Status.ACTIVE, Status.NON_RENEWING], term_end__lte=now)
        .filter(Q(next_renewal_attempt_at__isnull=True) | Q(next_renewal_attempt_at__lte=now))
        .filter(Q(renewal_started_at__isnull=True) | Q(renewal_started_at__lt=now - CLAIM_TIMEOUT))
        .exclude(pk__in=exclude)
        .order_by("term_end", "pk")
        .values_list("pk", flat=True)[:batch_size]
    )
    Subscription.objects.filter(pk__in=ids).update(renewal_started_at=now)
    return ids


def _release(ids, *, stamp):
    # Only our own claim: a worker that took a stale claim over has stamped its own time.
    Subscription.objects.filter(pk__in=ids, renewal_started_at=stamp).update(renewal_started_at=None)


def _settle(pk, now):
    subscription = Subscription.objects.select_related("offer", "customer").get(pk=pk)
    if subscription.status not in (Status.ACTIVE, Status.NON_RENEWING) or subscription.term_end > now:
        return  # settled by another worker since the claim
    if subscription.status == Status.NON_RENEWING or not subscription.renewable:
        # Chargebee's gift subscriptions never renew: they end as cancelled at the end of the gift term.
        _end(subscription, now, cancelled=not subscription.renewable)
        return
    method = subscription.customer.payment_methods.filter(is_default=True).first()
    price, currency = quantize(subscription.offer.price), subscription.offer.currency
    # Account credit (issue 16) pays first; with enough of it no card is needed.
    covered = credit_balance(customer=subscription.customer, currency=currency) >= price
    if not subscription.auto_renew or (method is None and not covered):
        _end(subscription, now)
        return
    key = _renewal_key(subscription)
    with transaction.atomic():  # the customer's row is locked while the credit is spent: no two spend it
        spent = credit_spend(customer=subscription.customer, currency=currency, up_to=price, key=f"{key}:credit")
    try:
        if spent == price:
            payment = _paid_by_credit(subscription, price, key)
        elif method is None:  # the credit was spent elsewhere meanwhile: as without a card
            credit_spend_undo(key=f"{key}:credit")
            _end(subscription, now)
            return
        else:
            payment = charge(
                customer=subscription.customer,
                amount=price - spent,
                currency=currency,
                payment_method=method,
                idempotency_key=key,
            )
    except PaymentError as error:
        credit_spend_undo(key=f"{key}:credit")  # the declined attempt spent nothing; the retry spends anew
        metrics.renewal_declined()
        if isinstance(error, AuthenticationRequired):
            _authentication_ask(subscription, error)
        _retry_later(subscription, now, error)
        return
    metrics.renewal_charged()
    _book_renewal(subscription, payment, now)


def _paid_by_credit(subscription, price, key):
    """The renewal's payment when account credit pays all of it: recorded as succeeded with no gateway call (one
    per term: the renewal key)."""
    payment, _ = Payment.objects.get_or_create(
        idempotency_key=key,
        defaults={
            "customer": subscription.customer,
            "amount": 0,
            "currency": subscription.offer.currency,
            "gateway": CREDIT_LABEL,
            "payment_method_label": CREDIT_LABEL,
            "status": Payment.Status.SUCCEEDED,
            "reference": f"credit-{key}",
            "completed_at": timezone.now(),
        },
    )
    return payment


def _end(subscription, now, *, cancelled=False):
    ending = {"status": Status.CANCELLED, "cancelled_at": now} if cancelled else {"status": Status.EXPIRED}
    ended = Subscription.objects.filter(
        pk=subscription.pk, status=subscription.status, term_end=subscription.term_end
    ).update(**ending, next_renewal_attempt_at=None, renewal_started_at=None, updated_at=now)
    if ended:
        logger.info("subscription %s ended: %s", subscription.pk, ending["status"])


def _retry_later(subscription, now, error):
    """A declined charge: the next retry is the first point of the schedule still ahead (points missed while the
    sweep was down are skipped, not fired in a burst); with none left the subscription expires."""
    retry_at = next((subscription.term_end + d for d in RENEWAL_RETRY_AFTER if subscription.term_end + d > now), None)
    logger.info("renewal of subscription %s declined (%s); retry at %s", subscription.pk, error.code, retry_at)
    if retry_at is None:
        Subscription.objects.filter(pk=subscription.pk, status=Status.ACTIVE, term_end=subscription.term_end).update(
            status=Status.EXPIRED,
            renewal_attempts=subscription.renewal_attempts + 1,
            next_renewal_attempt_at=None,
            renewal_started_at=None,
            updated_at=now,
        )
        return
    Subscription.objects.filter(
        pk=subscription.pk,
        status=Status.ACTIVE,
        term_end=subscription.term_end,
        renewal_attempts=subscription.renewal_attempts,
    ).update(renewal_attempts=subscription.renewal_attempts + 1, next_renewal_attempt_at=retry_at, updated_at=now)


@transaction.atomic
def _book_renewal(subscription, payment, now):
    """The paid term: extended, invoiced and in the payer's ledger, together. The UPDATE's WHERE on the old term
    end lets only one worker book a term, however many ran it."""
    old_end = subscription.term_end
    extended = Subscription.objects.filter(pk=subscription.pk, status=Status.ACTIVE, term_end=old_end).update(
        term_start=old_end,
        term_end=subscription.offer.term_end(old_end),
        renewal_started_at=None,
        renewal_attempts=0,
        next_renewal_attempt_at=None,
        updated_at=now,
    )
    if not extended:
        if not Payment.objects.filter(pk=payment.pk, invoice__isnull=False).exists():
            logger.warning(
                "renewal payment %s taken but subscription %s changed meanwhile", payment.pk, subscription.pk
            )
        return
    invoice = invoice_create(customer=subscription.customer, offer=subscription.offer, is_gifted=False, paid_at=now)
    Payment.objects.filter(pk=payment.pk).update(invoice=invoice)
    CreditEntry.objects.filter(key=f"{_renewal_key(subscription)}:credit").update(invoice=invoice)
    ledger_record(
        payment=payment,
        amount=invoice.total,
        kind=Transaction.Kind.RENEWAL,
        offer=subscription.offer,
        target_type=Transaction.TargetType.SUBSCRIPTION,
        target_id=subscription.pk,
        occurred_at=now,
    )
    logger.info("subscription %s renewed until %s", subscription.pk, subscription.offer.term_end(old_end))


def _renewal_key(subscription):
    return f"renewal:{subscription.pk}:{subscription.term_end.isoformat()}"


def _authentication_ask(subscription, error):
    """The bank wants the cardholder to authenticate the renewal (SCA): the declined attempt keeps the
    PaymentIntent, and the customer is emailed a link to confirm it (billing/stripe_payments.py). The retry
    schedule goes on meanwhile."""
    payment = (
        Payment.objects.filter(idempotency_key__startswith=f"{_renewal_key(subscription)}:failed:")
        .order_by("-pk")
        .first()
    )
    if payment is None or not error.intent_id:
        return
    Payment.objects.filter(pk=payment.pk).update(reference=error.intent_id)
    email_queue(kind="renewal_authentication", key=f"renewal-auth:{payment.pk}", to=subscription.customer.email)


def renewal_subscription(payment):
    """The subscription and term end a renewal payment was for (its key is `renewal:<id>:<term end>[:failed:…]`)."""
    _, pk, rest = payment.idempotency_key.split(":", 2)
    term_end = rest.split(":failed:", 1)[0]
    subscription = Subscription.objects.select_related("offer", "customer").filter(pk=pk).first()
    return subscription, term_end


def renewal_book_authenticated(*, payment, reference, now=None):
    """A renewal the bank declined for authentication has been authenticated and paid by the customer: the term it
    was for is booked once (the payment moves from failed to succeeded only once). If the subscription moved on
    meanwhile (renewed by a retry, or ended), the payment is refunded: nobody pays for nothing."""
    now = now or timezone.now()
    taken = Payment.objects.filter(
        pk=payment.pk, status=Payment.Status.FAILED, failure_code="authentication_required"
    ).update(status=Payment.Status.SUCCEEDED, reference=reference, completed_at=now)
    if not taken:
        return False
    payment.refresh_from_db()
    subscription, term_end = renewal_subscription(payment)
    if subscription is not None and subscription.term_end.isoformat() == term_end:
        _book_renewal(subscription, payment, now)
    if not Payment.objects.filter(pk=payment.pk, invoice__isnull=False).exists():
        logger.warning("authenticated renewal payment %s came too late: refunding it", payment.pk)
        refund(payment=payment, reason="the renewal it was for was settled meanwhile")
    return True
