"""The customer's orders in their personal data copy (accounts/personal_data.py), and billing's part of an erasure
(accounts/erasure.py) and of the gifts' retention rule (gifts/retention.py): the orders' copies of a gift's delivery
details, and the customer's Customer at Stripe. Invoices, payments and the ledger hold no name or address (they point
at the customer, whose row keeps a pseudonym), so accounting keeps every amount, date, tax and number."""

from django.db import transaction
from django.db.models import Q

from billing import tasks
from billing.models import Order, StripeCustomer

DELIVERY_DETAILS_REMOVED = {"recipient_email": "", "recipient_first_name": "", "personal_note": "", "signature": ""}


def orders(customer):
    return [
        {
            "id": order.pk,
            "offer": order.offer.title,
            "status": order.status,
            "total_price": order.total_price,
            "currency": order.currency,
            "as_gift": order.buy_as_gift,
            "created_at": order.created_at,
            "paid_at": order.paid_at,
        }
        for order in customer.orders.select_related("offer").order_by("created_at", "pk")
    ]


def erase_orders(erasure):
    """Billing's part of an erasure: their orders keep their prices and dates but lose the delivery details they
    carried (the paid ones' gifts have their own copy, which the gifts' part decides on); others' orders addressed
    to them name the pseudonymous address instead, without the recipient's name."""
    Order.objects.filter(customer=erasure.customer).update(**DELIVERY_DETAILS_REMOVED)
    # A group code's message waits in its order until the order is paid (Order.fulfilment): not past an erasure.
    for order in Order.objects.filter(customer=erasure.customer, fulfilment__has_key="personal_note"):
        Order.objects.filter(pk=order.pk).update(fulfilment={**order.fulfilment, "personal_note": ""})
    to_them = Q()
    for address in erasure.addresses:
        to_them |= Q(recipient_email__iexact=address)
    if erasure.addresses:
        Order.objects.filter(to_them).update(recipient_email=erasure.address, recipient_first_name="")


def erase_stripe_customers(erasure):
    """The customer's Customer at Stripe (their name, address and saved cards) is deleted there, after the erasure
    commits (a network call never runs inside it); the task retries while Stripe fails."""
    stripe_ids = list(StripeCustomer.objects.filter(customer=erasure.customer).values_list("stripe_id", flat=True))
    if stripe_ids:
        transaction.on_commit(lambda: tasks.stripe_customers_forget.delay(stripe_ids), robust=True)


def gift_orders_details_remove(sender, *, gift_ids, **kwargs):
    """The orders of gifts whose personal details the retention rule removed lose their copy of them too
    (gifts.signals.gift_details_removed, connected in billing/receivers.py)."""
    Order.objects.filter(gift__in=gift_ids).update(**DELIVERY_DETAILS_REMOVED)
