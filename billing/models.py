"""Checkout's records: orders and their prices, payments through the gateway (charges and refunds), and invoices."""

from datetime import timedelta
from decimal import Decimal

from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Round
from django.db.models.lookups import Exact
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from gifts.models import NAME_MAX_LENGTH, NOTE_MAX_LENGTH, DeliveryMethod
from giftshop.timezones import validate_time_zone
from offers.models import currency_validator

ORDER_LIFETIME = timedelta(hours=24)


def cents_equal(left, right):
    """`left = right` for money, exact on every database: compared in whole cents. SQLite keeps decimals as
    floating point, where 27.99 - 14.00 is 13.989999999999998, not 13.99; PostgreSQL's numeric is exact anyway."""
    return Exact(Round(left * 100), Round(right * 100))


def order_expiry():
    return timezone.now() + ORDER_LIFETIME


class Order(models.Model):
    """A customer's intent to buy one offer, for themselves or as a gift; priced on every change."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Awaiting payment")
        PAID = "paid", _("Paid")

    customer = models.ForeignKey("accounts.Customer", on_delete=models.PROTECT, related_name="orders")
    offer = models.ForeignKey("offers.Offer", on_delete=models.PROTECT, related_name="orders")
    coupon = models.ForeignKey("offers.Coupon", null=True, blank=True, on_delete=models.PROTECT)
    payment_method_id = models.CharField(max_length=20, blank=True, help_text=_("The publisher's payment method."))
    currency = models.CharField(max_length=3, validators=[currency_validator])
    offer_price = models.DecimalField(max_digits=12, decimal_places=2)
    discount_amount = models.DecimalField(max_digits=12, decimal_places=2, default=Decimal("0.00"))
    tax_value = models.DecimalField(max_digits=12, decimal_places=2, default=Decimal("0.00"))
    total_price = models.DecimalField(max_digits=12, decimal_places=2)
    buy_as_gift = models.BooleanField(default=False)
    # A bulk gift list's order (issue 18) is for many gifts at once: offer_price is then the subtotal of all of them.
    quantity = models.PositiveIntegerField(default=1)
    fulfilment = models.JSONField(
        default=dict,
        blank=True,
        help_text=_(
            'What paying makes instead of one gift or subscription: {"kind": …, its arguments} '
            "(settings.ORDER_FULFILMENTS), so whoever completes the payment (this request, or Stripe's webhook) "
            "makes it."
        ),
    )
    recipient_email = models.EmailField(blank=True)
    scheduled_at = models.DateTimeField(null=True, blank=True, help_text=_("Empty or past: deliver at once."))
    time_zone = models.CharField(
        max_length=64,
        blank=True,
        validators=[validate_time_zone],
        help_text=_("The zone the delivery time was chosen in (the gift keeps it); empty: the buyer's zone."),
    )
    personal_note = models.CharField(max_length=NOTE_MAX_LENGTH, blank=True)
    recipient_first_name = models.CharField(
        max_length=NAME_MAX_LENGTH, blank=True, help_text=_("The recipient's emails greet them by it.")
    )
    signature = models.CharField(
        max_length=NAME_MAX_LENGTH, blank=True, help_text=_("The gifter's name as the recipient reads it.")
    )
    delivery_method = models.CharField(
        max_length=8,
        choices=DeliveryMethod.choices,
        default=DeliveryMethod.EMAIL,
        help_text=_("Handover: no recipient address; the gift is the gifter's to give (its certificate) once paid."),
    )
    design = models.ForeignKey(
        "gifts.GiftDesign",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        help_text=_("The gift's look; empty: plain."),
    )
    gift_language = models.CharField(
        max_length=10, blank=True, help_text=_("The language the recipient reads the gift in; empty: the buyer's.")
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    checkout_key = models.CharField(
        max_length=64,
        unique=True,
        null=True,
        blank=True,
        help_text=_(
            "The web checkout form's per-render key: a double submit finds this order instead of making a second one."
        ),
    )
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(default=order_expiry)
    paid_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=Q(status__in=["pending", "paid"]), name="order_status_valid"),
            models.CheckConstraint(
                condition=cents_equal(F("total_price"), F("offer_price") - F("discount_amount") + F("tax_value")),
                name="order_total_adds_up",
            ),
            models.CheckConstraint(condition=Q(total_price__gte=0), name="order_total_not_negative"),
            models.CheckConstraint(condition=~Q(status="paid") | Q(paid_at__isnull=False), name="order_paid_has_time"),
        ]

    def __str__(self):
        return f"Order {self.pk}"

    @property
    def discounted_price(self):
        return self.offer_price - self.discount_amount

    def is_expired(self, now=None):
        return self.status == self.Status.PENDING and (now or timezone.now()) >= self.expires_at


class Invoice(models.Model):
    """What a customer was charged, line by line (Chargebee's invoice; raised on the gifter for a gift)."""

    customer = models.ForeignKey("accounts.Customer", on_delete=models.PROTECT, related_name="invoices")
    order = models.OneToOneField(Order, null=True, blank=True, on_delete=models.PROTECT, related_name="invoice")
    currency = models.CharField(max_length=3, validators=[currency_validator])
    subtotal = models.DecimalField(max_digits=12, decimal_places=2)
    discount = models.DecimalField(max_digits=12, decimal_places=2, default=Decimal("0.00"))
    tax = models.DecimalField(max_digits=12, decimal_places=2, default=Decimal("0.00"))
    total = models.DecimalField(max_digits=12, decimal_places=2)
    amount_refunded = models.DecimalField(max_digits=12, decimal_places=2, default=Decimal("0.00"))
    is_gifted = models.BooleanField(default=False)
    term_finalized = models.BooleanField(default=True)
    issued_at = models.DateTimeField(default=timezone.now)
    paid_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-issued_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=cents_equal(F("total"), F("subtotal") - F("discount") + F("tax")), name="invoice_adds_up"
            ),
            models.CheckConstraint(condition=Q(amount_refunded__lte=F("total")), name="invoice_refund_within_total"),
        ]

    def __str__(self):
        return self.number

    @property
    def number(self):
        return f"INV-{self.pk:06d}"


