from celery import shared_task

from billing import renewals, stripe_payments


# The name is the wire name it had under accounts: queued messages and the beat schedule use it.
@shared_task(name="accounts.renew_due_subscriptions", ignore_result=True)
def renew_due_subscriptions():
    """Billing's minute sweep: renewals, and (with Stripe) the browser payments their customers left unconfirmed."""
    renewed = renewals.renew_due_subscriptions()
    if stripe_payments.enabled():
        stripe_payments.open_payments_release()
    return renewed
