"""Thin Celery entry points: they take ids (never model instances) and call a service."""

from celery import shared_task

from gifts import bulk, reminders, retention, services


@shared_task(name="gifts.deliver_due_gifts", ignore_result=True)
def deliver_due_gifts():
    return services.delivery_sweep()


@shared_task(name="gifts.expire_due_gifts", ignore_result=True)
def expire_due_gifts():
    return services.expire_due_gifts()


@shared_task(name="gifts.start_due_subscriptions", ignore_result=True)
def start_due_subscriptions():
    return services.subscriptions_start_due()


@shared_task(name="gifts.send_reminders", ignore_result=True)
def send_reminders():
    return reminders.send_reminders()


@shared_task(name="gifts.remove_ended_gift_details", ignore_result=True)
def remove_ended_gift_details():
    return retention.gift_details_remove_ended()


# --- bulk gift lists (issue 18) ---
# A run stops between batches after this many seconds, well inside the task's time limit, and queues the next run.
BULK_TASK_BUDGET = 60


@shared_task(name="gifts.bulk_gifts_create", ignore_result=True)
def bulk_gifts_create(list_id):
    """Makes a paid list's gifts. Safe to run twice or after a crash (acks_late redelivers it): rows that have their
    gift are skipped."""
    made, done = bulk.bulk_gifts_create(list_id=list_id, budget=BULK_TASK_BUDGET)
    if made and not done:  # out of time; with nothing made, another run holds the rows and finishes the list
        bulk_gifts_create.delay(list_id)
