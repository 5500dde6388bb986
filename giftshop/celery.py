import logging
import os

from celery import Celery
from celery.signals import (
    after_setup_logger,
    after_setup_task_logger,
    before_task_publish,
    task_postrun,
    task_prerun,
    worker_init,
)
from django.conf import settings
from django.utils.module_loading import import_string

from giftshop import tracing
from giftshop.logs import configure_handlers

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "giftshop.settings")

app = Celery("giftshop")
# Every CELERY_* Django setting configures Celery (see settings.py); tasks live in each app's tasks.py.
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.task(name="giftshop.ping")
def ping():
    """Answers from a worker: used by the smoke test and `manage.py ping_worker` to prove tasks run."""
    return "pong"


@after_setup_logger.connect
@after_setup_task_logger.connect
def _configure_worker_logs(logger, **kwargs):
    # A worker or beat replaces the handlers Django's LOGGING made with its own: they mask codes and tokens too,
    # carry the request id, and write JSON lines when LOG_FORMAT=json.
    configure_handlers(logger, settings.LOG_FORMAT)
    configure_handlers(logging.getLogger(), settings.LOG_FORMAT)


# A request's id travels in the headers of the tasks it enqueues, and a task's lines carry it (giftshop/tracing.py).
before_task_publish.connect(tracing.task_published, weak=False)
task_prerun.connect(tracing.task_started, weak=False)
task_postrun.connect(tracing.task_ended, weak=False)

# Metrics (giftshop/metrics.py): a worker's main process forgets the metric files of dead processes and serves its
# pool's metrics on CELERY_METRICS_PORT. By dotted path: this module is imported before the settings are read, and
# prometheus_client may be imported only after them (they set PROMETHEUS_MULTIPROC_DIR, which it reads at import).
worker_init.connect(lambda **kwargs: import_string("giftshop.metrics.worker_started")(), weak=False)


def broker_reachable():
    """A readiness check (settings.HEALTH_CHECKS): the broker accepts a connection; without one, nothing is
    delivered or sent."""
    with app.connection_for_write() as connection:
        connection.ensure_connection(max_retries=1, timeout=2)
    return True, "answers"
