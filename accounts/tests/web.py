"""Helpers for tests of the account's web pages (the account app's, the gifts given, the saved cards): a customer
logged in to the test's client, in a time zone of their own, and a page's HTML."""

import pytest

from accounts.tests.factories import CustomerFactory


@pytest.fixture
def customer(client):
    customer = CustomerFactory(time_zone="America/New_York")
    client.force_login(customer)
    return customer


def page(client, url):
    response = client.get(url)
    assert response.status_code == 200, response
    return response.content.decode()
