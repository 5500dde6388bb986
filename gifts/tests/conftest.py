"""Fixtures shared with other apps' tests, defined once in their helper modules and offered to this folder here."""

from accounts.tests.web import customer  # noqa: F401
from emails.tests.mailgun import delivered, gifter, mailgun  # noqa: F401
from gifts.tests.browsers import browser_of, snap  # noqa: F401
from gifts.tests.designs import builtin_designs  # noqa: F401
from gifts.tests.gift_admin import staff_client, support_user  # noqa: F401
