"""The shared records every app may read: the site's settings, the merchant API's keys and idempotency records, and
the merchant events with their webhook deliveries. They keep the tables of the apps they were first written in."""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from giftshop import outbound
from giftshop.timezones import validate_time_zone


class SiteSettings(models.Model):
    """The business's settings, one row edited in admin."""

    redeem_url = models.URLField(
        default="",
        blank=True,
        help_text=_(
            "Where recipients redeem; the emailed link is this URL followed by ?giftCode=CODE. "
            "Empty: this site's own redeem page."
        ),
    )
    default_auto_claim = models.BooleanField(default=False, help_text=_("Gifts are claimed on delivery by default."))
    default_claim_expiry_days = models.PositiveIntegerField(
        null=True,
        blank=True,
        default=365,
        help_text=_("Days after delivery a gift can be claimed. Empty: never expires."),
    )
    sender_email = models.CharField(
        max_length=254,
        blank=True,
        help_text=_('From address of gift emails, e.g. "Gifts &lt;gifts@example.com&gt;". Empty: DEFAULT_FROM_EMAIL.'),
    )
    time_zone = models.CharField(max_length=64, default="UTC", validators=[validate_time_zone])

    class Meta:
        db_table = "accounts_sitesettings"
        verbose_name = verbose_name_plural = _("site settings")
        constraints = [models.CheckConstraint(condition=Q(pk=1), name="site_settings_single_row")]

    def __str__(self):
        return gettext("Site settings")

    @classmethod
    def load(cls):
        settings_row, _created = cls.objects.get_or_create(pk=1, defaults={"time_zone": settings.TIME_ZONE})
        return settings_row

    @property
    def effective_redeem_url(self):
        return self.redeem_url or f"{settings.SITE_URL}/redeem/"

    @property
    def effective_sender(self):
        return self.sender_email or settings.DEFAULT_FROM_EMAIL


class ApiKey(models.Model):
    """A merchant API key (HTTP Basic username). Only its SHA-256 is stored; the key is shown once."""

    class Kind(models.TextChoices):
        FULL = "full", _("Full access")
        READ_ONLY = "read_only", _("Read-only")

    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.FULL)
    prefix = models.CharField(
        max_length=16, editable=False, help_text=_("The key's first characters, to recognise it.")
    )
    key_digest = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "accounts_apikey"
        ordering = ["name"]
        verbose_name = _("API key")

    def __str__(self):
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self):
        return self.revoked_at is None


class IdempotencyRecord(models.Model):
    """A merchant POST's idempotency key and what it answered, replayed byte for byte on a repeat."""

    api_key = models.ForeignKey(ApiKey, on_delete=models.CASCADE, related_name="idempotency_records")
    key = models.CharField(max_length=100)
    method = models.CharField(max_length=10)
    path = models.CharField(max_length=300)
    fingerprint = models.CharField(max_length=64, help_text=_("SHA-256 of the canonical request."))
    status_code = models.PositiveSmallIntegerField(null=True, blank=True, help_text=_("Empty while in flight."))
    content_type = models.CharField(max_length=100, blank=True)
    body = models.BinaryField(default=b"")
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        db_table = "accounts_idempotencyrecord"
        constraints = [models.UniqueConstraint(fields=["api_key", "key"], name="idempotency_key_unique_per_api_key")]

    def __str__(self):
        return self.key


class Event(models.Model):
    """Something that happened to a gift, in Chargebee's event envelope (`gift_scheduled`, `gift_claimed`, …).
    Written in the transaction of the change; webhooks deliver it afterwards."""

    event_type = models.CharField(max_length=40)
    gift = models.ForeignKey("gifts.Gift", null=True, blank=True, on_delete=models.CASCADE, related_name="events")
    occurred_at = models.DateTimeField()
    content = models.JSONField(help_text=_("The resources as they were (e.g. {'gift': …})."))

    class Meta:
        db_table = "gifts_event"
        ordering = ["-occurred_at", "-id"]
        indexes = [models.Index(fields=["event_type", "-occurred_at"], name="event_type_idx")]

    def __str__(self):
        return f"{self.event_type} #{self.pk}"

    @property
    def event_id(self):
        return f"ev_{self.pk}"


class WebhookEndpoint(models.Model):
    """A merchant URL that receives events by POST, with HTTP Basic auth and an HMAC-SHA-256 signature header."""

    url = models.URLField(max_length=500)
    username = models.CharField(max_length=100, blank=True, help_text=_("HTTP Basic user sent with each call."))
    password = models.CharField(max_length=200, blank=True)
    secret = models.CharField(
        max_length=100, help_text=_("Signs each body: header X-Giftshop-Signature = hex HMAC-SHA-256(secret, body).")
    )
    event_types = models.JSONField(default=list, blank=True, help_text=_("Empty: every event."))
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "gifts_webhookendpoint"
        ordering = ["url"]

    def __str__(self):
        return self.url

    def wants(self, event_type):
        return self.active and (not self.event_types or event_type in self.event_types)

    def clean(self):
        # Checked here when the endpoint is saved, and again at every delivery (the name may resolve elsewhere by then).
        try:
            outbound.target(self.url)
        except outbound.UnsafeTarget as refused:
            raise ValidationError({"url": str(refused)}) from None


class WebhookDelivery(models.Model):
    """One event to one endpoint: retried with backoff for two days, then given up."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        SENDING = "sending", _("Sending")
        DELIVERED = "delivered", _("Delivered")
        FAILED = "failed", _("Failed")

    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="deliveries")
    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    sending_started_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "gifts_webhookdelivery"
        ordering = ["-created_at", "-id"]
        verbose_name_plural = _("webhook deliveries")
        indexes = [models.Index(fields=["next_attempt_at"], condition=Q(status="pending"), name="webhook_due_idx")]
        constraints = [models.UniqueConstraint(fields=["event", "endpoint"], name="webhook_delivery_once")]

    def __str__(self):
        return f"{self.event} to {self.endpoint}"
