"""Erasing a customer's personal data (GDPR art. 17): each app erases its own part, registered in
settings.PERSONAL_DATA_ERASERS and read by dotted path (as PERSONAL_DATA gives each app's part of the copy), all in
one transaction. What accounting law needs stays under a pseudonym: the customer row itself stays (invoices,
payments and the ledger point at it) with a pseudonymous address that no mail server accepts; gifts they sent still
reach their recipients. Asking twice erases once."""

import logging
import secrets
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.module_loading import import_string

from accounts.models import Customer, ErasureRecord
from emails.personal_data import ERASED_DOMAIN, is_erased_address  # noqa: F401  (is_erased_address: for callers)
from emails.services import email_queue

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Erasure:
    """What each app's eraser is given: the customer (still as they were), the pseudonymous address that replaces
    theirs, the addresses to erase wherever they are written (theirs, unless it belongs to the account they are a
    duplicate registration of), and the erasure's time."""

    customer: Customer
    address: str
    addresses: tuple[str, ...]
    now: datetime


def erased_address():
    """A new pseudonymous address: random, so it names no one and the customer's id is not written into it."""
    return f"erased-{secrets.token_hex(8)}@{ERASED_DOMAIN}"


@transaction.atomic
def customer_erase(*, customer, requested_by, now=None):
    """Erases the personal data of `customer` and of every duplicate registration of their address (which are
    theirs too), each app its part (PERSONAL_DATA_ERASERS), and records who asked: `requested_by` is "customer" or
    "admin:<id>". Returns the ErasureRecord, or None when the customer was erased already (nothing is done twice)."""
    now = now or timezone.now()
    customer = Customer.objects.select_for_update().get(pk=customer.pk)
    if customer.erased_at is not None:
        logger.info("customer %s was erased already; nothing to do (requested by %s)", customer.pk, requested_by)
        return None
    duplicates = customer.duplicates.select_for_update().filter(erased_at=None).order_by("pk")
    for person in [customer, *duplicates]:
        # A duplicate shares its account's address: erased alone, it leaves the address (the account's) where it is.
        addresses = (person.email,) if person.duplicate_of_id is None else ()
        erasure = Erasure(customer=person, address=erased_address(), addresses=addresses, now=now)
        for path in settings.PERSONAL_DATA_ERASERS.values():
            import_string(path)(erasure)
    record = ErasureRecord.objects.create(customer=customer, requested_by=requested_by[:100], erased_at=now)
    # The audit line names the customer by id only: logs are kept longer and read more widely than the database.
    logger.info("personal data of customer %s erased (requested by %s)", customer.pk, requested_by)
    return record


def erasure_request(*, customer, now=None):
    """The customer's request from their account page: an email with a link that confirms it (accounts/emails.py),
    at most one an hour, so the button cannot flood their mailbox. Nothing is erased until the link is used."""
    now = now or timezone.now()
    key = f"customer:{customer.pk}:erase:{now:%Y%m%d%H}"
    return email_queue(kind="erase_account", key=key, to=customer.email)
