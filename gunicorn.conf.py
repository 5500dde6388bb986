"""gunicorn's settings for every way it is started here (Procfile, bench, tests): gunicorn reads this file from the
working directory. Its access and error logs mask gift codes and link tokens, as Django's and Celery's logs do, and
follow LOG_FORMAT (json: one object per line); each access line carries the request's X-Request-ID."""

import os

from django.conf import settings as _settings
from gunicorn.glogging import Logger

from giftshop import logs as _logs  # not `bind`: every top-level name here is a gunicorn setting

# Metrics (giftshop/metrics.py): the settings set PROMETHEUS_MULTIPROC_DIR, which prometheus_client reads when it is
# imported. So the master reads them first and only then imports it: the workers it forks inherit it, and record into
# files that /metrics adds up.
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "giftshop.settings")
_settings.METRICS_DIR  # noqa: B018 - reads the settings now
from giftshop import metrics as _metrics  # noqa: E402

_LOG_FORMAT = os.environ.get("LOG_FORMAT", "plain")
# The plain access line: gunicorn's usual one plus the request id the app answered with.
access_log_format = '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s" %({x-request-id}o)s %(M)sms'


class ContextLogger(Logger):
    def setup(self, cfg):
        super().setup(cfg)
        _logs.configure_handlers(self.access_log, _LOG_FORMAT)
        _logs.configure_handlers(self.error_log, _LOG_FORMAT)

    def access(self, resp, req, environ, request_time):
        request_id = next((value for name, value in resp.headers if name.lower() == "x-request-id"), None)
        with _logs.bind(request_id=request_id):
            super().access(resp, req, environ, request_time)


logger_class = ContextLogger


def on_starting(server):
    # This process group starts: the metric files of the processes of an earlier one go.
    _metrics.forget_dead_processes()


def child_exit(server, worker):
    _metrics.process_exited(worker.pid)
