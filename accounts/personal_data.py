"""A customer's own data, as the copy they (or support, for them) can download: each app gives its part,
registered in settings.PERSONAL_DATA and read by dotted path. Never a secret: no password hash, card token, gift
code or link token. And the account's part of an erasure (accounts/erasure.py, settings.PERSONAL_DATA_ERASERS)."""

from django.conf import settings
from django.contrib.admin.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.utils import timezone
from django.utils.module_loading import import_string

from accounts.models import Customer, RefreshToken


def export(customer):
    """Everything the product holds about `customer`, by part (settings.PERSONAL_DATA)."""
    data = {"exported_at": timezone.now()}
    for name, path in settings.PERSONAL_DATA.items():
        data[name] = import_string(path)(customer)
    return data


def account(customer):
    return {
        "id": customer.pk,
        "email": customer.email,
        "email_verified_at": customer.email_verified_at,
        "first_name": customer.first_name,
        "last_name": customer.last_name,
        "time_zone": customer.time_zone,
        "locale": customer.locale,
        "country": customer.country,
        "currency": customer.currency,
        "date_joined": customer.date_joined,
        "last_login": customer.last_login,
        "has_password": customer.has_usable_password(),
    }


def cards(customer):
    return [
        {
            "brand": card.brand,
            "last4": card.last4,
            "expires": f"{card.exp_month:02d}/{card.exp_year}",
            "is_default": card.is_default,
            "added_at": card.created_at,
        }
        for card in customer.payment_methods.order_by("created_at")
    ]


def subscriptions(customer):
    return [
        {
            "offer": sub.offer.title,
            "status": sub.status,
            "origin": sub.origin,
            "term_start": sub.term_start,
            "term_end": sub.term_end,
            "auto_renew": sub.auto_renew,
            "cancelled_at": sub.cancelled_at,
        }
        for sub in customer.subscriptions.select_related("offer").order_by("term_start")
    ]


def transactions(customer):
    return [
        {
            "occurred_at": row.occurred_at,
            "kind": row.kind,
            "offer": row.offer.title,
            "amount": row.amount,
            "currency": row.currency,
            "payment_method": row.payment_method_label,
        }
        for row in customer.transactions.select_related("offer").order_by("occurred_at", "pk")
    ]


def erase_account(erasure):
    """The account's part of an erasure: the customer keeps their row (invoices, payments, the ledger and gifts
    point at it) under the pseudonymous address, with no name, no place, no card and no way in. Their password
    becomes unusable, which ends every web session (Django's session hash) and storefront token (the session stamp);
    refresh tokens go, and the account is inactive, so no password link can open it again. Subscriptions stop
    renewing: nothing is charged to an erased account. The ledger's rows keep their card labels (brand and last
    four digits: the payment's reference, which accounting keeps)."""
    customer, now = erasure.customer, erasure.now
    customer.payment_methods.all().delete()
    RefreshToken.objects.filter(customer=customer).delete()
    customer.subscriptions.filter(auto_renew=True).update(auto_renew=False, updated_at=now)
    customer.groups.clear()
    customer.user_permissions.clear()
    # The admin's history names a changed customer by its address (the object's str() when it was changed).
    LogEntry.objects.filter(
        content_type=ContentType.objects.get_for_model(Customer), object_id=str(customer.pk)
    ).update(object_repr=erasure.address)
    customer.set_unusable_password()
    Customer.objects.filter(pk=customer.pk).update(
        email=erasure.address,
        password=customer.password,
        first_name="",
        last_name="",
        time_zone="",
        country="",
        locale=Customer._meta.get_field("locale").default,
        email_verified_at=None,
        last_login=None,
        is_active=False,
        is_staff=False,
        is_superuser=False,
        erased_at=now,
    )
