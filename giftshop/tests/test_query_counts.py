"""Every list endpoint and page issues the same number of queries whatever the number of rows it shows (no N+1):
each is measured with 3 rows of everything, then again with 30."""

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from accounts.models import Customer
from accounts.tests.factories import CustomerFactory
from gifts import services
from gifts.tests.factories import GuestFactory
from gifts.tests.merchant import MerchantClient, gift_params, gifter_with_card
from giftshop.tests.mediastore import client_for
from offers.tests.factories import OfferFactory

pytestmark = pytest.mark.django_db


class World:
    """A gifter who bought gifts over the merchant API, a receiver who claimed them (one subscription per offer),
    and as many offers and customers besides."""

    def __init__(self):
        self.api = MerchantClient()
        self.gifter = gifter_with_card()
        self.gifter.set_password("a-long-Passw0rd!")
        self.gifter.save(update_fields=["password"])
        self.receiver = CustomerFactory(email="receiver@example.com")
        self.admin = Customer.objects.create_superuser("admin@example.com", "a-long-Passw0rd!")
        self.size = 0

    def grow_to(self, size):
        for _ in range(size - self.size):
            offer = OfferFactory()
            GuestFactory()
            created = self.api.post(
                "gifts", gift_params(self.gifter, offer, **{"gift_receiver[email]": self.receiver.email})
            )
            assert created.status_code == 200, created.content
            gift_id = created.json()["gift"]["id"]
            services.deliver_due_gifts()
            claimed = self.api.post(f"gifts/{gift_id}/claim")
            assert claimed.status_code == 200, claimed.content
        self.size = size

    def clients(self):
        web = {}
        for name, customer in (("gifter", self.gifter), ("receiver", self.receiver), ("admin", self.admin)):
            web[name] = Client()
            web[name].force_login(customer)
        return {
            "gifter-api": client_for(self.gifter),
            "receiver-api": client_for(self.receiver),
            "anonymous": Client(),
            **web,
        }


def pages(world):
    merchant = [(None, f"/api/v2/{name}") for name in ("gifts", "customers", "subscriptions", "invoices", "events")]
    return [
        ("gifter-api", f"/mediastore/customers/{world.gifter.pk}/transactions"),
        ("receiver-api", f"/mediastore/customers/{world.receiver.pk}/subscriptions"),
        ("receiver-api", f"/mediastore/customers/{world.receiver.pk}/offers"),
        *merchant,
        (None, "/api/v2/plans"),
        ("anonymous", "/"),
        ("gifter", "/account/gifts/"),
        ("gifter", "/account/transactions/"),
        ("receiver", "/account/subscriptions/"),
        ("admin", "/admin/gifts/gift/"),
    ]


def count_queries(world, clients):
    counts = {}
    for who, path in pages(world):
        with CaptureQueriesContext(connection) as queries:
            if who is None:
                response = world.api.get(path.removeprefix("/api/v2/"), {"limit": 100})
            else:
                response = clients[who].get(path, {"limit": 100} if path.startswith("/mediastore/") else {})
        assert response.status_code == 200, (path, response.status_code, response.content[:500])
        if who is None:  # the merchant lists: every row of this size is on the page
            assert len(response.json()["list"]) >= world.size, path
        else:
            shown = min(world.size, 10)  # the web pages show 10 or more rows a page
            assert response.content.count(b"Premium plan") >= shown or path.startswith("/admin/"), path
        counts[path] = len(queries)
    return counts


def test_list_endpoints_and_pages_issue_a_constant_number_of_queries():
    world = World()
    world.grow_to(3)
    few = count_queries(world, world.clients())
    world.grow_to(30)
    many = count_queries(world, world.clients())
    assert many == few
    assert min(few.values()) > 0
