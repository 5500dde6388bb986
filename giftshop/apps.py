from django.apps import AppConfig


class GiftshopConfig(AppConfig):
    """The shared plumbing below every app: site settings, merchant API keys and idempotency, merchant events and
    their webhooks."""

    name = "giftshop"
    verbose_name = "Site"
