"""One request's story across processes: a request id given to every web request (the caller's `X-Request-ID` when
it is a sane one, else a new one), put on every log line the request causes, sent back in the response, and carried
in the headers of every Celery task the request enqueues, so the worker's lines about it carry the same id. A task
that no request enqueued (beat's sweeps) gets its own id, which the tasks it enqueues inherit in turn.

The ids live in a context variable: each thread (gunicorn's gthread workers, the senders' pool) and each task run
has its own. Log records get them from `ContextFilter` (giftshop/logs.py), which both formatters use."""

import re
import uuid

from giftshop.logs import bind, current

HEADER = "X-Request-ID"
# The Celery message header that carries it (a name of our own: Celery merges headers into the task's request).
TASK_HEADER = "giftshop_request_id"
# What a caller's id may look like: a load balancer's or another service's (uuid, hex, ULID, "Root=1-…" of AWS),
# never free text that could forge log lines.
_SANE = re.compile(r"^[A-Za-z0-9._:=+/-]{8,128}$")


def new_id():
    return uuid.uuid4().hex


class RequestIdMiddleware:
    """Gives the request its id (request.request_id), binds it for the request's log lines and answers it in the
    response's X-Request-ID header (support asks a customer for it; gunicorn's access line carries it)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        given = request.headers.get(HEADER, "")
        request.request_id = given if _SANE.match(given) else new_id()
        with bind(request_id=request.request_id):
            response = self.get_response(request)
        response[HEADER] = request.request_id
        return response


# --- Celery's signals (connected in giftshop/celery.py) -------------------------------------------------------


def task_published(headers=None, **kwargs):
    """before_task_publish: the publishing request's (or task's) id goes into the message's headers."""
    request_id = current().get("request_id")
    if headers is not None and request_id and TASK_HEADER not in headers:
        headers[TASK_HEADER] = request_id


_task_contexts = {}


def task_started(task_id=None, task=None, **kwargs):
    """task_prerun: the task's lines carry the id it was published with, or a new one (beat's tasks)."""
    request = task.request if task is not None else None
    # A worker merges a message's headers into the task's request; Task.apply() (eager runs) keeps them apart.
    request_id = getattr(request, TASK_HEADER, None) or (getattr(request, "headers", None) or {}).get(TASK_HEADER)
    if not (request_id and _SANE.match(str(request_id))):
        request_id = new_id()
    context = bind(request_id=request_id, task=getattr(task, "name", None), task_id=task_id)
    context.__enter__()
    _task_contexts[task_id] = context


def task_ended(task_id=None, **kwargs):
    """task_postrun: the id is dropped, so the next task run on this process does not inherit it."""
    context = _task_contexts.pop(task_id, None)
    if context is not None:
        context.__exit__(None, None, None)
