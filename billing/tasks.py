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
