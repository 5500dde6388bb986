from celery import shared_task

from giftshop import chargebee


@shared_task(name="accounts.reap_idempotency_keys", ignore_result=True)
def reap_idempotency_keys():
    return chargebee.idempotency_reap()
