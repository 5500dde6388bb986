from decimal import Decimal

import factory

from offers.models import Addon, Coupon, Offer


class OfferFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Offer

    short_id = factory.Sequence(lambda n: f"S{200_000_000 + n}")
    title = factory.Sequence(lambda n: f"Premium plan {n}")
    period = "month"
    price = Decimal("9.99")
    currency = "USD"
    active = True
    giftable = True
    tags = factory.LazyFunction(lambda: ["premium"])


class AddonFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Addon

    code = factory.Sequence(lambda n: f"addon-{n}")
    name = factory.Sequence(lambda n: f"Add-on {n}")
    price = Decimal("2.50")
    currency = "USD"


class CouponFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Coupon

    code = factory.Sequence(lambda n: f"GIFT{n}")
    name = factory.Sequence(lambda n: f"Coupon {n}")
    discount_type = "percent"
    percent_off = Decimal("10")
