from django.apps import AppConfig


class BillingConfig(AppConfig):
    """Checkout and billing: orders and their prices, payments through the gateway, and invoices."""

    name = "billing"
    verbose_name = "Billing"
