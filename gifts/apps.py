from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class GiftsConfig(AppConfig):
    """Gifts: purchase, delivery, edit, verification, redemption, expiry and cancellation of gift subscriptions."""

    name = "gifts"
    verbose_name = _("Gifts")

    def ready(self):
        from django.core.checks import register

        from gifts import checks

        register(checks.certificates_can_render)
