"""Reads about customers and what they hold, shared by the pages and the APIs of every app above."""

from django.http import Http404
from django.utils import timezone
from django.utils.http import urlsafe_base64_decode
from django.utils.translation import gettext as _

from accounts.models import Customer, Subscription


def customer_self(customer, customer_id):
    """The access rule for a customer's own resources: only their own id; anything else is 404 (not 403, so
    ids reveal nothing)."""
    if str(customer.pk) != str(customer_id):
        raise Http404(_("Customer not found."))
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


def customer_has_access(customer, offer):
    """Whether the customer (or an anonymous visitor: never) holds a subscription giving the access `offer` gives,
    its own or one with the same tags."""
    if not customer.is_authenticated:
        return False
    return any(sub.offer.gives_same_access_as(offer) for sub in subscriptions_with_access(customer=customer))


def customer_for_email(email):
    """The customer with this email, created without a password if there is none yet."""
    customer = Customer.objects.owning(email).first()
    return customer or Customer.objects.create_user(email)


def customer_for_link(uidb64):
    """The account an emailed link names (base64 of its id, as Django's password links do), or None."""
    try:
        pk = int(urlsafe_base64_decode(uidb64).decode())
    except (ValueError, UnicodeDecodeError, OverflowError):
        return None
    if not 0 < pk < 2**63:
        return None
    return Customer.objects.filter(pk=pk, is_active=True, duplicate_of=None).first()
