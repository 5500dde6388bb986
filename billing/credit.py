"""Account credit (issue 16): a customer's balance per currency, the sum of their CreditEntry rows. Credit is given
when a gift of theirs ends unredeemed under an offer that gives credit (billing/claim_window.py), spent before the
card on a purchase (billing/services.order_pay) or a renewal (billing/renewals.py), and given back when what it paid
is refunded (billing/services.refund). Every movement has a unique key, so a retry never moves it twice; spending
locks the customer's row first, so two checkouts at once cannot spend the same credit."""

from decimal import Decimal

from django.db.models import Sum

from accounts.models import Customer
from billing.models import CreditEntry
from giftshop.money import quantize

Reason = CreditEntry.Reason
ZERO = Decimal("0.00")


def credit_balance(*, customer, currency):
    """The customer's account credit in `currency` (never below zero)."""
    if customer is None or customer.pk is None:
        return ZERO
    total = CreditEntry.objects.filter(customer=customer, currency=currency).aggregate(total=Sum("amount"))["total"]
    return max(quantize(total or 0), ZERO)


def credit_balances(*, customer):
    """{currency: balance} of every currency the customer holds credit in (balances of zero left out)."""
    rows = CreditEntry.objects.filter(customer=customer).values("currency").annotate(total=Sum("amount"))
    return {row["currency"]: quantize(row["total"]) for row in rows.order_by("currency") if row["total"] > 0}


def credit_spend(*, customer, currency, up_to, key, order=None, invoice=None):
    """Spends at most `up_to` of the customer's credit in `currency`, once per `key`: returns the amount spent
    (Decimal, 0 when there is none). Call inside a transaction: the customer's row is locked first, so a second
    spender waits and then sees the balance this one left. A repeat with the same key returns what the first spent."""
    Customer.objects.select_for_update().filter(pk=customer.pk).values_list("pk", flat=True).first()
    existing = CreditEntry.objects.filter(key=key).first()
    if existing is not None:
        return -existing.amount
    amount = min(credit_balance(customer=customer, currency=currency), quantize(up_to))
    if amount <= 0:
        return ZERO
    CreditEntry.objects.create(
        customer=customer,
        amount=-amount,
        currency=currency,
        reason=Reason.SPENT,
        order=order,
        invoice=invoice,
        key=key,
    )
    return amount


def credit_give(*, customer, amount, currency, reason, key, gift=None, order=None, invoice=None):
    """Gives `amount` of credit once per `key`; returns (entry, created). Nothing for an amount of 0."""
    amount = quantize(amount)
    if amount <= 0:
        return None, False
    return CreditEntry.objects.get_or_create(
        key=key,
        defaults={
            "customer": customer,
            "amount": amount,
            "currency": currency,
            "reason": reason,
            "gift": gift,
            "order": order,
            "invoice": invoice,
        },
    )


def credit_spent_on(*, order=None, invoice=None):
    """How much credit paid for the order or invoice (0: none)."""
    entries = CreditEntry.objects.filter(reason=Reason.SPENT)
    entries = entries.filter(order=order) if order is not None else entries.filter(invoice=invoice)
    total = entries.aggregate(total=Sum("amount"))["total"]
    return -quantize(total) if total else ZERO


def order_credit_key(order):
    return f"order:{order.pk}:credit"


def credit_spend_undo(*, key):
    """A spend whose charge was declined (or never made) is taken back: the credit is the customer's again. Only
    a spend not yet on an invoice (a completed purchase's stays)."""
    CreditEntry.objects.filter(key=key, reason=Reason.SPENT, invoice__isnull=True).delete()


def credit_refund(*, spend_key, back_key):
    """Gives back the credit spent under `spend_key` (a purchase being refunded), once per `back_key`; returns the
    amount (0: none was spent)."""
    spent = CreditEntry.objects.filter(key=spend_key, reason=Reason.SPENT).first()
    if spent is None:
        return ZERO
    credit_give(
        customer=spent.customer,
        amount=-spent.amount,
        currency=spent.currency,
        reason=Reason.REFUNDED,
        key=back_key,
        order=spent.order,
        invoice=spent.invoice,
    )
    return -spent.amount
