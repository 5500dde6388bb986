from celery import shared_task

from accounts import renewals
from giftshop import chargebee


@shared_task(name="accounts.reap_idempotency_keys", ignore_result=True)
def reap_idempotency_keys():
    return chargebee.idempotency_reap()


@shared_task(name="accounts.renew_due_subscriptions", ignore_result=True)
def renew_due_subscriptions():
    return renewals.renew_due_subscriptions()
