"""Fixtures shared with other apps' tests, defined once in their helper modules and offered to this folder here."""

from emails.tests.mailgun import delivered, gifter, mailgun  # noqa: F401
