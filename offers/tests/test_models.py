from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.db import IntegrityError

from offers.models import Coupon, Offer, normalize_tags, parse_offer_id
from offers.tests.factories import CouponFactory, OfferFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("period", ["week", "season"])
def test_a_weekly_or_season_offer_can_never_be_giftable_in_the_database(period):
    with pytest.raises(IntegrityError, match="offer_giftable_period"):
        OfferFactory(period=period, giftable=True)


@pytest.mark.parametrize("period", ["month", "3months", "6months", "year"])
def test_monthly_to_yearly_offers_can_be_giftable(period):
    assert OfferFactory(period=period, giftable=True).giftable


def test_an_unknown_period_is_refused_by_the_database():
    with pytest.raises(IntegrityError, match="offer_period_valid"):
        OfferFactory(period="fortnight", giftable=False)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("S123456789", "S123456789"),
        ("S123456789_US", "S123456789"),
        (" S123456789_PL ", "S123456789"),
        ("S12345678", None),
        ("X123456789", None),
        ("S123456789_usa", None),
        ("", None),
        (None, None),
    ],
)
def test_it_parses_short_and_long_offer_ids(value, expected):
    assert parse_offer_id(value) == expected


def test_the_long_id_carries_the_country_suffix():
    assert OfferFactory(short_id="S123456789", country="US").long_id == "S123456789_US"
    assert OfferFactory(short_id="S123456780", country="").long_id == "S123456780"


def test_tags_compare_as_sets():
    assert normalize_tags(" Premium, sports,premium ,") == ["premium", "sports"]
    a = OfferFactory(tags=["sports", "premium"])
    b = OfferFactory(tags=["premium", "sports"])
    c = OfferFactory(tags=["premium"])
    assert a.gives_same_access_as(b)
    assert not a.gives_same_access_as(c)


def test_a_new_offer_gets_a_cleeng_shaped_id():
    offer = Offer.objects.create(title="T", period="month", price=Decimal("1.00"), currency="EUR")
    assert parse_offer_id(offer.short_id) == offer.short_id


def test_term_end_adds_one_period_in_calendar_months():
    start = datetime(2026, 1, 31, 12, tzinfo=UTC)
    assert OfferFactory(period="month").term_end(start) == datetime(2026, 2, 28, 12, tzinfo=UTC)
    assert OfferFactory(period="year").term_end(start) == datetime(2027, 1, 31, 12, tzinfo=UTC)
    assert OfferFactory(period="3months").term_end(start) == datetime(2026, 4, 30, 12, tzinfo=UTC)


def test_a_percent_coupon_discounts_with_rounding_half_up():
    coupon = CouponFactory(percent_off=Decimal("15"))
    assert coupon.discount_on(Decimal("9.99"), "USD") == Decimal("1.50")


def test_a_fixed_coupon_never_discounts_more_than_the_price_or_another_currency():
    coupon = CouponFactory(discount_type="fixed", percent_off=None, amount_off=Decimal("20.00"), currency="USD")
    assert coupon.discount_on(Decimal("9.99"), "USD") == Decimal("9.99")
    assert coupon.discount_on(Decimal("9.99"), "EUR") == Decimal("0.00")


def test_a_coupon_is_valid_inside_its_window_and_below_its_max():
    coupon = CouponFactory(
        valid_from=datetime(2026, 1, 1, tzinfo=UTC), valid_until=datetime(2026, 2, 1, tzinfo=UTC), max_redemptions=1
    )
    assert coupon.is_valid_at(datetime(2026, 1, 15, tzinfo=UTC))
    assert not coupon.is_valid_at(datetime(2026, 2, 1, tzinfo=UTC))
    Coupon.objects.filter(pk=coupon.pk).update(redemptions=1)
    coupon.refresh_from_db()
    assert not coupon.is_valid_at(datetime(2026, 1, 15, tzinfo=UTC))


def test_a_coupon_whose_discount_does_not_match_its_type_is_refused():
    with pytest.raises(IntegrityError, match="coupon_discount_matches_type"):
        CouponFactory(discount_type="percent", percent_off=Decimal("120"))


def test_coupon_codes_are_unique_ignoring_case():
    CouponFactory(code="WELCOME")
    with pytest.raises(IntegrityError):
        CouponFactory(code="welcome")
