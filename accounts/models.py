"""People and what they hold: customers (the user model), their cards, subscriptions and the transaction ledger,
the storefront's refresh tokens, and the record of each erasure of a customer's personal data."""

import hashlib
import hmac
import uuid
import zoneinfo
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.contrib.auth.models import PermissionsMixin
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.crypto import salted_hmac
from django.utils.translation import gettext_lazy as _

from giftshop.models import SiteSettings
from giftshop.timezones import validate_time_zone
from offers.models import currency_validator


class CustomerQuerySet(models.QuerySet):
    def owning(self, email):
        """The account of an address (at most one): the customers of `email`, but never a duplicate registration."""
        return self.filter(email__iexact=(email or "").strip(), duplicate_of=None)


class CustomerManager(BaseUserManager.from_queryset(CustomerQuerySet)):
    use_in_migrations = True

    def normalize_email(self, email):
        return (email or "").strip().lower()

    def get_by_natural_key(self, username):
        """Who logs in with an address: its account, never a duplicate registration."""
        return self.owning(self.normalize_email(username)).get()

    def create_user(self, email, password=None, **fields):
        """A customer; without a password (created by the merchant API or a guest checkout) they cannot log in
        until they set one."""
        if not email:
            raise ValueError("A customer needs an email address.")
        customer = self.model(email=self.normalize_email(email), **fields)
        customer.set_password(password)  # None sets an unusable password
        customer.save(using=self._db)
        return customer

    def create_superuser(self, email, password=None, **fields):
        fields.update(is_staff=True, is_superuser=True)
        return self.create_user(email, password, **fields)


class Customer(AbstractBaseUser, PermissionsMixin):
    """Everyone who buys, receives or administers: the user model, logging in with an email address."""

    email = models.EmailField(help_text=_("Unique among accounts (duplicate registrations share their account's)."))
    first_name = models.CharField(max_length=150, blank=True)
    last_name = models.CharField(max_length=150, blank=True)
    time_zone = models.CharField(
        max_length=64, blank=True, validators=[validate_time_zone], help_text=_("Empty: the site's time zone.")
    )
    locale = models.CharField(max_length=10, default="en_US")
    country = models.CharField(max_length=2, blank=True)
    currency = models.CharField(max_length=3, blank=True, validators=[currency_validator])
    is_staff = models.BooleanField(default=False, help_text=_("Can log into the admin site."))
    is_active = models.BooleanField(default=True)
    date_joined = models.DateTimeField(default=timezone.now)

    email_verified_at = models.DateTimeField(
        null=True, blank=True, help_text=_("When the owner proved the mailbox (an emailed link); empty: unverified.")
    )
    # The storefront registers an address that already has an account as it registers a new one (the answer must
    # not tell which addresses have accounts): a duplicate with its own password and sessions, that never logs in
    # by address, never receives the address's gifts and ends when the account's owner proves the mailbox.
    duplicate_of = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="duplicates",
        help_text=_("A storefront registration of an address that already had this account."),
    )
    erased_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text=_(
            "When this customer's personal data was erased (accounts/erasure.py): what is left is a pseudonym."
        ),
    )
    objects = CustomerManager()

    EMAIL_FIELD = "email"
    USERNAME_FIELD = "email"
    REQUIRED_FIELDS = []

    class Meta:
        ordering = ["email"]
        constraints = [
            models.UniqueConstraint(
                Lower("email"),
                condition=Q(duplicate_of=None),
                name="customer_email_unique_ignoring_case",
                violation_error_message=_("A customer with this email already exists."),
            )
        ]

    def __str__(self):
        return self.email

    @property
    def mailbox_secured(self):
        """Whether only the owner of the address can be using this account: it proved the mailbox (an emailed link),
        or it has no password yet (nobody can log in until someone proves the mailbox by choosing one). An account
        registered with a password for an address it never proved may be someone else's squatting it: gifts sent
        to the address do not land there by themselves."""
        return self.email_verified_at is not None or not self.has_usable_password()

    def session_stamp(self):
        """Changes with the password (any change, by any path): storefront tokens carry the stamp they were issued
        with and stop working when it no longer matches, as Django's session hash does for web sessions."""
        return salted_hmac("giftshop.accounts.session", self.password, algorithm="sha256").hexdigest()[:20]

    def clean(self):
        super().clean()
        self.email = self.__class__.objects.normalize_email(self.email)

    @property
    def full_name(self):
        return f"{self.first_name} {self.last_name}".strip()

    def get_full_name(self):
        return self.full_name or self.email

    def get_short_name(self):
        return self.first_name or self.email

    def zone(self):
        """The customer's time zone, or the site's when they have not chosen one."""
        return zoneinfo.ZoneInfo(self.time_zone or SiteSettings.load().time_zone)


