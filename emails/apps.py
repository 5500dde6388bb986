from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class EmailsConfig(AppConfig):
    """The outbox: every email the product sends, recorded once, sent after commit, retried, and told of bounces."""

    name = "emails"
    verbose_name = _("Emails")

    def ready(self):
        from emails import receivers  # noqa: F401  connects the ESP tracking webhooks' receiver
