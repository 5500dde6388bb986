from django.apps import AppConfig


class OffersConfig(AppConfig):
    """The catalogue: the offers (plans) on sale, their add-ons and the coupons that discount them."""

    name = "offers"
    verbose_name = "Catalogue"
