from django.apps import AppConfig


class AccountsConfig(AppConfig):
    """People and what they hold: customers, payment methods, subscriptions and the transaction ledger."""

    name = "accounts"
    verbose_name = "Accounts"
