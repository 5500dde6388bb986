"""Thin Celery entry points: they take ids (never model instances) and call a service."""

from celery import shared_task

from gifts import reminders, retention, services


@shared_task(name="gifts.deliver_due_gifts", ignore_result=True)
def deliver_due_gifts():
    return services.delivery_sweep()


@shared_task(name="gifts.expire_due_gifts", ignore_result=True)
def expire_due_gifts():
    return services.expire_due_gifts()


@shared_task(name="gifts.send_reminders", ignore_result=True)
def send_reminders():
    return reminders.send_reminders()


@shared_task(name="gifts.remove_ended_gift_details", ignore_result=True)
def remove_ended_gift_details():
    return retention.gift_details_remove_ended()
