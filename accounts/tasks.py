"""Thin Celery entry points: they take plain values and call a service."""

from celery import shared_task

from accounts import services


@shared_task(name="accounts.send_password_link", ignore_result=True)
def send_password_link(email):
    # An address, not a customer id: looking it up in the request would tell, by its time, that it has an account.
    services.password_link_send(email=email)