class PaymentMethod(models.Model):
    """A card on file, as a gateway token (never the card number)."""

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="payment_methods")
    gateway = models.CharField(max_length=30, default="sandbox")
    token = models.CharField(max_length=100, help_text=_("The gateway's reusable token for this card."))
    brand = models.CharField(max_length=20)
    last4 = models.CharField(max_length=4, validators=[RegexValidator(r"^\d{4}$")])
    exp_month = models.PositiveSmallIntegerField(validators=[MinValueValidator(1), MaxValueValidator(12)])
    exp_year = models.PositiveSmallIntegerField()
    is_default = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-is_default", "-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["gateway", "token"], name="payment_method_token_unique"),
            models.UniqueConstraint(
                fields=["customer"], condition=Q(is_default=True), name="payment_method_one_default_per_customer"
            ),
            models.CheckConstraint(condition=Q(exp_month__gte=1, exp_month__lte=12), name="payment_method_exp_month"),
        ]

    def __str__(self):
        return f"{self.brand} •••• {self.last4}"

    @property
    def reference_id(self):
        """What the APIs show for the card: an opaque, stable reference. The token itself is a charge credential
        and never leaves the server."""
        return "ref_" + hmac.new(settings.SECRET_KEY.encode(), self.token.encode(), hashlib.sha256).hexdigest()[:24]

    @property
    def label(self):
        return str(self)


class SubscriptionStatus(models.TextChoices):
    FUTURE = "future", _("Future")
    ACTIVE = "active", _("Active")
    NON_RENEWING = "non_renewing", _("Non-renewing")
    CANCELLED = "cancelled", _("Cancelled")
    EXPIRED = "expired", _("Expired")


# A declined renewal is tried again this long after the term ended; when the last retry fails, it expires.
RENEWAL_RETRY_AFTER = (timedelta(days=1), timedelta(days=3), timedelta(days=7))
# How long past its term an auto-renewing subscription keeps access while the renewal engine charges or retries it:
# through the last retry, and a day more for a sweep that runs late.
RENEWAL_GRACE = RENEWAL_RETRY_AFTER[-1] + timedelta(days=1)


