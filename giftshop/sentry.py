"""Error reporting to Sentry (or a Sentry-compatible service such as GlitchTip), on when SENTRY_DSN is set: the
Django and Celery integrations report unhandled errors of web requests and tasks, and error log lines.

Nothing secret leaves: no default PII (sentry-sdk's default), no local variables of the frames, and every event and
breadcrumb is scrubbed before it is sent. Fields named like a code, token, password, card detail, note or address are
replaced by sentry's "[Filtered]" wherever they are in the event; what was typed into them is masked wherever else
it shows up; and every string has gift codes, link tokens and card numbers masked (codes in a URL as the logs mask
them, giftshop/logs.py; a bare `XXXX-XXXX` too)."""

import re

import sentry_sdk
from sentry_sdk.integrations.celery import CeleryIntegration
from sentry_sdk.integrations.django import DjangoIntegration
from sentry_sdk.integrations.logging import LoggingIntegration
from sentry_sdk.scrubber import DEFAULT_DENYLIST, EventScrubber

from giftshop.logs import MASK, redact

# Field names (form fields, JSON keys, headers, query parameters) whose values are never sent.
DENYLIST = [
    *DEFAULT_DENYLIST,
    # codes and link tokens
    "code",
    "giftcode",
    "gift_code",
    "t",
    "link_token",
    "refresh_token",
    "refreshtoken",
    "jwt",
    "access_token",
    # card data
    "card_number",
    "cardnumber",
    "number",
    "cvc",
    "cvv",
    "exp_month",
    "exp_year",
    "payment_method",
    # what people wrote and who they are
    "note",
    "personal_note",
    "personalnote",
    "message",
    "signature",
    "email",
    "recipient_email",
    "recipient_email_again",
    "recipientemail",
    "first_name",
    "last_name",
    "recipient_first_name",
    "recipient_last_name",
    "password1",
    "password2",
    "old_password",
    "new_password1",
    "new_password2",
]

# A gift code anywhere in free text (an exception's message, say), with or without its dash.
_BARE_CODE = re.compile(r"(?i)\b[0-9A-Z]{4}-?[0-9A-Z]{4}\b(?=[^@]|$)")
# A card number: 13 to 19 digits, with or without spaces or dashes between groups.
_CARD = re.compile(r"\b(?:\d[ -]?){12,18}\d\b")
_CODE_SHAPED = re.compile(r"(?=.*\d)(?=.*[A-Za-z])")  # codes mix digits and letters; plain words do not


def _mask_bare_code(match):
    text = match.group(0)
    return f"{MASK}-{text[-4:].upper()}" if _CODE_SHAPED.match(text) else text


def scrub_text(text):
    """`text` with gift codes, link tokens and card numbers masked."""
    text = redact(text)
    text = _CARD.sub(MASK, text)
    return _BARE_CODE.sub(_mask_bare_code, text)


def _scrub(value, typed=()):
    if isinstance(value, str):
        for secret in typed:
            value = value.replace(secret, MASK)
        return scrub_text(value)
    if isinstance(value, dict):
        return {key: _scrub(item, typed) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_scrub(item, typed) for item in value]
    return value


class Scrubber(EventScrubber):
    """sentry-sdk's scrubber (denied fields filtered wherever they are), and then what was typed into a denied field
    of the request (a note, a card number) masked wherever else it shows up: an exception's message, a log line."""

    def scrub_event(self, event):
        data = (event.get("request") or {}).get("data")
        typed = []
        if isinstance(data, dict):
            denied = {name.lower() for name in self.denylist}
            typed = [v for k, v in data.items() if k.lower() in denied and isinstance(v, str) and len(v) >= 4]
        super().scrub_event(event)
        if typed:
            event.update(_scrub(dict(event), sorted(typed, key=len, reverse=True)))


def before_send(event, hint):
    """Every string of the event masked (after the scrubber has filtered the denied fields)."""
    return _scrub(event)


def before_breadcrumb(crumb, hint):
    return _scrub(crumb)


def init(dsn, *, environment="", release="", traces_sample_rate=0.0, transport=None):
    """Turns error reporting on (settings.py calls it when SENTRY_DSN is set)."""
    sentry_sdk.init(
        dsn=dsn,
        environment=environment or None,
        release=release or None,
        integrations=[DjangoIntegration(), CeleryIntegration(), LoggingIntegration()],
        include_local_variables=False,
        max_request_body_size="small",
        event_scrubber=Scrubber(denylist=DENYLIST, recursive=True),
        before_send=before_send,
        before_breadcrumb=before_breadcrumb,
        traces_sample_rate=traces_sample_rate,
        transport=transport,
    )
