"""Billing's side of gift events, connected in BillingConfig.ready()."""

from django.dispatch import receiver

from billing.models import Invoice
from gifts.signals import gift_claimed


@receiver(gift_claimed)
def gift_invoice_term_finalize(sender, *, gift, **kwargs):
    """A claimed gift's term is known at last (it starts at the claim): its invoice's term is final (Chargebee's
    `term_finalized`). Runs in the claim's transaction."""
    if gift.invoice_id:
        Invoice.objects.filter(pk=gift.invoice_id, term_finalized=False).update(term_finalized=True)