class InvoiceLine(models.Model):
    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="lines")
    description = models.CharField(max_length=200)
    entity_type = models.CharField(max_length=20, default="plan")  # plan | addon
    entity_id = models.CharField(max_length=50)
    quantity = models.PositiveIntegerField(default=1)
    unit_amount = models.DecimalField(max_digits=12, decimal_places=2)
    amount = models.DecimalField(max_digits=12, decimal_places=2)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(
                condition=cents_equal(F("amount"), F("unit_amount") * F("quantity")), name="line_adds_up"
            )
        ]

    def __str__(self):
        return f"{self.quantity} x {self.description}"


class Payment(models.Model):
    """One charge (or refund) attempt through the gateway. Recorded before the gateway is called, so a crash
    between the charge and our bookkeeping leaves a row to reconcile rather than a silent charge."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        SUCCEEDED = "succeeded", _("Succeeded")
        FAILED = "failed", _("Failed")

    class Kind(models.TextChoices):
        CHARGE = "charge", _("Charge")
        REFUND = "refund", _("Refund")

    customer = models.ForeignKey("accounts.Customer", on_delete=models.PROTECT, related_name="payments")
    order = models.ForeignKey(Order, null=True, blank=True, on_delete=models.PROTECT, related_name="payments")
    invoice = models.ForeignKey(Invoice, null=True, blank=True, on_delete=models.PROTECT, related_name="payments")
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.CHARGE)
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    currency = models.CharField(max_length=3, validators=[currency_validator])
    gateway = models.CharField(max_length=30)
    payment_method = models.ForeignKey("accounts.PaymentMethod", null=True, blank=True, on_delete=models.SET_NULL)
    payment_method_label = models.CharField(max_length=50, blank=True)
    idempotency_key = models.CharField(max_length=120, unique=True, help_text=_("Also sent to the gateway."))
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    reference = models.CharField(max_length=100, blank=True, help_text=_("The gateway's reference."))
    failure_code = models.CharField(max_length=50, blank=True)
    failure_message = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # An order is paid at most once, however many attempts it took.
            models.UniqueConstraint(
                fields=["order"], condition=Q(status="succeeded", kind="charge"), name="payment_one_success_per_order"
            ),
            models.CheckConstraint(condition=Q(amount__gte=0), name="payment_amount_not_negative"),
        ]

    def __str__(self):
        return f"{self.kind} {self.amount} {self.currency} ({self.status})"


class CreditEntry(models.Model):
    """One movement of a customer's account credit (issue 16), in one currency: given when a gift of theirs ends
    unredeemed under an offer that gives credit (positive), spent on a purchase or renewal before the card is charged
    (negative), and given back when what it paid is refunded. The balance is the sum; `key` makes each movement
    happen once however often its task runs."""

    class Reason(models.TextChoices):
        GIFT_UNREDEEMED = "gift_unredeemed", _("A gift you gave was not redeemed in time")
        SPENT = "spent", _("Paid towards a purchase or renewal")
        REFUNDED = "refunded", _("Given back with a refund")

    customer = models.ForeignKey("accounts.Customer", on_delete=models.PROTECT, related_name="credit_entries")
    amount = models.DecimalField(
        max_digits=12, decimal_places=2, help_text=_("Positive: credit given; negative: spent.")
    )
    currency = models.CharField(max_length=3, validators=[currency_validator])
    reason = models.CharField(max_length=20, choices=Reason.choices)
    gift = models.ForeignKey("gifts.Gift", null=True, blank=True, on_delete=models.PROTECT, related_name="credits")
    order = models.ForeignKey(Order, null=True, blank=True, on_delete=models.PROTECT, related_name="credits")
    invoice = models.ForeignKey(Invoice, null=True, blank=True, on_delete=models.PROTECT, related_name="credits")
    key = models.CharField(max_length=120, unique=True, help_text=_("Makes each movement happen once."))
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["customer", "currency"], name="credit_customer_idx")]
        constraints = [models.CheckConstraint(condition=~Q(amount=0), name="credit_amount_not_zero")]

    def __str__(self):
        return f"{self.amount} {self.currency} ({self.reason})"


class StripeCustomer(models.Model):
    """The customer's Customer at Stripe (one each), which their saved cards are attached to."""

    customer = models.OneToOneField("accounts.Customer", on_delete=models.CASCADE, related_name="stripe_customer")
    stripe_id = models.CharField(max_length=100, unique=True)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self):
        return self.stripe_id


class StripeEvent(models.Model):
    """A Stripe webhook event already processed: a repeat delivery of its id changes nothing."""

    event_id = models.CharField(max_length=100, unique=True)
    type = models.CharField(max_length=100)
    created = models.DateTimeField(help_text=_("When Stripe made the event."))
    processed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-processed_at"]

    def __str__(self):
        return f"{self.type} {self.event_id}"


class Dispute(models.Model):
    """A cardholder's dispute (chargeback) of a payment, as Stripe reported it (`charge.dispute.*`)."""

    stripe_id = models.CharField(max_length=100, unique=True)
    payment = models.ForeignKey(Payment, null=True, blank=True, on_delete=models.PROTECT, related_name="disputes")
    order = models.ForeignKey(Order, null=True, blank=True, on_delete=models.PROTECT, related_name="disputes")
    payment_intent = models.CharField(max_length=100, blank=True)
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    currency = models.CharField(max_length=3)
    reason = models.CharField(max_length=50, blank=True)
    status = models.CharField(max_length=30)
    evidence_due_by = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(help_text=_("When the cardholder disputed it."))
    updated_at = models.DateTimeField(help_text=_("Stripe's time of the event we last took it from."))

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return f"Dispute {self.stripe_id} ({self.status})"
