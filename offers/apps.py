from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class OffersConfig(AppConfig):
    """The catalogue: the offers (plans) on sale, their add-ons and the coupons that discount them."""

    name = "offers"
    verbose_name = _("Catalogue")
