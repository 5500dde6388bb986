"""Gift codes and link tokens never reach a log: one redaction used by the logging filter of every handler the
product configures (Django's, Celery's) and by gunicorn's access log (gunicorn.conf.py).

A code in a log line is a gift anyone with log access can redeem, so codes keep only their last four characters
(`••••-7QX2`, enough for support to match a customer's complaint) and link tokens nothing. Imports nothing from
Django: gunicorn's master process loads it before any app is set up.

It also gives every line its context: the request id (giftshop/tracing.py) and the gift id where there is one
(`extra={"gift_id": …}` on the call, or `bind(gift_id=…)` around a block), as fields of the JSON lines
(LOG_FORMAT=json) and as a `[request id]` at the end of the plain ones."""

import contextvars
import logging
import re
from contextlib import contextmanager

from pythonjsonlogger.json import JsonFormatter as _JsonFormatter

MASK = "••••"

# Where a code or token travels: the redeem page's query (`giftCode`, `t`, and percent-encoded forms), Stripe's
# return address, and the storefront paths that take a code (`/gifts/verification/<code>`, `/gifts/redeem/<code>`).
_QUERY = re.compile(
    r"(?i)(?P<name>(?:[?&]|&amp;)(?:giftCode|code|t|token|payment_intent_client_secret|setup_intent_client_secret)=)"
    r"(?P<value>[^&\s\"'#]*)"
)
_PATH = re.compile(r"(?i)(?P<name>/gifts/(?:verification|redeem)/)(?P<value>[^/?\s\"'#]+)")
# Stripe sends the browser back with the PaymentIntent's client secret in the query (billing/stripe_views.py): with
# the publishable key it reads the payment, so it goes whole, like a link token.
_TOKENS = {"t=", "token=", "payment_intent_client_secret=", "setup_intent_client_secret="}
# The admin's search box: a whole code typed there (gifts are found by its keyed hash) is masked too.
_SEARCH = re.compile(r"(?i)(?P<name>[?&]q=)(?P<value>[^&\s\"'#]*)")
_CODE_SHAPED = re.compile(r"(?i)^[0-9A-Z]{8}$")
# A code written out as the gifter and the email show it (XXXX-XXXX, gifts.codes' alphabet: no I, L, O or U), wherever
# it stands: an exception's text, a message that quotes what was typed.
# Not inside a longer dashed run (a card number's groups, an id's segments).
_FORMATTED_CODE = re.compile(r"(?<![\w-])[0-9A-HJKMNP-TV-Z]{4}-(?P<last4>[0-9A-HJKMNP-TV-Z]{4})(?![\w-])")


def _mask(value):
    raw = re.sub(r"(?i)%[0-9a-f]{2}|[\s\-_+]", "", value)
    return f"{MASK}-{raw[-4:].upper()}" if len(raw) > 4 else MASK


def redact(text):
    """`text` with every gift code and link token in it masked."""
    if not text:
        return text
    text = _FORMATTED_CODE.sub(lambda match: f"{MASK}-{match.group('last4')}", text)
    if "/gifts/" not in text and "=" not in text:
        return text

    def query(match):
        name = match.group("name")
        masked = MASK if re.split(r"[?&;]", name)[-1].lower() in _TOKENS else _mask(match.group("value"))
        return f"{name}{masked}"

    def search(match):
        raw = re.sub(r"(?i)%[0-9a-f]{2}|[\s\-_+]", "", match.group("value"))
        return f"{match.group('name')}{_mask(match.group('value'))}" if _CODE_SHAPED.match(raw) else match.group(0)

    text = _SEARCH.sub(search, _QUERY.sub(query, text))
    return _PATH.sub(lambda match: f"{match.group('name')}{_mask(match.group('value'))}", text)


class RedactSecrets(logging.Filter):
    """Masks codes and tokens in a record's message and its exception text; attach it to handlers, so it sees the
    records of every logger (Django's `Not Found: /mediastore/gifts/redeem/…` warnings included)."""

    def filter(self, record):
        message = record.getMessage()
        redacted = redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        if record.exc_info and not record.exc_text:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        elif record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


# --- context: which request (and gift) a line is about -----------------------------------------------------------

_context = contextvars.ContextVar("giftshop_log_context", default=None)
CONTEXT_FIELDS = ("request_id", "gift_id", "task", "task_id")


def current():
    """The context bound now: {"request_id": …, "gift_id": …} as far as known."""
    return _context.get() or {}


@contextmanager
def bind(**fields):
    """Adds `fields` to the context of every line logged inside the block (in this thread or task run)."""
    token = _context.set({**current(), **{k: v for k, v in fields.items() if v is not None}})
    try:
        yield
    finally:
        _context.reset(token)


class ContextFilter(logging.Filter):
    """Puts the bound request id and gift id on the record (a gift id given in `extra` wins), for the formatters."""

    def filter(self, record):
        context = current()
        for field in CONTEXT_FIELDS:
            if getattr(record, field, None) is None and context.get(field) is not None:
                setattr(record, field, context[field])
        return True


class PlainFormatter(logging.Formatter):
    """The human format: time, level, logger, the message, then `[request id]` when there is one (last, so a line
    reads, and is grepped, as it always did)."""

    def format(self, record):
        request_id = getattr(record, "request_id", None)
        record.context = f" [{request_id}]" if request_id else ""
        return super().format(record)


PLAIN_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s%(context)s"


class JsonFormatter(_JsonFormatter):
    """One JSON object per line: timestamp (UTC, ISO 8601), level, logger, message, request_id and gift_id when
    known, any other `extra` fields, and the (redacted) traceback as `exc_info`."""

    def __init__(self, **kwargs):
        kwargs.setdefault("rename_fields", {"levelname": "level", "name": "logger"})
        kwargs.setdefault("timestamp", True)
        super().__init__("%(levelname)s %(name)s %(message)s", **kwargs)

    def process_log_record(self, log_data):
        return {key: value for key, value in log_data.items() if value is not None and key != "context"}

    def formatException(self, ei):
        return redact(super().formatException(ei))


def formatter(log_format):
    """The formatter for LOG_FORMAT ("plain" or "json")."""
    return JsonFormatter() if log_format == "json" else PlainFormatter(PLAIN_FORMAT)


def configure_handlers(logger, log_format):
    """Redaction and context on every handler of `logger`, and JSON lines if chosen (Celery and gunicorn build their
    own handlers, whose plain formats are kept; Django's are configured by settings.LOGGING)."""
    for handler in logger.handlers:
        if not any(isinstance(f, RedactSecrets) for f in handler.filters):
            handler.addFilter(RedactSecrets())
        if not any(isinstance(f, ContextFilter) for f in handler.filters):
            handler.addFilter(ContextFilter())
        if log_format == "json":
            handler.setFormatter(JsonFormatter())
