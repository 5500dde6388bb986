from celery import shared_task

from billing import renewals


# The name is the wire name it had under accounts: queued messages and the beat schedule use it.
@shared_task(name="accounts.renew_due_subscriptions", ignore_result=True)
def renew_due_subscriptions():
    return renewals.renew_due_subscriptions()
