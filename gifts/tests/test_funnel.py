"""The admin's gift funnel: per week of sale and offer, sold → delivered → opened → clicked → redeemed → converted,
each step's rate, the median waits, the CSV export of the same table, and who may see it."""

import csv
import io
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts.models import Transaction
from accounts.tests.factories import CustomerFactory, SubscriptionFactory
from emails.models import Email
from gifts.funnel import CSV_HEADER, funnel_report
from gifts.models import GiftStatus
from gifts.tests.factories import GiftFactory
from offers.tests.factories import OfferFactory

pytestmark = pytest.mark.django_db

MONDAY = datetime(2026, 5, 4, tzinfo=UTC)
NOW = MONDAY + timedelta(days=16, hours=12)  # Wed 20 May 2026
FUNNEL = "admin:gifts_gift_funnel"
EXPORT = "admin:gifts_gift_funnel_export"


def at(days, hours=10):
    return MONDAY + timedelta(days=days, hours=hours)


def sold(offer, when, *, status=GiftStatus.UNCLAIMED, **fields):
    return GiftFactory(offer=offer, created_at=when, scheduled_at=when, status=status, **fields)


def emailed(gift, n=0, **tracking):
    """A delivery email of the gift (n: 1 for a resend), with what the provider reported of it."""
    return Email.objects.create(
        key=f"gift:{gift.pk}:delivery:{n}",
        kind=Email.Kind.GIFT_DELIVERY,
        to_email=gift.recipient_email,
        gift=gift,
        status=Email.Status.SENT,
        sent_at=gift.sent_at,
        **tracking,
    )


def redeemed(gift, when):
    receiver = CustomerFactory()
    subscription = SubscriptionFactory(customer=receiver, offer=gift.offer, term_start=when)
    gift.status, gift.claimed_at, gift.receiver, gift.subscription = GiftStatus.CLAIMED, when, receiver, subscription
    gift.save(update_fields=["status", "claimed_at", "receiver", "subscription"])
    return subscription


def ledger(subscription, when, kind=Transaction.Kind.RENEWAL):
    return Transaction.objects.create(
        customer=subscription.customer,
        kind=kind,
        offer=subscription.offer,
        amount=Decimal("9.99"),
        currency="USD",
        target_type=Transaction.TargetType.SUBSCRIPTION,
        target_id=str(subscription.pk),
        occurred_at=when,
    )


@pytest.fixture
def three_weeks():
    """Gifts sold in the weeks of 4 and 18 May 2026 (and one the week before), seen on Wed 20 May."""
    monthly = OfferFactory(title="Monthly")
    yearly = OfferFactory(title="Yearly", period="year")

    early = sold(monthly, at(-6))  # Tue 28 April, before a 3-week window
    emailed(early, delivered_at=at(-6, 11))

    first = sold(monthly, at(0))  # delivered, opened after 1 h, clicked, redeemed, renewed for payment
    emailed(first, delivered_at=at(0, 11), opened_at=at(0, 12), clicked_at=at(0, 13))
    ledger(redeemed(first, at(1)), at(31))
    second = sold(monthly, at(0))  # opened after 3 h, redeemed with a typed code, its renewal came before the gift
    emailed(second, delivered_at=at(0, 11), opened_at=at(0, 14))
    ledger(redeemed(second, at(2)), at(0))
    third = sold(monthly, at(1))  # delivered only
    emailed(third, delivered_at=at(1, 11))
    resent = sold(monthly, at(1))  # the first email never reported; the resend was opened (so delivered too)
    emailed(resent)
    emailed(resent, 1, opened_at=at(2))
    declined = sold(monthly, at(1), status=GiftStatus.DECLINED, declined_at=at(2))
    emailed(declined, delivered_at=at(1, 11))
    sold(yearly, at(2), status=GiftStatus.SCHEDULED)  # not sent yet

    late = sold(monthly, at(14))  # Mon 18 May: redeemed after a day, not (yet) renewed
    emailed(late, delivered_at=at(14, 11), opened_at=at(14, 12), clicked_at=at(14, 12))
    redeemed(late, at(15, 11))
    return monthly, yearly


def counts(row):
    return [step.count for step in row.steps] + [row.declined]


