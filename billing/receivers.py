"""Billing's side of gift events, connected in BillingConfig.ready()."""

from django.dispatch import receiver

from billing.models import Invoice
from billing.personal_data import gift_orders_details_remove
from gifts.signals import gift_claimed, gift_details_removed


@receiver(gift_claimed)
def gift_invoice_term_finalize(sender, *, gift, **kwargs):
    """A claimed gift's term is known at last (it starts at the claim): its invoice's term is final (Chargebee's
    `term_finalized`). Runs in the claim's transaction."""
    if gift.invoice_id:
        Invoice.objects.filter(pk=gift.invoice_id, term_finalized=False).update(term_finalized=True)


# The retention rule's removal of a long-over gift's personal details reaches the order's copy of them.
gift_details_removed.connect(gift_orders_details_remove, dispatch_uid="billing.gift_orders_details_remove")
