from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class BillingConfig(AppConfig):
    """Everything that moves money: checkout (orders and their prices), payments and refunds through the gateway,
    invoices, the merchant API's gift sales, subscription renewals and saved cards."""

    name = "billing"
    verbose_name = _("Billing")

    def ready(self):
        from billing import receivers  # noqa: F401  connects billing's receivers of gift events
