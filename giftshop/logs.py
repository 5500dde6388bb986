"""Gift codes and link tokens never reach a log: one redaction used by the logging filter of every handler the
product configures (Django's, Celery's) and by gunicorn's access log (gunicorn.conf.py).

A code in a log line is a gift anyone with log access can redeem, so codes keep only their last four characters
(`••••-7QX2`, enough for support to match a customer's complaint) and link tokens nothing. Imports nothing from
Django: gunicorn's master process loads it before any app is set up."""

import logging
import re

MASK = "••••"

# Where a code or token travels: the redeem page's query (`giftCode`, `t`, and percent-encoded forms) and the
# storefront paths that take a code (`/gifts/verification/<code>`, `/gifts/redeem/<code>`).
_QUERY = re.compile(r"(?i)(?P<name>(?:[?&]|&amp;)(?:giftCode|code|t|token)=)(?P<value>[^&\s\"'#]*)")
_PATH = re.compile(r"(?i)(?P<name>/gifts/(?:verification|redeem)/)(?P<value>[^/?\s\"'#]+)")
_TOKENS = {"t=", "token="}
# The admin's search box: a whole code typed there (gifts are found by its keyed hash) is masked too.
_SEARCH = re.compile(r"(?i)(?P<name>[?&]q=)(?P<value>[^&\s\"'#]*)")
_CODE_SHAPED = re.compile(r"(?i)^[0-9A-Z]{8}$")


def _mask(value):
    raw = re.sub(r"(?i)%[0-9a-f]{2}|[\s\-_+]", "", value)
    return f"{MASK}-{raw[-4:].upper()}" if len(raw) > 4 else MASK


def redact(text):
    """`text` with every gift code and link token in it masked."""
    if not text or ("/gifts/" not in text and "=" not in text):
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


def redact_handlers(logger):
    """Puts the filter on every handler of `logger` (Celery builds its own handlers when a worker starts)."""
    for handler in logger.handlers:
        if not any(isinstance(f, RedactSecrets) for f in handler.filters):
            handler.addFilter(RedactSecrets())
