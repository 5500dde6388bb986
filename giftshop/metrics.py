"""Prometheus metrics: GET /metrics (a bearer token), the HTTP requests' counts and latencies, and the plumbing that
adds up what every process recorded.

Each app defines its own event counters in its `metrics.py` and registers its scrape-time gauges (read from the
database when Prometheus asks) in settings.METRICS_COLLECTORS, by dotted path: this plumbing imports none of them.

Every process of a machine records into files under settings.METRICS_DIR (prometheus_client's multiprocess mode:
the settings set PROMETHEUS_MULTIPROC_DIR, which prometheus_client reads when it is imported, so nothing may import
it before the settings are read). The web's /metrics adds up all gunicorn workers'; a Celery worker's main process
serves its pool's on CELERY_METRICS_PORT. Every metric has labels, so a process that records nothing (a management
command, beat) writes no file; files of processes that are gone are kept, so counters do not fall, until a process
group starts again (gunicorn.conf.py, the worker's start). With METRICS_DIR empty (the tests) each process has only
its own metrics."""

import hmac
import logging
import os
import time
from functools import cache

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpResponse
from django.utils.module_loading import import_string
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, multiprocess, start_http_server, values
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import choose_encoder

logger = logging.getLogger(__name__)

if settings.METRICS_DIR and not values.ValueClass._multiprocess:
    # Each process would report only its own counts, and /metrics whichever worker answered.
    raise ImproperlyConfigured(
        "prometheus_client was imported before the settings set PROMETHEUS_MULTIPROC_DIR: read the settings first."
    )

# Methods outside this set are counted as "other": a client picks the method, and each label value is a series.
METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}

HTTP_REQUESTS = Counter(
    "giftshop_http_requests",
    "HTTP requests answered, by method, view (URL name, never the path: paths carry gift codes) and status.",
    ["method", "view", "status"],
)
HTTP_LATENCY = Histogram(
    "giftshop_http_request_duration_seconds",
    "Time from the request reaching Django to its response, by method and view.",
    ["method", "view"],
)


def view_label(request):
    """The view a request reached, as its URL name (`gifts:redeem`), or the view's dotted path where the URL has no
    name; `<unmatched>` when no URL matched (a 404, or a redirect before routing). Never the path itself."""
    match = getattr(request, "resolver_match", None)
    return match.view_name if match is not None else "<unmatched>"


class RequestMetricsMiddleware:
    """Counts and times every request (first in MIDDLEWARE, so the time includes every other middleware)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        started = time.perf_counter()
        response = self.get_response(request)
        method = request.method if request.method in METHODS else "other"
        view = view_label(request)
        HTTP_LATENCY.labels(method, view).observe(time.perf_counter() - started)
        HTTP_REQUESTS.labels(method, view, str(response.status_code)).inc()
        return response


@cache
def _collector(path):
    return import_string(path)


class AppCollector:
    """The apps' scrape-time gauges (settings.METRICS_COLLECTORS): each function returns metric families read from
    the database now. One that fails (the database down) is reported by giftshop_metrics_collector_up = 0 and the
    others are still served."""

    def collect(self):
        up = GaugeMetricFamily(
            "giftshop_metrics_collector_up", "1 if the collector answered at this scrape, else 0.", labels=["collector"]
        )
        for name, path in settings.METRICS_COLLECTORS.items():
            try:
                families = list(_collector(path)())
            except Exception:
                logger.exception("metrics collector %s failed", name)
                up.add_metric([name], 0)
                continue
            up.add_metric([name], 1)
            yield from families
        yield up


class _Recorded:
    """What this machine's processes recorded: every process's files (multiprocess mode), else this process's."""

    def __init__(self, directory):
        self.directory = directory

    def collect(self):
        if self.directory:
            return multiprocess.MultiProcessCollector(None, path=self.directory).collect()
        return REGISTRY.collect()


def registry(*, apps=True):
    """A registry of what this machine recorded, plus (`apps`) the apps' gauges. Built per scrape: cheap, and it
    follows the settings."""
    built = CollectorRegistry(auto_describe=False)
    built.register(_Recorded(settings.METRICS_DIR))
    if apps:
        built.register(AppCollector())
    return built


@require_GET
@never_cache
def metrics(request):
    """Prometheus's scrape: 404 while METRICS_TOKEN is not set (the endpoint does not exist), 401 without it as a
    bearer token; the web machine's recorded metrics and the apps' gauges."""
    if not settings.METRICS_TOKEN:
        return HttpResponse(status=404)
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), settings.METRICS_TOKEN.encode()):
        return HttpResponse(status=401, headers={"WWW-Authenticate": 'Bearer realm="metrics"'})
    encoder, content_type = choose_encoder(request.headers.get("Accept", ""))  # OpenMetrics when Prometheus asks
    return HttpResponse(encoder(registry()), content_type=content_type)


# --- process groups ---------------------------------------------------------------------------------------------


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


def forget_dead_processes():
    """A process group starts (gunicorn's master, a Celery worker's main process): the files of processes that are
    gone go, so the counts start again, while those of processes still running (another group on this machine) stay.
    Returns the files removed."""
    if not settings.METRICS_DIR:
        return []
    removed = []
    for entry in os.scandir(settings.METRICS_DIR):
        pid = entry.name.removesuffix(".db").rpartition("_")[2]
        if entry.name.endswith(".db") and pid.isdigit() and not _alive(int(pid)):
            os.remove(entry.path)
            removed.append(entry.name)
    return removed


def process_exited(pid):
    """A worker process of the group ended (gunicorn's child_exit): its live gauges, if any, go; its counters stay."""
    if settings.METRICS_DIR:
        multiprocess.mark_process_dead(pid, settings.METRICS_DIR)


def worker_started():
    """A Celery worker's main process starts (giftshop/celery.py, worker_init): it forgets dead processes' files and
    serves its pool's metrics on CELERY_METRICS_PORT (0: not served). Without a token, as prometheus_client's server
    has none: keep the port on the private network. Only recorded metrics: the apps' gauges are the web's. Returns
    the server, or None."""
    forget_dead_processes()
    port = settings.CELERY_METRICS_PORT
    if not port:
        return None
    try:
        server, _thread = start_http_server(port, addr=settings.CELERY_METRICS_ADDR, registry=registry(apps=False))
    except OSError as error:  # another worker on this machine serves it already
        logger.warning("worker metrics not served on port %s: %s", port, error)
        return None
    logger.info("worker metrics served on %s:%s/metrics", settings.CELERY_METRICS_ADDR, port)
    return server
