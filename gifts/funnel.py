"""The admin's gift funnel: per ISO week of sale and offer, how many gifts were sold, delivered, opened, clicked,
redeemed and converted to a paying subscription, each step's rate, the median waits, a chart and a CSV export of the
same table. Built from one grouped query (the window's gifts joined to their delivery emails) however many gifts."""

import csv
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from django.db import connection, transaction
from django.db.models import Aggregate, CharField, Count, DurationField, Exists, F, FilteredRelation, OuterRef, Q
from django.db.models.functions import Cast, TruncWeek
from django.utils import timezone
from django.utils.translation import gettext_lazy

from accounts.models import Transaction
from emails.models import Email
from gifts.models import Gift, GiftStatus
from gifts.reports import WEEK, Echo, csv_cell, duration_display, median, week_start
from offers.models import Offer

FUNNEL_WEEKS = 8
MAX_WEEKS = 52
# (attribute, label): each step's rate is of the step before it.
STEPS = [
    ("sold", gettext_lazy("Sold")),
    ("delivered", gettext_lazy("Delivered")),
    ("opened", gettext_lazy("Opened")),
    ("clicked", gettext_lazy("Clicked")),
    ("redeemed", gettext_lazy("Redeemed")),
    ("converted", gettext_lazy("Converted")),
]
FUNNEL_DEFINITIONS = [
    gettext_lazy(
        "Rows: the gifts sold (paid for) in the ISO week (Monday 00:00 UTC onwards) of each offer; every later step "
        "counts those same gifts, whenever the step happened, so a recent week's numbers still grow."
    ),
    gettext_lazy(
        "Delivered, opened, clicked: the email provider reported that a delivery email of the gift (the first one or a "
        "resend) reached the recipient's server, was opened, or had its link clicked. An open proves delivery and a "
        "click proves both, so each step includes the next."
    ),
    gettext_lazy(
        "Redeemed: the gift was claimed (with its link, a typed code or automatically), so it may exceed Clicked. "
        "Declined: the recipient said no thanks; shown beside the funnel, not as a step."
    ),
    gettext_lazy(
        "Converted: of the redeemed gifts, those whose subscription (the one the gift started or extended) was renewed "
        "for payment after the redemption: the ledger holds a renewal (a card charged by the renewal engine) for it, "
        "dated after the claim. A subscription outlives the gift's term only through such a renewal or another gift, "
        "so this is the share still subscribed, and paying, after the gift's term."
    ),
    gettext_lazy(
        "Rate: each step ÷ the step before it (Delivered ÷ Sold, …, Converted ÷ Redeemed); — when the step before is 0."
    ),
    gettext_lazy(
        "Median time to open: over the week's delivery emails reported both delivered and opened, the median of the "
        "open minus the delivery. Median time to redeem: over the redeemed gifts' delivery emails reported delivered, "
        "the median of the redemption minus the delivery (a gift whose resend was delivered too counts once per email)."
    ),
]
# The steps' names, not their (translated) labels: the CSV's columns stay in English for the programs reading it.
CSV_HEADER = [
    "week",
    "offer id",
    "offer title",
    *(name for name, _label in STEPS),
    *(f"{name} rate" for name, _label in STEPS[1:]),
    "declined",
    "median hours to open",
    "median hours to redeem",
]


class Median(Aggregate):
    """PostgreSQL's percentile_cont(0.5), which takes intervals too and leaves NULLs out."""

    function = "percentile_cont"
    template = "%(function)s(0.5) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = DurationField()


@dataclass
class FunnelStep:
    name: str
    label: str
    count: int
    rate: Decimal | None  # of the step before; None for the first step or when the step before is 0

    @property
    def rate_display(self):
        return "" if self.name == "sold" else ("—" if self.rate is None else f"{self.rate * 100:.1f}%")


@dataclass
class FunnelRow:
    week: datetime  # its Monday, 00:00 UTC
    offer_id: str
    offer_title: str
    sold: int = 0
    delivered: int = 0
    opened: int = 0
    clicked: int = 0
    redeemed: int = 0
    converted: int = 0
    declined: int = 0
    median_to_open: timedelta | None = None
    median_to_redeem: timedelta | None = None
    steps: list[FunnelStep] = field(default_factory=list)

    def __post_init__(self):
        self.steps = funnel_steps(self)

    @property
    def median_to_open_display(self):
        return duration_display(self.median_to_open)

    @property
    def median_to_redeem_display(self):
        return duration_display(self.median_to_redeem)


@dataclass
class ChartBar:
    label: str
    count: int
    rate_display: str
    y: int
    width: int  # of CHART_BAR_SPACE, in proportion to the sold count


@dataclass
class Funnel:
    weeks: int
    offer: Offer | None
    rows: list[FunnelRow]
    totals: list[FunnelStep]
    chart: list[ChartBar]

    @property
    def chart_description(self):
        return "; ".join(
            f"{s.label} {s.count}" + (f" ({s.rate_display})" if s.rate_display else "") for s in self.totals
        )


CHART_BAR_SPACE = 420
CHART_ROW = 32


def _rate(count, before):
    return (Decimal(count) / before).quantize(Decimal("0.001"), ROUND_HALF_UP) if before else None


def funnel_steps(counts):
    steps, before = [], None
    for name, label in STEPS:
        count = getattr(counts, name)
        steps.append(FunnelStep(name, label, count, None if before is None else _rate(count, before)))
        before = count
    return steps


