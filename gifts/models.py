from datetime import UTC, datetime, time

from django.db import models
from django.db.models import Q
from django.utils import timezone

from billing.models import NOTE_MAX_LENGTH
from gifts import codes


class GiftStatus(models.TextChoices):
    SCHEDULED = "scheduled", "Scheduled"
    UNCLAIMED = "unclaimed", "Sent, not redeemed"
    CLAIMED = "claimed", "Redeemed"
    EXPIRED = "expired", "Expired"
    CANCELLED = "cancelled", "Cancelled"


# The gift state machine, in one place: the states each state may be entered from.
# Only gifts.services.gift_transition writes a gift's status, through a conditional UPDATE on this table.
TRANSITIONS = {
    # From expired: a storefront gift that expired unredeemed is sent again to an address its gifter corrected.
    GiftStatus.UNCLAIMED: {GiftStatus.SCHEDULED, GiftStatus.EXPIRED},
    GiftStatus.CLAIMED: {GiftStatus.SCHEDULED, GiftStatus.UNCLAIMED},
    GiftStatus.EXPIRED: {GiftStatus.UNCLAIMED},
    GiftStatus.CANCELLED: {GiftStatus.SCHEDULED, GiftStatus.UNCLAIMED},
}
TERMINAL = {GiftStatus.CLAIMED, GiftStatus.EXPIRED, GiftStatus.CANCELLED}


