from django.apps import AppConfig


class GiftsConfig(AppConfig):
    """Gifts: purchase, delivery, edit, verification, redemption, expiry and cancellation of gift subscriptions."""

    name = "gifts"
    verbose_name = "Gifts"

    def ready(self):
        from gifts import bounces  # noqa: F401  connects the ESP tracking webhooks' receiver
