"""Thin Celery entry points of the outbox: they take ids (never model instances) and call a service. The names
are the ones these tasks had in the gifts app, so messages queued before the move still run."""

from celery import shared_task

from emails import services


@shared_task(name="gifts.send_email", ignore_result=True)
def send_email(email_id):
    return services.email_send(email_id)


@shared_task(name="emails.send_emails", ignore_result=True)
def send_emails(email_ids):
    return services.emails_send(email_ids)


@shared_task(name="gifts.send_due_emails", ignore_result=True)
def send_due_emails():
    return services.send_due_emails()
