import stripe
from celery import shared_task

from billing import claim_window, renewals, stripe_payments


# The name is the wire name it had under accounts: queued messages and the beat schedule use it.
@shared_task(name="accounts.renew_due_subscriptions", ignore_result=True)
def renew_due_subscriptions():
    """Billing's minute sweep: renewals, and (with Stripe) the browser payments their customers left unconfirmed."""
    renewed = renewals.renew_due_subscriptions()
    if stripe_payments.enabled():
        stripe_payments.open_payments_release()
    return renewed


@shared_task(name="billing.settle_expired_gifts", ignore_result=True)
def settle_expired_gifts():
    """What the gifters of gifts that expired unredeemed get back (refund or account credit, per offer)."""
    return claim_window.settle_expired_gifts()


@shared_task(
    name="billing.stripe_customers_forget",
    ignore_result=True,
    autoretry_for=(stripe.StripeError,),
    retry_backoff=60,
    retry_backoff_max=3600,
    max_retries=48,  # about two days of a Stripe outage
)
def stripe_customers_forget(stripe_ids):
    """Deletes erased customers' Customers at Stripe (billing/stripe_payments.py), retried while Stripe fails."""
    return stripe_payments.stripe_customers_forget(stripe_ids=stripe_ids)