class Gift(models.Model):
    Status = GiftStatus

    class Source(models.TextChoices):
        STOREFRONT = "storefront", "Storefront (MediaStore API / web)"
        MERCHANT = "merchant", "Merchant API"

    status = models.CharField(max_length=10, choices=GiftStatus.choices, default=GiftStatus.SCHEDULED)
    source = models.CharField(max_length=12, choices=Source.choices, default=Source.STOREFRONT)
    # The code is derived from the nonce under a secret key (gifts/codes.py); only its keyed hash is searchable.
    code_nonce = models.CharField(max_length=32, default=codes.new_nonce, editable=False)
    code_digest = models.CharField(max_length=64, unique=True, editable=False)
    code_last4 = models.CharField(max_length=4, editable=False)
    gifter = models.ForeignKey("accounts.Customer", on_delete=models.PROTECT, related_name="gifts_given")
    offer = models.ForeignKey("offers.Offer", on_delete=models.PROTECT, related_name="gifts")
    order = models.OneToOneField("billing.Order", null=True, blank=True, on_delete=models.PROTECT, related_name="gift")
    invoice = models.ForeignKey(
        "billing.Invoice", null=True, blank=True, on_delete=models.PROTECT, related_name="gifts"
    )
    recipient_email = models.EmailField()
    recipient_first_name = models.CharField(max_length=150, blank=True)
    recipient_last_name = models.CharField(max_length=150, blank=True)
    receiver = models.ForeignKey(
        "accounts.Customer", null=True, blank=True, on_delete=models.PROTECT, related_name="gifts_received"
    )
    personal_note = models.CharField(max_length=NOTE_MAX_LENGTH, blank=True)
    signature = models.CharField(max_length=150, blank=True)
    scheduled_at = models.DateTimeField(help_text="When the recipient is emailed (UTC).")
    sent_at = models.DateTimeField(null=True, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    expired_at = models.DateTimeField(null=True, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    auto_claim = models.BooleanField(default=False)
    no_expiry = models.BooleanField(default=False)
    claim_expiry_date = models.DateTimeField(null=True, blank=True)
    subscription = models.ForeignKey(
        "accounts.Subscription", null=True, blank=True, on_delete=models.PROTECT, related_name="gifts"
    )
    redeem_mode = models.CharField(max_length=6, blank=True)  # NEW | EXTEND, once claimed
    resource_version = models.BigIntegerField(default=0, help_text="Milliseconds; bumped by every change.")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            # The delivery and expiry sweeps' queries.
            models.Index(fields=["scheduled_at"], condition=Q(status="scheduled"), name="gift_due_delivery_idx"),
            models.Index(fields=["claim_expiry_date"], condition=Q(status="unclaimed"), name="gift_due_expiry_idx"),
            # The reminder sweep's "expired unredeemed" notices (gifts/reminders.py).
            models.Index(fields=["expired_at"], condition=Q(status="expired"), name="gift_expired_idx"),
            models.Index(fields=["recipient_email"], name="gift_recipient_idx"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(status__in=GiftStatus.values), name="gift_status_valid"),
            models.CheckConstraint(
                condition=Q(status__in=["scheduled", "cancelled"]) | Q(sent_at__isnull=False) | Q(status="claimed"),
                name="gift_delivered_has_sent_at",
            ),
            models.CheckConstraint(
                condition=~Q(status="claimed") | Q(claimed_at__isnull=False, receiver__isnull=False),
                name="gift_claimed_has_receiver",
            ),
            models.CheckConstraint(
                condition=~Q(status="expired") | Q(expired_at__isnull=False), name="gift_expired_at"
            ),
            models.CheckConstraint(
                condition=~Q(status="cancelled") | Q(cancelled_at__isnull=False), name="gift_cancelled_at"
            ),
            models.CheckConstraint(
                condition=Q(claim_expiry_date__isnull=True) | Q(no_expiry=False, auto_claim=False),
                name="gift_expiry_not_with_auto_claim_or_no_expiry",
            ),
        ]

    def __str__(self):
        return f"Gift {self.pk} ({self.masked_code})"

    @property
    def code(self):
        """The redeemable code, for the gifter and the delivery email only."""
        return codes.format_code(codes.code_for_nonce(self.code_nonce))

    @property
    def link_token(self):
        """The redeem link's 128-bit token, for the recipient's emails only; changes with the code."""
        return codes.link_token(self.pk, self.code_nonce)

    @property
    def masked_code(self):
        return f"••••-{self.code_last4}"

    def assign_code(self, nonce=None):
        self.code_nonce = nonce or codes.new_nonce()
        raw = codes.code_for_nonce(self.code_nonce)
        self.code_digest = codes.digest(raw)
        self.code_last4 = raw[-4:]

    def edit_cutoff(self):
        """Delivery details can change until the end of the day before the delivery day, in the gifter's zone."""
        zone = self.gifter.zone()
        delivery_day = self.scheduled_at.astimezone(zone).date()
        return datetime.combine(delivery_day, time.min, tzinfo=zone).astimezone(UTC)


class GiftTimeline(models.Model):
    """One row per status change of a gift (Chargebee's gift_timelines), written with the change."""

    gift = models.ForeignKey(Gift, on_delete=models.CASCADE, related_name="timeline")
    status = models.CharField(max_length=10, choices=GiftStatus.choices)
    occurred_at = models.DateTimeField()
    actor = models.CharField(max_length=100, blank=True, help_text="Who or what made the change.")

    class Meta:
        ordering = ["occurred_at", "id"]
        constraints = [
            # A gift is scheduled, claimed or cancelled at most once: a second row means a double move. (Only the
            # unclaimed/expired pair can repeat, when an expired gift is sent again.)
            models.UniqueConstraint(
                fields=["gift", "status"],
                condition=Q(status__in=["scheduled", "claimed", "cancelled"]),
                name="gift_timeline_once_per_status",
            )
        ]

    def __str__(self):
        return f"{self.status} at {self.occurred_at:%Y-%m-%d %H:%M:%S}"


class Email(models.Model):
    """The outbox: one row per logical email, written in the transaction that makes the email due, sent after
    commit by a worker. `key` makes each email exist once (e.g. `gift:12:delivery`)."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SENDING = "sending", "Sending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"
        BOUNCED = "bounced", "Bounced"

    class Kind(models.TextChoices):
        GIFT_RECEIPT = "gift_receipt", "Gift receipt (gifter)"
        ORDER_RECEIPT = "order_receipt", "Order receipt"
        GIFT_DELIVERY = "gift_delivery", "Gift delivery (recipient)"
        GIFT_DELIVERED = "gift_delivered", "Gift delivered (gifter)"
        GIFT_REDEEMED = "gift_redeemed", "Gift redeemed (gifter)"
        SET_PASSWORD = "set_password", "Set your password (an account without one)"
        CLAIM_EXPIRING = "claim_expiring", "Gift about to expire unredeemed (recipient)"
        TERM_ENDING = "term_ending", "Gift term ending (recipient)"
        GIFT_EXPIRED = "gift_expired", "Gift expired unredeemed (gifter)"
        GIFT_BOUNCED = "gift_bounced", "Gift delivery bounced (gifter)"

    key = models.CharField(max_length=120, unique=True)
    kind = models.CharField(max_length=30, choices=Kind.choices)
    to_email = models.EmailField()
    gift = models.ForeignKey(Gift, null=True, blank=True, on_delete=models.CASCADE, related_name="emails")
    order = models.ForeignKey("billing.Order", null=True, blank=True, on_delete=models.CASCADE, related_name="emails")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    sending_started_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    provider_message_id = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["next_attempt_at"], condition=Q(status="pending"), name="email_due_idx"),
            models.Index(fields=["sending_started_at"], condition=Q(status="sending"), name="email_sending_idx"),
            # The bounce webhooks' look-up, for ESPs that do not echo our metadata (gifts/bounces.py).
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


class Event(models.Model):
    """Something that happened to a gift, in Chargebee's event envelope (`gift_scheduled`, `gift_claimed`, …).
    Written in the transaction of the change; webhooks deliver it afterwards."""

    event_type = models.CharField(max_length=40)
    gift = models.ForeignKey(Gift, null=True, blank=True, on_delete=models.CASCADE, related_name="events")
    occurred_at = models.DateTimeField()
    content = models.JSONField(help_text="The resources as they were (e.g. {'gift': …}).")

    class Meta:
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
    username = models.CharField(max_length=100, blank=True, help_text="HTTP Basic user sent with each call.")
    password = models.CharField(max_length=200, blank=True)
    secret = models.CharField(
        max_length=100, help_text="Signs each body: header X-Giftshop-Signature = hex HMAC-SHA-256(secret, body)."
    )
    event_types = models.JSONField(default=list, blank=True, help_text="Empty: every event.")
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["url"]

    def __str__(self):
        return self.url

    def wants(self, event_type):
        return self.active and (not self.event_types or event_type in self.event_types)


class WebhookDelivery(models.Model):
    """One event to one endpoint: retried with backoff for two days, then given up."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SENDING = "sending", "Sending"
        DELIVERED = "delivered", "Delivered"
        FAILED = "failed", "Failed"

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
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "webhook deliveries"
        indexes = [models.Index(fields=["next_attempt_at"], condition=Q(status="pending"), name="webhook_due_idx")]
        constraints = [models.UniqueConstraint(fields=["event", "endpoint"], name="webhook_delivery_once")]

    def __str__(self):
        return f"{self.event} to {self.endpoint}"
