"""The site's settings: one row, edited in admin."""

import pytest
from django.db import IntegrityError
from django.urls import reverse

from accounts.tests.factories import CustomerFactory
from giftshop.models import SiteSettings

pytestmark = pytest.mark.django_db


def test_site_settings_are_one_row():
    assert SiteSettings.load().pk == SiteSettings.load().pk == 1
    with pytest.raises(IntegrityError):
        SiteSettings.objects.create(pk=2)


def test_the_site_settings_admin_list_leads_to_the_one_row(client):
    client.force_login(CustomerFactory(is_staff=True, is_superuser=True))
    response = client.get(reverse("admin:giftshop_sitesettings_changelist"))
    assert response.status_code == 302
    assert client.get(response.url).status_code == 200
