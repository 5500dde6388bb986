from celery import shared_task

from accounts import renewals
from giftshop import chargebee


@shared_task(name="accounts.reap_idempotency_keys", ignore_result=True)
def reap_idempotency_keys():
    return chargebee.idempotency_reap()


@shared_task(name="accounts.send_password_link", ignore_result=True)
def send_password_link(email):
    # An address, not a customer id: looking it up in the request would tell, by its time, that it has an account.
    from accounts import services

    services.password_link_send(email=email)


@shared_task(name="accounts.renew_due_subscriptions", ignore_result=True)
def renew_due_subscriptions():
    return renewals.renew_due_subscriptions()
