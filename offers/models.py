"""The catalogue: offers (Chargebee's plans), their add-ons and coupons, with the rules each row keeps."""

import re
import secrets
from decimal import Decimal

from dateutil.relativedelta import relativedelta
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator, RegexValidator
from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Upper
from django.utils.translation import gettext, pgettext_lazy
from django.utils.translation import gettext_lazy as _

from giftshop.money import quantize

OFFER_ID_RE = re.compile(r"^(?P<short>S\d{9})(?:_(?P<country>[A-Z]{2}))?$")
currency_validator = RegexValidator(r"^[A-Z]{3}$", _("Use a three-letter ISO 4217 code, e.g. USD."))


class Period(models.TextChoices):
    WEEK = "week", _("Weekly")
    MONTH = "month", _("Monthly")
    THREE_MONTHS = "3months", _("3 months")
    SIX_MONTHS = "6months", _("6 months")
    YEAR = "year", _("Yearly")
    SEASON = "season", _("Season")


GIFTABLE_PERIODS = (Period.MONTH, Period.THREE_MONTHS, Period.SIX_MONTHS, Period.YEAR)
# A season pass runs for a year from its start; it is never sold as a gift.
PERIOD_DELTAS = {
    Period.WEEK: relativedelta(weeks=1),
    Period.MONTH: relativedelta(months=1),
    Period.THREE_MONTHS: relativedelta(months=3),
    Period.SIX_MONTHS: relativedelta(months=6),
    Period.YEAR: relativedelta(years=1),
    Period.SEASON: relativedelta(years=1),
}

# How each period reads to shoppers, in one place: its length ("6 months"), one term of it as a gift gives it ("one
# 6-month term") and how often its price is charged ("2.99 USD a week"). `get_period_display` is the admin's label.
PERIOD_WORDS = {
    Period.WEEK: (_("1 week"), _("one weekly term"), pgettext_lazy("price per period", "a week")),
    Period.MONTH: (_("1 month"), _("one monthly term"), pgettext_lazy("price per period", "a month")),
    Period.THREE_MONTHS: (_("3 months"), _("one 3-month term"), pgettext_lazy("price per period", "every 3 months")),
    Period.SIX_MONTHS: (_("6 months"), _("one 6-month term"), pgettext_lazy("price per period", "every 6 months")),
    Period.YEAR: (_("1 year"), _("one yearly term"), pgettext_lazy("price per period", "a year")),
    Period.SEASON: (_("1 season"), _("one season term"), pgettext_lazy("price per period", "a season")),
}


def new_offer_id():
    return f"S{secrets.randbelow(900_000_000) + 100_000_000}"


def parse_offer_id(value):
    """The short id (`S123456789`) of a short or long (`S123456789_US`) offer id, or None."""
    match = OFFER_ID_RE.match((value or "").strip())
    return match["short"] if match else None


def normalize_tags(tags):
    """Tags compare as sets: stored lower-cased, de-duplicated and sorted."""
    if isinstance(tags, str):
        tags = tags.split(",")
    return sorted({str(tag).strip().lower() for tag in tags if str(tag).strip()})


class SameAccessPolicy(models.TextChoices):
    EXTEND = "extend", _("Extend the subscription they hold")
    REFUSE = "refuse", _("Refuse the gift")


class ClaimWindowEnd(models.TextChoices):
    """What happens to the money of a gift nobody redeemed by the end of its claim window (issue 16)."""

    EXPIRE = "expire", _("Expire (nothing goes back)")
    REFUND = "refund", _("Refund the gifter")
    CREDIT = "credit", _("Give the gifter account credit")