def test_it_counts_each_step_per_week_of_sale_and_offer_newest_week_first(three_weeks):
    funnel = funnel_report(weeks=3, now=NOW)

    assert [(row.week, row.offer_title) for row in funnel.rows] == [
        (MONDAY + timedelta(weeks=2), "Monthly"),
        (MONDAY, "Monthly"),
        (MONDAY, "Yearly"),
    ]
    #                    sold  deliv opened clicked redeemed converted declined
    assert [counts(row) for row in funnel.rows] == [
        [1, 1, 1, 1, 1, 0, 0],
        [5, 5, 3, 1, 2, 1, 1],
        [1, 0, 0, 0, 0, 0, 0],
    ]
    assert [step.count for step in funnel.totals] == [7, 6, 4, 2, 3, 1]


def test_it_rates_each_step_by_the_step_before_it(three_weeks):
    row = funnel_report(weeks=3, now=NOW).rows[1]

    assert [step.rate for step in row.steps] == [
        None,
        Decimal("1.000"),
        Decimal("0.600"),
        Decimal("0.333"),
        Decimal("2.000"),  # a typed code redeems without a click
        Decimal("0.500"),
    ]
    assert [step.rate_display for step in row.steps] == ["", "100.0%", "60.0%", "33.3%", "200.0%", "50.0%"]
    yearly = funnel_report(weeks=3, now=NOW).rows[2]
    assert [step.rate_display for step in yearly.steps][1:3] == ["0.0%", "—"]  # nothing delivered to open


def test_it_counts_as_converted_only_a_renewal_of_the_gifts_subscription_after_the_redemption():
    offer = OfferFactory()
    gifts = [sold(offer, at(0)) for _ in range(5)]
    renewed, renewed_before, purchased, other, unredeemed = gifts
    ledger(redeemed(renewed, at(1)), at(31))
    ledger(redeemed(renewed_before, at(1)), at(0, 12))  # the paying term the gift then extended
    ledger(redeemed(purchased, at(1)), at(2), kind=Transaction.Kind.PURCHASE)
    redeemed(other, at(1))
    ledger(SubscriptionFactory(offer=offer), at(31))  # somebody else's renewal

    [row] = funnel_report(weeks=1, now=at(3)).rows

    assert (row.redeemed, row.converted) == (4, 1)
    assert unredeemed.claimed_at is None


def test_it_gives_the_median_waits_from_the_first_reported_delivery_to_open_and_to_redeem(three_weeks):
    rows = funnel_report(weeks=3, now=NOW).rows

    assert [(row.median_to_open, row.median_to_redeem) for row in rows] == [
        (timedelta(hours=1), timedelta(days=1)),
        (timedelta(hours=2), timedelta(days=1, hours=11)),  # opens after 1 h and 3 h; redeemed after 23 h and 47 h
        (None, None),  # nothing delivered yet
    ]
    assert [(row.median_to_open_display, row.median_to_redeem_display) for row in rows] == [
        ("1h 0m", "1d 0h 0m"),
        ("2h 0m", "1d 11h 0m"),
        ("—", "—"),
    ]


def test_it_filters_by_offer_and_reaches_back_as_many_weeks_as_asked(three_weeks):
    monthly, yearly = three_weeks

    assert [row.offer_title for row in funnel_report(weeks=3, offer=yearly, now=NOW).rows] == ["Yearly"]
    four = funnel_report(weeks=4, offer=monthly, now=NOW).rows
    assert [row.week for row in four] == [MONDAY + timedelta(weeks=2), MONDAY, MONDAY - timedelta(weeks=1)]
    assert counts(four[-1]) == [1, 1, 0, 0, 0, 0, 0]


def test_it_draws_the_chart_from_the_totals_in_proportion_to_the_gifts_sold(three_weeks):
    funnel = funnel_report(weeks=3, now=NOW)

    assert [(bar.label, bar.count, bar.width) for bar in funnel.chart] == [
        ("Sold", 7, 420),
        ("Delivered", 6, 360),
        ("Opened", 4, 240),
        ("Clicked", 2, 120),
        ("Redeemed", 3, 180),
        ("Converted", 1, 60),
    ]
    assert funnel.chart_description.startswith("Sold 7; Delivered 6 (85.7%); Opened 4 (66.7%)")


