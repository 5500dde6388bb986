from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AccountsConfig(AppConfig):
    """People and what they hold: customers, payment methods, subscriptions and the transaction ledger."""

    name = "accounts"
    verbose_name = _("Accounts")
