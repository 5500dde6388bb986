"""The gift and its timeline: the gift state machine's table (TRANSITIONS) and the constraints that tie each status to
its timestamps."""

from datetime import UTC, datetime, time

from django.db import models
from django.db.models import Q
from django.utils import timezone

from gifts import codes

# The gifter's personal note, as Cleeng caps it (the web form's own, lower cap is a UI choice).
NOTE_MAX_LENGTH = 255


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