def test_it_runs_the_same_queries_for_few_or_many_gifts():
    offer = OfferFactory()
    for day in range(3):
        emailed(sold(offer, at(day)), delivered_at=at(day, 11))
    with CaptureQueriesContext(connection) as few:
        funnel_report(weeks=3, now=NOW)
    for day in range(30):
        gift = sold(OfferFactory(), at(day % 16))
        emailed(gift, delivered_at=at(day % 16, 11), opened_at=at(day % 16, 12))
        ledger(redeemed(gift, at(day % 16, 13)), at(40))
    with CaptureQueriesContext(connection) as many:
        funnel = funnel_report(weeks=3, now=NOW)

    assert funnel.totals[0].count == 33 and funnel.totals[-1].count == 30
    assert len(few) == len(many) <= 5  # JIT off (in a savepoint here), the grouped funnel, the offers


# --- the admin page and its CSV -------------------------------------------------------------------------


@pytest.fixture
def superuser_client(client):
    client.force_login(CustomerFactory(is_staff=True, is_superuser=True))
    return client


def test_it_shows_the_funnel_table_chart_and_definitions(superuser_client, three_weeks, time_machine):
    time_machine.move_to(NOW, tick=False)

    response = superuser_client.get(reverse(FUNNEL), {"weeks": 4})

    assert response.status_code == 200
    body = response.content.decode()
    assert "Converted: of the redeemed gifts" in body
    assert body.count('<tr>\n    <th scope="row">') == 4  # three weeks with sales (28 April's too), four rows
    assert 'role="img"' in body and '<desc id="funnel-chart-desc">Sold 8;' in body
    assert "<script" not in body.split('id="content"')[1]  # nothing inline for the Content-Security-Policy to refuse
    assert 'href="/admin/gifts/gift/funnel.csv?weeks=4"' in body


def test_it_says_when_no_gift_was_sold_in_the_weeks_shown(superuser_client):
    body = superuser_client.get(reverse(FUNNEL)).content.decode()

    assert 'id="no-funnel"' in body and "No gift was sold in the last 8 weeks." in body
    assert 'id="funnel-chart"' not in body


def test_it_ignores_filters_it_does_not_know(superuser_client):
    response = superuser_client.get(reverse(FUNNEL), {"weeks": "1000", "offer": "nope"})

    assert response.status_code == 200
    assert "No gift was sold in the last 8 weeks." in response.content.decode()


def read_csv(response):
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="gift-funnel-')
    return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))


def test_it_exports_the_same_table_as_csv_one_row_per_week_and_offer(superuser_client, three_weeks, time_machine):
    monthly, _yearly = three_weeks
    time_machine.move_to(NOW, tick=False)

    rows = read_csv(superuser_client.get(reverse(EXPORT), {"weeks": 3, "offer": monthly.pk}))

    assert rows[0] == CSV_HEADER
    week_18 = ["1", "1", "1", "1", "1", "0", "1.000", "1.000", "1.000", "1.000", "0.000", "0", "1.0", "24.0"]
    week_4 = ["5", "5", "3", "1", "2", "1", "1.000", "0.600", "0.333", "2.000", "0.500", "1", "2.0", "35.0"]
    assert rows[1:] == [
        ["2026-05-18", monthly.long_id, "Monthly", *week_18],
        ["2026-05-04", monthly.long_id, "Monthly", *week_4],
    ]


def test_the_csv_of_no_sale_is_its_header(superuser_client):
    assert read_csv(superuser_client.get(reverse(EXPORT))) == [CSV_HEADER]


@pytest.mark.parametrize("page", [FUNNEL, EXPORT])
def test_it_sends_anonymous_visitors_and_customers_to_the_admin_login(client, page):
    assert client.get(reverse(page)).status_code == 302
    client.force_login(CustomerFactory())
    assert client.get(reverse(page)).status_code == 302


@pytest.mark.parametrize("page", [FUNNEL, EXPORT])
def test_it_refuses_staff_without_the_gift_view_permission(client, page):
    staff = CustomerFactory(is_staff=True)
    client.force_login(staff)
    assert client.get(reverse(page)).status_code == 403

    staff.user_permissions.add(Permission.objects.get(content_type__app_label="gifts", codename="view_gift"))
    assert client.get(reverse(page)).status_code == 200


def test_it_links_the_funnel_from_the_dashboard(superuser_client):
    body = superuser_client.get(reverse("admin:gifts_gift_dashboard")).content.decode()

    assert f'href="{reverse(FUNNEL)}"' in body
