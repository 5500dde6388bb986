from django.apps import AppConfig


class GiftsConfig(AppConfig):
    """Gifts: purchase, delivery, edit, verification, redemption, expiry and cancellation of gift subscriptions."""

    name = "gifts"
    verbose_name = "Gifts"