class Subscription(models.Model):
    Status = SubscriptionStatus

    class Origin(models.TextChoices):
        PURCHASE = "purchase", _("Purchase")
        GIFT = "gift", _("Gift")

    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="subscriptions")
    offer = models.ForeignKey("offers.Offer", on_delete=models.PROTECT, related_name="subscriptions")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.ACTIVE)
    term_start = models.DateTimeField()
    term_end = models.DateTimeField()
    auto_renew = models.BooleanField(default=True)
    renewable = models.BooleanField(
        default=True,
        help_text=_(
            "Off for Chargebee's gift subscriptions (merchant API gifts): they never renew, not even once a "
            "card is on file, and end cancelled at the end of their term."
        ),
    )
    origin = models.CharField(max_length=10, choices=Origin.choices, default=Origin.PURCHASE)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    renewal_started_at = models.DateTimeField(
        null=True, blank=True, help_text=_("Set while a renewal payment is being taken.")
    )
    renewal_attempts = models.PositiveSmallIntegerField(
        default=0, help_text=_("Declined renewal payments for the current term.")
    )
    next_renewal_attempt_at = models.DateTimeField(
        null=True, blank=True, help_text=_("When a declined renewal payment is tried again; access stays until then.")
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-term_start", "-id"]
        indexes = [models.Index(fields=["status", "term_end"], name="subscription_due_idx")]
        constraints = [
            models.CheckConstraint(condition=Q(status__in=SubscriptionStatus.values), name="subscription_status_valid"),
            models.CheckConstraint(
                condition=Q(term_end__gt=F("term_start")), name="subscription_term_ends_after_start"
            ),
            models.CheckConstraint(
                condition=~Q(status="cancelled") | Q(cancelled_at__isnull=False),
                name="subscription_cancelled_has_time",
            ),
        ]

    def __str__(self):
        return f"#{self.pk} {self.offer.title} for {self.customer}"

    @classmethod
    def held_at(cls, when):
        """The filter for subscriptions still held at `when`: within their term, or past it while an auto-renewing
        one waits for the renewal engine (the next sweep, or a retry after a decline) — access stays meanwhile."""
        return Q(status__in=[cls.Status.ACTIVE, cls.Status.NON_RENEWING]) & (
            Q(term_end__gt=when) | Q(status=cls.Status.ACTIVE, auto_renew=True, term_end__gt=when - RENEWAL_GRACE)
        )

    def grants_access_at(self, when):
        if self.status not in (self.Status.ACTIVE, self.Status.NON_RENEWING) or when < self.term_start:
            return False
        in_grace = self.status == self.Status.ACTIVE and self.auto_renew and when < self.term_end + RENEWAL_GRACE
        return when < self.term_end or in_grace


class Transaction(models.Model):
    """One row of a customer's ledger (Cleeng's transactions): what they paid for, and what it paid for."""

    class TargetType(models.TextChoices):
        GIFT = "giftId", _("Gift")
        SUBSCRIPTION = "subscriptionId", _("Subscription")

    class Kind(models.TextChoices):
        PURCHASE = "purchase", _("Purchase")
        RENEWAL = "renewal", _("Renewal")
        REFUND = "refund", _("Refund")

    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="transactions")
    occurred_at = models.DateTimeField(default=timezone.now)
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.PURCHASE)
    offer = models.ForeignKey("offers.Offer", on_delete=models.PROTECT, related_name="transactions")
    amount = models.DecimalField(max_digits=12, decimal_places=2, validators=[MinValueValidator(Decimal("0"))])
    currency = models.CharField(max_length=3, validators=[currency_validator])
    payment_method = models.ForeignKey(PaymentMethod, null=True, blank=True, on_delete=models.SET_NULL)
    payment_method_label = models.CharField(max_length=50, blank=True, help_text=_("As shown to the customer."))
    payment_reference = models.CharField(max_length=100, blank=True, help_text=_("The gateway's reference."))
    target_type = models.CharField(max_length=20, choices=TargetType.choices)
    target_id = models.CharField(max_length=40)

    class Meta:
        ordering = ["-occurred_at", "-id"]
        indexes = [models.Index(fields=["customer", "-occurred_at"], name="transaction_ledger_idx")]
        constraints = [
            models.CheckConstraint(
                condition=Q(target_type__in=["giftId", "subscriptionId"]), name="transaction_target_type"
            ),
            models.CheckConstraint(condition=Q(amount__gte=0), name="transaction_amount_not_negative"),
        ]

    def __str__(self):
        return self.transaction_id

    @property
    def transaction_id(self):
        return f"T{self.pk:09d}"


class ErasureRecord(models.Model):
    """The audit record of one erasure of a customer's personal data: who asked and when, never what was erased (it
    holds no personal data itself, so it outlives the erasure it records)."""

    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="erasures")
    requested_by = models.CharField(
        max_length=100, help_text=_('"customer" (confirmed by email) or "admin:&lt;id&gt;".')
    )
    erased_at = models.DateTimeField()

    class Meta:
        ordering = ["-erased_at", "-id"]

    def __str__(self):
        return f"erasure of customer {self.customer_id} at {self.erased_at:%Y-%m-%d %H:%M:%S}"


class RefreshToken(models.Model):
    """A single-use storefront refresh token, stored as a hash; using it marks it used and issues the next."""

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="refresh_tokens")
    token_digest = models.CharField(max_length=64, unique=True)
    # One login's chain of rotated tokens: a token used twice (one of them was stolen) ends the whole chain, and
    # the chain ends at the login's expiry however often it is rotated (OAuth 2.0 Security BCP, 4.14.2).
    family = models.UUIDField(default=uuid.uuid4, db_index=True)
    session_stamp = models.CharField(max_length=20, blank=True, help_text=_("The customer's at issue."))
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["expires_at"], name="refresh_token_expiry_idx")]

    def __str__(self):
        return f"refresh token of {self.customer_id}"
