"""The shop's front pages: the catalogue and an offer's page."""

import pytest
from django.urls import reverse

from offers.tests.factories import OfferFactory

pytestmark = pytest.mark.django_db


def test_the_catalogue_lists_active_offers_only(client):
    OfferFactory(title="On sale")
    OfferFactory(title="Withdrawn", active=False)
    body = client.get(reverse("billing:catalogue")).content.decode()
    assert "On sale" in body and "Withdrawn" not in body


def test_an_offer_page_answers_to_its_short_and_long_id(client):
    offer = OfferFactory(short_id="S123456789", country="US", title="Premium yearly", period="year")
    for offer_id in ("S123456789", "S123456789_US"):
        response = client.get(reverse("billing:offer_detail", args=[offer_id]))
        assert response.status_code == 200 and "Premium yearly" in response.content.decode()
    assert offer.giftable


def test_an_unknown_offer_is_404(client):
    assert client.get(reverse("billing:offer_detail", args=["S000000000"])).status_code == 404
    assert client.get(reverse("billing:offer_detail", args=["nonsense"])).status_code == 404
