from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class GiftshopConfig(AppConfig):
    """The shared plumbing below every app: site settings, merchant API keys and idempotency, merchant events and
    their webhooks."""

    name = "giftshop"
    verbose_name = _("Site")
