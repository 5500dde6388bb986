"""Thin Celery entry points of the shared plumbing. Their names are those of the apps they were first written in:
messages already queued (and the beat schedule) name them so."""

from celery import shared_task

from giftshop import chargebee, webhooks


@shared_task(name="accounts.reap_idempotency_keys", ignore_result=True)
def reap_idempotency_keys():
    return chargebee.idempotency_reap()


@shared_task(name="gifts.send_due_webhooks", ignore_result=True)
def send_due_webhooks():
    return webhooks.send_due_webhooks()