class Offer(models.Model):
    SameAccessPolicy = SameAccessPolicy

    short_id = models.CharField(
        _("offer id"),
        max_length=10,
        unique=True,
        default=new_offer_id,
        validators=[RegexValidator(r"^S\d{9}$", _("An offer id is S followed by nine digits."))],
    )
    country = models.CharField(
        max_length=2,
        blank=True,
        validators=[RegexValidator(r"^[A-Z]{2}$", _("Use a two-letter country code."))],
        help_text=_("Optional country suffix of the long id (S123456789_US)."),
    )
    title = models.CharField(max_length=150)
    description = models.TextField(blank=True)
    period = models.CharField(max_length=10, choices=Period.choices)
    price = models.DecimalField(max_digits=12, decimal_places=2, validators=[MinValueValidator(Decimal("0"))])
    currency = models.CharField(max_length=3, validators=[currency_validator])
    active = models.BooleanField(default=True)
    giftable = models.BooleanField(
        default=False, help_text=_("Can be bought as a gift. Only monthly, 3-, 6-month and yearly offers can.")
    )
    tags = models.JSONField(
        default=list,
        blank=True,
        help_text=_("Offers with the same set of tags give the same access (a gift extends such a subscription)."),
    )
    same_access_policy = models.CharField(
        _("when the recipient already has this access"),
        max_length=10,
        choices=SameAccessPolicy.choices,
        default=SameAccessPolicy.EXTEND,
        help_text=_(
            "What redeeming a gift of this offer does for a recipient who already holds a subscription with "
            "the same tags: extend it by the gift's period, or refuse the gift."
        ),
    )
    start_later_days = models.PositiveSmallIntegerField(
        _("start later: at most (days)"),
        default=90,
        help_text=_(
            "How far ahead a recipient starting a new subscription with a gift may set its start (0: at once)."
        ),
    )
    refund_window_days = models.PositiveSmallIntegerField(
        _("gifter refund window (days)"),
        default=14,
        help_text=_(
            "Days after purchase in which a gifter may withdraw an unredeemed gift and be refunded (0: never)."
        ),
    )
    claim_window_end = models.CharField(
        _("when a gift is not redeemed in time"),
        max_length=6,
        choices=ClaimWindowEnd.choices,
        default=ClaimWindowEnd.EXPIRE,
        help_text=_(
            "What its gifter gets back when a gift's claim window ends unredeemed: nothing, a refund through "
            "the payment gateway, or account credit that pays their next purchase or renewal."
        ),
    )
    stack_cap_months = models.PositiveSmallIntegerField(
        _("stacked access cap (months)"),
        null=True,
        blank=True,
        help_text=_(
            "A gift whose redemption would give its recipient access further ahead than this many months "
            "from today is refused (e.g. 18); empty: no cap."
        ),
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["title", "short_id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(giftable=False) | Q(period__in=GIFTABLE_PERIODS),
                name="offer_giftable_period",
                violation_error_message=_(
                    "Weekly and season offers cannot be sold as gifts: "
                    "only monthly, 3-month, 6-month and yearly offers can be giftable."
                ),
            ),
            models.CheckConstraint(condition=Q(period__in=Period.values), name="offer_period_valid"),
            models.CheckConstraint(condition=Q(price__gte=0), name="offer_price_not_negative"),
            models.CheckConstraint(
                condition=Q(same_access_policy__in=SameAccessPolicy.values), name="offer_same_access_policy_valid"
            ),
        ]

    def __str__(self):
        return f"{self.title} ({self.long_id})"

    @property
    def long_id(self):
        return f"{self.short_id}_{self.country}" if self.country else self.short_id

    @property
    def period_delta(self):
        return PERIOD_DELTAS[self.period]

    def term_end(self, start):
        return start + self.period_delta

    def length_in_words(self):
        """How long one term runs, e.g. "6 months"."""
        return PERIOD_WORDS[self.period][0]

    def term_in_words(self):
        """One term, as a gift gives it, e.g. "one 6-month term"."""
        return PERIOD_WORDS[self.period][1]

    def billed_in_words(self):
        """How often the price is charged, after the amount: "a week" ("2.99 USD a week"), "every 6 months"."""
        return PERIOD_WORDS[self.period][2]

    def gives_same_access_as(self, other):
        return set(self.tags) == set(other.tags)

    def clean(self):
        self.tags = normalize_tags(self.tags)
        if self.giftable and self.period not in GIFTABLE_PERIODS:
            raise ValidationError(
                {
                    # Translators: the period is the offer's billing period, lower-cased: "weekly", "season".
                    "giftable": gettext("A %(period)s offer cannot be sold as a gift.")
                    % {"period": self.get_period_display().lower()}
                }
            )


class Addon(models.Model):
    """An extra sold with an offer (Chargebee add-on), priced per unit on the invoice."""

    code = models.SlugField(max_length=50, unique=True, help_text=_("The id clients send (addons[id][i])."))
    name = models.CharField(max_length=150)
    description = models.TextField(blank=True)
    price = models.DecimalField(max_digits=12, decimal_places=2, validators=[MinValueValidator(Decimal("0"))])
    currency = models.CharField(max_length=3, validators=[currency_validator])
    active = models.BooleanField(default=True)
    offers = models.ManyToManyField(Offer, blank=True, help_text=_("Offers it can be sold with; none means all."))

    class Meta:
        ordering = ["name"]
        constraints = [models.CheckConstraint(condition=Q(price__gte=0), name="addon_price_not_negative")]

    def __str__(self):
        return self.name


