"""The outbox's one model: a row per logical email, which the apps write and emails/services.py sends."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class Email(models.Model):
    """The outbox: one row per logical email, written in the transaction that makes the email due, sent after
    commit by a worker. `key` makes each email exist once (e.g. `gift:12:delivery`)."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        SENDING = "sending", _("Sending")
        SENT = "sent", _("Sent")
        FAILED = "failed", _("Failed")
        BOUNCED = "bounced", _("Bounced")

    # The kinds are registered in settings.EMAIL_KINDS, each by the app that renders it; `Email.Kind.GIFT_DELIVERY`
    # is "gift_delivery".
    Kind = models.TextChoices(
        "Kind", [(kind.upper(), (kind, spec["label"])) for kind, spec in settings.EMAIL_KINDS.items()]
    )

    key = models.CharField(max_length=120, unique=True)
    kind = models.CharField(max_length=30, choices=Kind.choices)
    to_email = models.EmailField()
    gift = models.ForeignKey("gifts.Gift", null=True, blank=True, on_delete=models.CASCADE, related_name="emails")
    order = models.ForeignKey("billing.Order", null=True, blank=True, on_delete=models.CASCADE, related_name="emails")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    sending_started_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    provider_message_id = models.CharField(max_length=200, blank=True)
    # The provider's tracking events (anymail's tracking webhooks), each the first time it was reported.
    delivered_at = models.DateTimeField(null=True, blank=True, help_text=_("The recipient's server accepted it."))
    opened_at = models.DateTimeField(null=True, blank=True)
    clicked_at = models.DateTimeField(null=True, blank=True)
    complained_at = models.DateTimeField(null=True, blank=True, help_text=_("Marked as spam by its recipient."))
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "gifts_email"  # the table it had as part of the gifts app
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["next_attempt_at"], condition=Q(status="pending"), name="email_due_idx"),
            models.Index(fields=["sending_started_at"], condition=Q(status="sending"), name="email_sending_idx"),
            # The bounce webhooks' look-up, for ESPs that do not echo our metadata (services.email_bounced).
            models.Index(
                fields=["provider_message_id"], condition=~Q(provider_message_id=""), name="email_provider_id_idx"
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=["pending", "sending", "sent", "failed", "bounced"]), name="email_status_valid"
            ),
            models.CheckConstraint(condition=~Q(status="sent") | Q(sent_at__isnull=False), name="email_sent_has_time"),
        ]

    def __str__(self):
        return self.key
