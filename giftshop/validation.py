"""Checks on user text that ends up in emails, run when it is received (never first inside a Celery task)."""

from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from giftshop.errors import ServiceError


def plain_text(value, *, field, max_length):
    """Bounded text free of control characters (line breaks and tabs allowed)."""
    value = value or ""
    if len(value) > max_length:
        raise ServiceError(f"Must be at most {max_length} characters.", field=field)
    if any((ord(ch) < 32 and ch not in "\n\t") or ch == "\x7f" for ch in value):
        raise ServiceError("Must not contain control characters.", field=field)
    return value


def single_line(value, *, field, max_length):
    """A name or similar: no line breaks at all (it may reach an email header)."""
    value = plain_text(value, field=field, max_length=max_length)
    if "\n" in value or "\t" in value:
        raise ServiceError("Must be a single line.", field=field)
    return value.strip()


def email_address(value, *, field):
    value = (value or "").strip()
    if not value or any(ord(ch) < 33 or ch == "\x7f" for ch in value):
        raise ServiceError("Enter a valid email address.", field=field)
    try:
        validate_email(value)
    except ValidationError:
        raise ServiceError("Enter a valid email address.", field=field) from None
    return value.lower()
