from django.http import Http404
from django.utils import timezone

from accounts.models import Subscription


def customer_self(customer, customer_id):
    """The access rule for a customer's own resources: only their own id; anything else is 404 (not 403, so
    ids reveal nothing)."""
    if str(customer.pk) != str(customer_id):
        raise Http404("Customer not found.")
    return customer


def transaction_page(*, customer, limit, offset):
    rows = customer.transactions.select_related("offer").order_by("-occurred_at", "-pk")
    return list(rows[offset : offset + limit]), rows.count()


def subscription_page(*, customer, limit, offset):
    rows = customer.subscriptions.select_related("offer").order_by("-term_start", "-pk")
    return list(rows[offset : offset + limit]), rows.count()


def subscriptions_with_access(*, customer, now=None):
    now = now or timezone.now()
    return list(customer.subscriptions.filter(Subscription.held_at(now), term_start__lte=now).select_related("offer"))
