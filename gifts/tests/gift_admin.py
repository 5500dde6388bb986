"""Helpers for tests of the gift admin's actions (support's, and billing's cancel with its refund): a support user
logged in to the test's client, an action run from the changelist, what it showed and the log entries it left."""

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.urls import reverse

from accounts.tests.factories import CustomerFactory
from gifts.models import Gift

CHANGELIST = "admin:gifts_gift_changelist"


@pytest.fixture
def support_user():
    return CustomerFactory(is_staff=True, is_superuser=True)


@pytest.fixture
def staff_client(client, support_user):
    client.force_login(support_user)
    return client


def act(client, action, gifts, *, follow=True, **fields):
    """Runs an admin action on the gifts, as the changelist's action form posts it."""
    data = {"action": action, "_selected_action": [gift.pk for gift in gifts], **fields}
    return client.post(reverse(CHANGELIST), data, follow=follow)


def shown(response):
    return [str(message) for message in response.context["messages"]]


def log_entries(gift):
    return LogEntry.objects.filter(content_type=ContentType.objects.get_for_model(Gift), object_id=str(gift.pk))
