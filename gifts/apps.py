from django.apps import AppConfig


class GiftsConfig(AppConfig):
    """Gifts: purchase, delivery, edit, verification, redemption, expiry and cancellation of gift subscriptions."""

    name = "gifts"
    verbose_name = "Gifts"

    def ready(self):
        from django.core.checks import register

        from gifts import checks

        register(checks.certificates_can_render)
