import pytest
from django.urls import reverse

from accounts.tests.factories import CustomerFactory
from offers.models import Offer, quantity_percent_off

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client):
    client.force_login(CustomerFactory(is_staff=True, is_superuser=True))
    return client


def _offer_form(**overrides):
    return {
        "short_id": "S300000001",
        "country": "",
        "title": "Weekly pass",
        "description": "",
        "period": "week",
        "price": "2.99",
        "currency": "USD",
        "active": "on",
        "tags": "premium, sports",
        "same_access_policy": "extend",
        "refund_window_days": "14",
        "start_later_days": "90",
        "claim_window_end": "expire",
        # The quantity tiers' inline (bulk gift lists): none.
        "quantity_tiers-TOTAL_FORMS": "0",
        "quantity_tiers-INITIAL_FORMS": "0",
        **overrides,
    }


def test_admin_refuses_a_giftable_weekly_offer_with_a_readable_message(admin_client):
    response = admin_client.post(reverse("admin:offers_offer_add"), _offer_form(giftable="on"))
    assert response.status_code == 200
    assert "A weekly offer cannot be sold as a gift." in response.content.decode()
    assert not Offer.objects.exists()


def test_admin_refuses_a_giftable_season_offer(admin_client):
    response = admin_client.post(reverse("admin:offers_offer_add"), _offer_form(period="season", giftable="on"))
    assert "A season offer cannot be sold as a gift." in response.content.decode()
    assert not Offer.objects.exists()


def test_admin_creates_a_giftable_monthly_offer_with_canonical_tags(admin_client):
    response = admin_client.post(
        reverse("admin:offers_offer_add"), _offer_form(period="month", giftable="on", tags="Sports, premium,sports")
    )
    assert response.status_code == 302
    offer = Offer.objects.get()
    assert offer.giftable and offer.tags == ["premium", "sports"]


def test_admin_sets_how_far_ahead_a_recipient_may_start(admin_client):
    response = admin_client.post(reverse("admin:offers_offer_add"), _offer_form(start_later_days="30"))
    assert response.status_code == 302
    assert Offer.objects.get().start_later_days == 30


def test_admin_lists_offers_and_searches_them(admin_client):
    Offer.objects.create(short_id="S300000002", title="Findable", period="month", price="1.00", currency="USD")
    response = admin_client.get(reverse("admin:offers_offer_changelist"), {"q": "Findable"})
    assert response.status_code == 200 and "Findable" in response.content.decode()


def test_the_offer_id_is_read_only_once_created(admin_client):
    offer = Offer.objects.create(short_id="S300000003", title="X", period="month", price="1.00", currency="USD")
    admin_client.post(
        reverse("admin:offers_offer_change", args=[offer.pk]), _offer_form(short_id="S399999999", period="month")
    )
    offer.refresh_from_db()
    assert offer.short_id == "S300000003"


def test_admin_sets_quantity_tiers_on_an_offer(admin_client):
    form = _offer_form(
        period="month",
        giftable="on",
        **{
            "quantity_tiers-TOTAL_FORMS": "2",
            "quantity_tiers-0-min_quantity": "10",
            "quantity_tiers-0-percent_off": "10",
            "quantity_tiers-1-min_quantity": "50",
            "quantity_tiers-1-percent_off": "20",
        },
    )
    response = admin_client.post(reverse("admin:offers_offer_add"), form)
    assert response.status_code == 302, response.content.decode()[:2000]
    offer = Offer.objects.get()
    assert [(t.min_quantity, t.percent_off) for t in offer.quantity_tiers.all()] == [(10, 10), (50, 20)]
    assert quantity_percent_off(offer, 9) == 0
    assert quantity_percent_off(offer, 49) == 10 and quantity_percent_off(offer, 50) == 20


def test_admin_refuses_a_tier_below_two_gifts(admin_client):
    form = _offer_form(
        period="month",
        giftable="on",
        **{
            "quantity_tiers-TOTAL_FORMS": "1",
            "quantity_tiers-0-min_quantity": "1",
            "quantity_tiers-0-percent_off": "10",
        },
    )
    response = admin_client.post(reverse("admin:offers_offer_add"), form)
    assert response.status_code == 200 and not Offer.objects.exists()