def _funnel_gifts(start, end, offer):
    """The window's gifts joined to their delivery emails (one row per email: a resend is another; a gift not sent
    yet has one row of NULLs), each marked with whether it converted."""
    # The payer of a renewal is the subscription's customer, who is the gift's receiver (the claim makes them so):
    # naming them lets the ledger's (customer, occurred_at) index find the rows, as target_id has no index.
    renewals = Transaction.objects.filter(
        customer=OuterRef("receiver_id"),
        kind=Transaction.Kind.RENEWAL,
        target_type=Transaction.TargetType.SUBSCRIPTION,
        target_id=Cast(OuterRef("subscription_id"), CharField()),
        occurred_at__gt=OuterRef("claimed_at"),
    )
    gifts = Gift.objects.filter(created_at__gte=start, created_at__lt=end)
    if offer is not None:
        gifts = gifts.filter(offer=offer)
    return gifts.annotate(
        delivery=FilteredRelation("emails", condition=Q(emails__kind=Email.Kind.GIFT_DELIVERY)),
        week=TruncWeek("created_at", tzinfo=UTC),
        converted=Exists(renewals),
    )


def funnel_report(*, weeks=FUNNEL_WEEKS, offer=None, now=None):
    """The funnel of the gifts sold in the last `weeks` ISO weeks (the current one included), one row per week and
    offer that sold any, newest week first, then by offer title; the totals over them and the chart's bars."""
    end = week_start(now or timezone.now()) + WEEK
    start = end - weeks * WEEK
    gifts = _funnel_gifts(start, end, offer)
    to_open = F("delivery__opened_at") - F("delivery__delivered_at")
    to_redeem = F("claimed_at") - F("delivery__delivered_at")
    postgres = connection.vendor == "postgresql"
    medians = {"median_to_open": Median(to_open), "median_to_redeem": Median(to_redeem)} if postgres else {}
    # An open proves delivery and a click proves both, whatever the provider reported first (or lost).
    clicked = Q(delivery__clicked_at__isnull=False)
    opened = clicked | Q(delivery__opened_at__isnull=False)
    delivered = opened | Q(delivery__delivered_at__isnull=False)
    redeemed = Q(claimed_at__isnull=False)
    grouped = (
        gifts.values("week", "offer")
        .annotate(
            sold=Count("pk", distinct=True),  # distinct, as a resent gift has two rows
            delivered=Count("pk", distinct=True, filter=delivered),
            opened=Count("pk", distinct=True, filter=opened),
            clicked=Count("pk", distinct=True, filter=clicked),
            redeemed=Count("pk", distinct=True, filter=redeemed),
            converted=Count("pk", distinct=True, filter=redeemed & Q(converted=True)),
            declined=Count("pk", distinct=True, filter=Q(status=GiftStatus.DECLINED)),
            **medians,
        )
        .order_by()
    )
    with transaction.atomic():
        if postgres:
            # The planner costs this query high (the EXISTS per row), so PostgreSQL's JIT compiles it, optimised and
            # inlined: 3 s at 100,000 gifts, for a query that then runs in a fraction of that (bench/funnel.py).
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL jit = off")
        counts = list(grouped)
    if not postgres:
        _medians_in_python(gifts, counts)
    offers = Offer.objects.in_bulk({row["offer"] for row in counts})
    rows = []
    for row in counts:
        offer_row = offers[row.pop("offer")]
        rows.append(FunnelRow(offer_id=offer_row.long_id, offer_title=offer_row.title, **row))
    rows.sort(key=lambda row: (row.offer_title, row.offer_id))
    rows.sort(key=lambda row: row.week, reverse=True)
    totals = funnel_steps(_Totals(rows))
    return Funnel(weeks=weeks, offer=offer, rows=rows, totals=totals, chart=_chart(totals))


class _Totals:
    def __init__(self, rows):
        for name, _label in STEPS:
            setattr(self, name, sum(getattr(row, name) for row in rows))


def _medians_in_python(gifts, counts):
    """SQLite (the demo's database) has no percentile_cont: the waits are read (three values per delivered email of
    the window, which a demo's few gifts keep small) and their medians taken here."""
    opens, redemptions = {}, {}
    values = gifts.filter(delivery__delivered_at__isnull=False).values_list(
        "week", "offer", "delivery__delivered_at", "delivery__opened_at", "claimed_at"
    )
    for week, offer, delivered, opened, claimed in values:
        if opened is not None:
            opens.setdefault((week, offer), []).append(opened - delivered)
        if claimed is not None:
            redemptions.setdefault((week, offer), []).append(claimed - delivered)
    for row in counts:
        key = (row["week"], row["offer"])
        row["median_to_open"] = median(opens[key]) if key in opens else None
        row["median_to_redeem"] = median(redemptions[key]) if key in redemptions else None


def _chart(totals):
    sold = totals[0].count
    return [
        ChartBar(
            label=step.label,
            count=step.count,
            rate_display=step.rate_display,
            y=index * CHART_ROW,
            width=round(CHART_BAR_SPACE * step.count / sold) if sold else 0,
        )
        for index, step in enumerate(totals)
    ]


# --- CSV export -----------------------------------------------------------------------------------------


def funnel_csv_rows(funnel):
    yield CSV_HEADER
    for row in funnel.rows:
        rates = [step.rate for step in row.steps[1:]]
        hours = [
            None if wait is None else round(wait.total_seconds() / 3600, 2)
            for wait in (row.median_to_open, row.median_to_redeem)
        ]
        yield [
            csv_cell(row.week.date().isoformat()),
            csv_cell(row.offer_id),
            csv_cell(row.offer_title),
            *(step.count for step in row.steps),
            *("" if rate is None else str(rate) for rate in rates),
            row.declined,
            *("" if value is None else value for value in hours),
        ]


def funnel_csv_lines(funnel):
    writer = csv.writer(Echo())
    return (writer.writerow(row) for row in funnel_csv_rows(funnel))
