"""Checks on what clients send, run when it is received (never first inside a Celery task): user text that ends up
in emails, and the ids that name rows."""

import unicodedata

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from giftshop.errors import ServiceError


def plain_text(value, *, field, max_length):
    """Bounded text free of control characters (line breaks and tabs allowed)."""
    value = (value or "").replace("\r\n", "\n")  # browsers send textarea line breaks as CRLF
    if len(value) > max_length:
        raise ServiceError(
            ngettext("Must be at most %(count)d character.", "Must be at most %(count)d characters.", max_length)
            % {"count": max_length},
            field=field,
        )
    if any((ord(ch) < 32 and ch not in "\n\t") or ch == "\x7f" for ch in value):
        raise ServiceError(_("Must not contain control characters."), field=field)
    return value


def single_line(value, *, field, max_length):
    """A name or similar: no line breaks at all (it may reach an email header)."""
    value = plain_text(value, field=field, max_length=max_length)
    if "\n" in value or "\t" in value:
        raise ServiceError(_("Must be a single line."), field=field)
    return value.strip()


def email_address(value, *, field):
    value = (value or "").strip()
    # Control, format and separator characters (CR/LF, NUL, U+2028, U+202E…) could break or spoof a header.
    if not value or any(ch.isspace() or unicodedata.category(ch) in {"Cc", "Cf", "Zl", "Zp"} for ch in value):
        raise ServiceError(_("Enter a valid email address."), field=field)
    try:
        value.rpartition("@")[2].encode("idna")
    except UnicodeError:
        raise ServiceError(_("Enter a valid email address."), field=field) from None
    try:
        validate_email(value)
    except ValidationError:
        raise ServiceError(_("Enter a valid email address."), field=field) from None
    return value.lower()


# The largest primary key PostgreSQL's bigint holds: a longer number names no row (and must not reach the query,
# which would fail with "out of range" instead of finding nothing).
MAX_ROW_ID = 2**63 - 1


def row_id(value, *, prefix=""):
    """The row number that `value` (an id from a path or a parameter, after `prefix`) names, or None when it cannot
    name a row: not a number, or beyond bigint."""
    number = str(value).removeprefix(prefix)
    if not (number.isascii() and number.isdecimal()) or len(number) > 19:
        return None
    number = int(number)
    return number if 0 < number <= MAX_ROW_ID else None
