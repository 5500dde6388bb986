"""Read-only reports for the admin: the weekly gift dashboard (with the state of code guessing), the CSV export of
gifts and the beat schedule."""

import csv
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal

from django.conf import settings
from django.db.models import Count, F, Q, Sum
from django.db.models.functions import TruncWeek
from django.utils import timezone
from django.utils.translation import gettext, gettext_lazy

from gifts.models import Gift
from giftshop import ratelimit
from giftshop.money import quantize
from offers.models import Offer

WEEK = timedelta(weeks=1)
DASHBOARD_WEEKS = 8  # how far back the dashboard looks
RATE_DEFINITION = gettext_lazy(
    "Redemption rate: of the gifts delivered in the week, the share redeemed so far "
    "(whenever that was), i.e. redeemed ÷ delivered over the same gifts."
)
MEDIAN_DEFINITION = gettext_lazy(
    "Median time to redeem: over the gifts redeemed in the week, the median of redemption time minus delivery "
    "time (an auto-claimed gift counts as zero; one claimed before it was ever delivered is left out)."
)
REVENUE_DEFINITION = gettext_lazy(
    "Revenue: the totals of the invoices of the gifts sold in the week, less what was refunded on them since, "
    "per offer and currency. Gifts without an invoice are not counted."
)
DEFINITIONS = [RATE_DEFINITION, MEDIAN_DEFINITION, REVENUE_DEFINITION]


@dataclass
class OfferRevenue:
    offer_id: str
    title: str
    currency: str
    amount: Decimal


@dataclass
class DashboardWeek:
    """One ISO week (Monday 00:00 UTC onwards). Each count is of the gifts whose event fell in the week."""

    start: datetime
    sold: int = 0
    delivered: int = 0
    redeemed: int = 0
    expired: int = 0
    delivered_and_redeemed: int = 0  # of the gifts delivered this week, those redeemed by now
    median_time_to_redeem: timedelta | None = None
    revenue: list[OfferRevenue] = field(default_factory=list)

    @property
    def end(self):
        return self.start + WEEK

    @property
    def is_empty(self):
        return not (self.sold or self.delivered or self.redeemed or self.expired or self.revenue)

    @property
    def redemption_rate(self) -> Decimal | None:
        if not self.delivered:
            return None
        return (Decimal(self.delivered_and_redeemed) / self.delivered).quantize(Decimal("0.001"), ROUND_HALF_UP)

    @property
    def redemption_display(self):
        rate = self.redemption_rate
        if rate is None:
            return "—"
        values = {"rate": f"{rate * 100:.1f}%", "redeemed": self.delivered_and_redeemed, "delivered": self.delivered}
        return gettext("%(rate)s (%(redeemed)s of %(delivered)s)") % values

    @property
    def median_display(self):
        return duration_display(self.median_time_to_redeem)


def duration_display(value):
    """A wait as the dashboards show it: "4d 3h 0m", "6h 0m"; "—" for none."""
    if value is None:
        return "—"
    minutes = int(value.total_seconds()) // 60
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    return f"{days}d {hours}h {minutes}m" if days else f"{hours}h {minutes}m"


def week_start(when):
    monday = when.astimezone(UTC).date() - timedelta(days=when.astimezone(UTC).weekday())
    return datetime.combine(monday, time.min, tzinfo=UTC)


def median(values):
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def _weekly_counts(field_name, start, end, **extra):
    """{week start: row} for the gifts whose `field_name` falls in [start, end): one grouped query."""
    rows = (
        Gift.objects.filter(**{f"{field_name}__gte": start, f"{field_name}__lt": end})
        .annotate(week=TruncWeek(field_name, tzinfo=UTC))
        .values("week")
        .annotate(count=Count("pk"), **extra)
        .order_by("week")
    )
    return {row["week"]: row for row in rows}


