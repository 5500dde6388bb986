from django.apps import AppConfig


class EmailsConfig(AppConfig):
    """The outbox: every email the product sends, recorded once, sent after commit, retried, and told of bounces."""

    name = "emails"
    verbose_name = "Emails"

    def ready(self):
        from emails import receivers  # noqa: F401  connects the ESP tracking webhooks' receiver
