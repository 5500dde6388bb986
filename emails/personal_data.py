"""The outbox's part of a customer's erasure (settings.PERSONAL_DATA_ERASERS), and the removal of addresses from
outbox rows that the apps' retention rules ask for. A row holds no message (it is rendered when it is sent), so its
address, and a provider's error that quotes it, are all the personal data it keeps."""

import re

from django.db.models import Q

from emails.models import Email

# An erased customer's pseudonymous address is at this domain: RFC 2606 reserves `.invalid`, so an address there can
# never be delivered to, nor ever belong to anyone.
ERASED_DOMAIN = "erased.invalid"
# What an error of the provider may quote of an address; every one of them goes, not only the one erased.
ADDRESS = re.compile(r"[^\s<>()\"',;:]+@[^\s<>()\"',;:]+")
NOT_SENT = "Not sent: its addressee's personal data was erased."


def is_erased_address(address):
    """Whether `address` is an erased customer's pseudonym: nothing sent there can arrive."""
    return (address or "").lower().endswith(f"@{ERASED_DOMAIN}")


def erase_emails(erasure):
    """Every email to the erased addresses now names the pseudonymous address instead, and those still waiting
    are never sent (marked failed, with why). One being sent right now goes out: its provider already has it."""
    if not erasure.addresses:
        return
    to_them = Q()
    for address in erasure.addresses:
        to_them |= Q(to_email__iexact=address)
    rows = Email.objects.filter(to_them)
    rows.filter(status=Email.Status.PENDING).update(status=Email.Status.FAILED, last_error=NOT_SENT)
    addresses_replace(rows, erasure.address)


def addresses_replace(rows, address):
    """Rewrites the outbox rows `rows` (a queryset) to `address` ("" to remove it), and takes any address out of
    the provider's errors they recorded (a bounce quotes the address it bounced from)."""
    quoted = [(pk, error) for pk, error in rows.exclude(last_error="").values_list("pk", "last_error") if "@" in error]
    rows.update(to_email=address)
    for pk, error in quoted:
        Email.objects.filter(pk=pk).update(last_error=ADDRESS.sub("(address removed)", error))