def gift_dashboard(*, weeks=DASHBOARD_WEEKS, now=None):
    """The last `weeks` ISO weeks up to and including the current one, newest first, leaving out the weeks in which
    nothing happened (no sale, delivery, redemption or expiry). At most seven queries, however
    many gifts: four grouped counts, the (delivery, redemption) times of the window's redemptions for the medians,
    the revenue sums and their offers."""
    end = week_start(now or timezone.now()) + WEEK
    start = end - weeks * WEEK
    table = {start + i * WEEK: DashboardWeek(start=start + i * WEEK) for i in range(weeks)}

    for week, row in _weekly_counts("created_at", start, end).items():
        table[week].sold = row["count"]
    delivered = _weekly_counts("sent_at", start, end, redeemed=Count("pk", filter=Q(claimed_at__isnull=False)))
    for week, row in delivered.items():
        table[week].delivered, table[week].delivered_and_redeemed = row["count"], row["redeemed"]
    for week, row in _weekly_counts("claimed_at", start, end).items():
        table[week].redeemed = row["count"]
    for week, row in _weekly_counts("expired_at", start, end).items():
        table[week].expired = row["count"]

    # In Python rather than percentile_cont, which SQLite (the demo's database) lacks; two timestamps per gift
    # redeemed in the window is a small, bounded read.
    waits = {}
    redemptions = Gift.objects.filter(claimed_at__gte=start, claimed_at__lt=end, sent_at__isnull=False)
    for claimed_at, sent_at in redemptions.values_list("claimed_at", "sent_at"):
        waits.setdefault(week_start(claimed_at), []).append(claimed_at - sent_at)
    for week, values in waits.items():
        table[week].median_time_to_redeem = median(values)

    # A purchase raises one invoice per gift, so summing over gifts counts each invoice once.
    revenue = (
        Gift.objects.filter(created_at__gte=start, created_at__lt=end, invoice__isnull=False)
        .annotate(week=TruncWeek("created_at", tzinfo=UTC))
        .values("week", "offer", "invoice__currency")
        .annotate(amount=Sum(F("invoice__total") - F("invoice__amount_refunded")))
        .order_by("week", "offer__title", "offer", "invoice__currency")
    )
    offers = Offer.objects.in_bulk({row["offer"] for row in revenue})
    for row in revenue:
        offer = offers[row["offer"]]
        table[row["week"]].revenue.append(
            OfferRevenue(offer.long_id, offer.title, row["invoice__currency"], quantize(row["amount"]))
        )
    return [week for week in reversed(table.values()) if not week.is_empty]


# --- CSV export -----------------------------------------------------------------------------------------

CSV_HEADER = [
    "id",
    "status",
    "offer id",
    "offer title",
    "gifter email",
    "recipient email",
    "code",
    "scheduled at",
    "sent at",
    "claimed at",
    "expired at",
    "cancelled at",
    "invoice total",
    "currency",
]
# What a spreadsheet would run as a formula (OWASP's CSV injection list); such cells are exported quoted by a '.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value):
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    value = str(value)
    return f"'{value}" if value.startswith(FORMULA_STARTS) else value


def gifts_csv_rows(queryset):
    """The header, then one row per gift, read in chunks with a server-side cursor. Only the masked code: the
    nonce the full code derives from is never even loaded."""
    yield CSV_HEADER
    gifts = (
        queryset.select_related("offer", "gifter", "invoice")
        .only(
            "status",
            "recipient_email",
            "code_last4",
            "scheduled_at",
            "sent_at",
            "claimed_at",
            "expired_at",
            "cancelled_at",
            "offer__short_id",
            "offer__country",
            "offer__title",
            "gifter__email",
            "invoice__total",
            "invoice__currency",
        )
        .order_by("pk")
    )
    for gift in gifts.iterator(chunk_size=1000):
        invoice = gift.invoice
        row = [
            gift.pk,
            gift.status,
            gift.offer.long_id,
            gift.offer.title,
            gift.gifter.email,
            gift.recipient_email,
            gift.masked_code,
            gift.scheduled_at,
            gift.sent_at,
            gift.claimed_at,
            gift.expired_at,
            gift.cancelled_at,
            invoice and invoice.total,
            invoice and invoice.currency,
        ]
        yield [csv_cell(value) for value in row]


class Echo:
    """A file whose write() returns what it is given, so csv.writer yields lines instead of buffering them."""

    def write(self, value):
        return value


def gifts_csv_lines(queryset):
    writer = csv.writer(Echo())
    return (writer.writerow(row) for row in gifts_csv_rows(queryset))


# --- beat schedule --------------------------------------------------------------------------------------


@dataclass
class BeatEntry:
    name: str
    task: str
    every: str
    options: str


def _every(schedule):
    seconds = schedule.total_seconds() if isinstance(schedule, timedelta) else schedule
    if isinstance(seconds, int | float):
        return gettext("every %(seconds)s seconds") % {
            "seconds": int(seconds) if float(seconds).is_integer() else seconds
        }
    run_every = getattr(schedule, "run_every", None)  # celery.schedules.schedule
    return _every(run_every) if run_every is not None else str(schedule)  # a crontab, as written


def beat_schedule():
    """settings.CELERY_BEAT_SCHEDULE as rows, in the order it is written."""
    return [
        BeatEntry(
            name=name,
            task=entry["task"],
            every=_every(entry["schedule"]),
            options=", ".join(f"{key}={value}" for key, value in entry.get("options", {}).items()) or "—",
        )
        for name, entry in settings.CELERY_BEAT_SCHEDULE.items()
    ]


@dataclass
class CodeGuessing:
    """Failed typed gift codes in the current global window, against the budget; the pause it triggers."""

    failures: int
    budget: int
    window_minutes: int
    paused_minutes: int  # 0: typed codes are accepted


def code_guessing():
    paused = ratelimit.paused_for("gift-code")
    return CodeGuessing(
        failures=ratelimit.failures("gift-code"),
        budget=settings.GIFT_CODE_GLOBAL_FAILURE_LIMIT,
        window_minutes=settings.GIFT_CODE_GLOBAL_FAILURE_WINDOW // 60,
        paused_minutes=-(-paused // 60),  # rounded up
    )
