import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "giftshop.settings")

app = Celery("giftshop")
# Every CELERY_* Django setting configures Celery (see settings.py); tasks live in each app's tasks.py.
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.task(name="giftshop.ping")
def ping():
    """Answers from a worker: used by the smoke test and `manage.py ping_worker` to prove tasks run."""
    return "pong"
