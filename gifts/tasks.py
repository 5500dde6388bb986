"""Thin Celery entry points: they take ids (never model instances) and call a service."""

from celery import shared_task

from gifts import mail, reminders, services, webhooks


@shared_task(name="gifts.send_email", ignore_result=True)
def send_email(email_id):
    return mail.email_send(email_id)


@shared_task(name="gifts.deliver_due_gifts", ignore_result=True)
def deliver_due_gifts():
    return services.deliver_due_gifts()


@shared_task(name="gifts.send_due_emails", ignore_result=True)
def send_due_emails():
    return mail.send_due_emails()


@shared_task(name="gifts.expire_due_gifts", ignore_result=True)
def expire_due_gifts():
    return services.expire_due_gifts()


@shared_task(name="gifts.send_due_webhooks", ignore_result=True)
def send_due_webhooks():
    return webhooks.send_due_webhooks()


@shared_task(name="gifts.send_reminders", ignore_result=True)
def send_reminders():
    return reminders.send_reminders()