class Coupon(models.Model):
    class DiscountType(models.TextChoices):
        PERCENT = "percent", _("Percentage")
        FIXED = "fixed", _("Fixed amount")

    code = models.CharField(max_length=50, unique=True, help_text=_("What customers type; matched ignoring case."))
    name = models.CharField(max_length=150)
    discount_type = models.CharField(max_length=10, choices=DiscountType.choices)
    percent_off = models.DecimalField(max_digits=5, decimal_places=2, null=True, blank=True)
    amount_off = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    currency = models.CharField(max_length=3, blank=True, validators=[currency_validator])
    valid_from = models.DateTimeField(null=True, blank=True)
    valid_until = models.DateTimeField(null=True, blank=True)
    max_redemptions = models.PositiveIntegerField(null=True, blank=True, help_text=_("Empty: unlimited."))
    redemptions = models.PositiveIntegerField(default=0, editable=False)
    active = models.BooleanField(default=True)
    offers = models.ManyToManyField(Offer, blank=True, help_text=_("Offers it applies to; none means all."))

    class Meta:
        ordering = ["code"]
        constraints = [
            models.UniqueConstraint(Upper("code"), name="coupon_code_unique_ignoring_case"),
            models.CheckConstraint(
                condition=(
                    Q(discount_type="percent", percent_off__gt=0, percent_off__lte=100, amount_off__isnull=True)
                    | Q(discount_type="fixed", amount_off__gt=0, percent_off__isnull=True)
                ),
                name="coupon_discount_matches_type",
                violation_error_message=_(
                    "A percentage coupon needs a percent off between 0 and 100 (and no "
                    "amount); a fixed coupon needs a positive amount off (and no percent)."
                ),
            ),
            models.CheckConstraint(
                condition=Q(discount_type="percent") | ~Q(currency=""),
                name="coupon_fixed_has_currency",
                violation_error_message=_("A fixed-amount coupon needs a currency."),
            ),
            models.CheckConstraint(
                condition=Q(valid_from__isnull=True) | Q(valid_until__isnull=True) | Q(valid_until__gt=F("valid_from")),
                name="coupon_validity_window",
                violation_error_message=_("The coupon must end after it starts."),
            ),
            models.CheckConstraint(
                condition=Q(max_redemptions__isnull=True) | Q(redemptions__lte=F("max_redemptions")),
                name="coupon_redemptions_within_max",
            ),
        ]

    def __str__(self):
        return self.code

    def is_valid_at(self, when):
        return (
            self.active
            and (self.valid_from is None or self.valid_from <= when)
            and (self.valid_until is None or when < self.valid_until)
            and not self.used_up
        )

    @property
    def used_up(self):
        return self.max_redemptions is not None and self.redemptions >= self.max_redemptions

    def discount_on(self, amount, currency):
        """The discount this coupon takes off `amount`, never more than the amount itself."""
        if self.discount_type == self.DiscountType.PERCENT:
            return quantize(amount * self.percent_off / 100)
        if self.currency != currency:
            return Decimal("0.00")
        return min(quantize(self.amount_off), quantize(amount))


# --- Quantity tiers (issue 18: gifts by the hundred) ---------------------------------------------------------------


class QuantityTier(models.Model):
    """A price break for buying an offer many times at once (a bulk gift list): from `min_quantity` gifts, the
    subtotal is `percent_off` lower. The highest tier reached applies; coupons come off what is left."""

    offer = models.ForeignKey(Offer, on_delete=models.CASCADE, related_name="quantity_tiers")
    min_quantity = models.PositiveIntegerField(validators=[MinValueValidator(2)], help_text=_("From this many gifts."))
    percent_off = models.DecimalField(max_digits=5, decimal_places=2, help_text=_("Off the subtotal, e.g. 10.00."))

    class Meta:
        ordering = ["offer", "min_quantity"]
        constraints = [
            models.UniqueConstraint(fields=["offer", "min_quantity"], name="quantity_tier_once_per_quantity"),
            models.CheckConstraint(
                condition=Q(percent_off__gt=0, percent_off__lte=100, min_quantity__gte=2),
                name="quantity_tier_sane",
                violation_error_message=_("A tier starts at 2 gifts or more and takes between 0 and 100 %% off."),
            ),
        ]

    def __str__(self):
        return f"{self.min_quantity}+ : -{self.percent_off} %"


def quantity_percent_off(offer, quantity):
    """The percentage the offer's quantity tiers take off `quantity` gifts (0 below the first tier)."""
    if quantity < 2 or offer.pk is None:
        return Decimal(0)
    tier = offer.quantity_tiers.filter(min_quantity__lte=quantity).order_by("-min_quantity").first()
    return tier.percent_off if tier else Decimal(0)
