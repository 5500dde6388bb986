"""The admin's gift dashboard (weekly sales, deliveries, redemptions, expiries, rate, median wait and revenue),
the CSV export of gifts and the beat schedule page."""

import csv
import io
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts.tests.factories import CustomerFactory
from billing.models import Invoice
from billing.services import invoice_create
from gifts import codes, services
from gifts.models import GiftStatus
from gifts.reports import CSV_HEADER, DashboardWeek, OfferRevenue, gift_dashboard
from gifts.tests.factories import GiftFactory, GuestFactory, make_gift
from offers.tests.factories import OfferFactory

pytestmark = pytest.mark.django_db

MONDAY = datetime(2026, 5, 4, tzinfo=UTC)
DASHBOARD = "admin:gifts_gift_dashboard"
BEAT = "admin:gifts_gift_beat_schedule"
EXPORT = "admin:gifts_gift_export"


def at(days, hours=10):
    return MONDAY + timedelta(days=days, hours=hours)


@pytest.fixture
def shop(time_machine):
    """Moves the clock to each step as it happens, passing the same `now` to the services."""

    class Shop:
        def sell(self, offer, when, *, invoiced=True, **fields):
            time_machine.move_to(when, tick=False)
            gifter = GuestFactory()
            invoice = invoice_create(customer=gifter, offer=offer, is_gifted=True, paid_at=when) if invoiced else None
            return make_gift(gifter=gifter, offer=offer, invoice=invoice, now=when, **fields)

        def deliver(self, when):
            time_machine.move_to(when, tick=False)
            return services.deliver_due_gifts(now=when)

        def redeem(self, gift, when):
            time_machine.move_to(when, tick=False)
            services.gift_redeem(customer=CustomerFactory(), code=gift.code, now=when)

        def expire(self, when):
            time_machine.move_to(when, tick=False)
            return services.expire_due_gifts(now=when)

    return Shop()


@pytest.fixture
def three_weeks(shop):
    """Gifts over the weeks of 4, 11 and 18 May 2026 (and one sold the week before), seen on Wed 20 May."""
    monthly = OfferFactory(title="Monthly", price=Decimal("9.99"), currency="USD")
    yearly = OfferFactory(title="Yearly", period="year", price=Decimal("50.00"), currency="EUR")

    early = shop.sell(monthly, at(-6), invoiced=False)  # Tue 28 April, before the window
    assert shop.deliver(at(-6)) == 1
    first, second = shop.sell(monthly, at(0)), shop.sell(monthly, at(0))
    shop.sell(yearly, at(0), claim_expiry_date=at(9))  # lapses unredeemed on Wed 13 May
    assert shop.deliver(at(0)) == 3
    shop.redeem(early, at(1))  # 7 days after delivery
    shop.redeem(first, at(2))  # 2 days

    later = shop.sell(monthly, at(7, 9), scheduled_at=at(15, 9))  # Mon 11 May, for Tue 19 May
    quick = shop.sell(monthly, at(8), invoiced=False)
    assert shop.deliver(at(8)) == 1
    shop.redeem(second, at(8))  # 8 days
    shop.redeem(quick, at(8, 16))  # 6 hours
    assert shop.expire(at(9, 12)) == 1

    assert shop.deliver(at(15, 9)) == 1
    shop.redeem(later, at(16, 9))  # 1 day
    shop.sell(yearly, at(16, 11), scheduled_at=at(30))
    Invoice.objects.filter(pk=second.invoice_id).update(amount_refunded=Decimal("4.99"))
    return monthly, yearly


def oldest_first(**options):
    """The dashboard's weeks (newest first, as shown) in date order, as the sums below read best."""
    return gift_dashboard(**options)[::-1]


def test_it_counts_each_weeks_sales_deliveries_redemptions_and_expiries(three_weeks):
    weeks = oldest_first(weeks=3, now=at(16, 12))

    assert [week.start for week in weeks] == [MONDAY, MONDAY + timedelta(weeks=1), MONDAY + timedelta(weeks=2)]
    assert [(w.sold, w.delivered, w.redeemed, w.expired) for w in weeks] == [(3, 3, 2, 0), (2, 1, 2, 1), (1, 1, 1, 0)]


def test_it_rates_each_weeks_deliveries_by_how_many_were_redeemed_since(three_weeks):
    weeks = oldest_first(weeks=3, now=at(16, 12))

    assert [week.redemption_rate for week in weeks] == [Decimal("0.667"), Decimal("1.000"), Decimal("1.000")]
    assert weeks[0].redemption_display == "66.7% (2 of 3)"
    assert DashboardWeek(start=MONDAY, sold=1).redemption_rate is None  # nothing delivered that week


def test_it_gives_the_median_wait_from_delivery_to_redemption_of_each_weeks_redemptions(three_weeks):
    weeks = oldest_first(weeks=3, now=at(16, 12))

    assert [week.median_time_to_redeem for week in weeks] == [
        timedelta(days=4, hours=12),  # 7 and 2 days
        timedelta(days=4, hours=3),  # 8 days and 6 hours
        timedelta(days=1),
    ]
    assert [week.median_display for week in weeks] == ["4d 12h 0m", "4d 3h 0m", "1d 0h 0m"]


def test_it_sums_revenue_net_of_refunds_per_offer_and_currency_by_week_sold(three_weeks):
    monthly, yearly = three_weeks
    weeks = oldest_first(weeks=3, now=at(16, 12))

    assert [week.revenue for week in weeks] == [
        [
            OfferRevenue(monthly.long_id, "Monthly", "USD", Decimal("14.99")),  # 9.99 + 9.99 - 4.99 refunded
            OfferRevenue(yearly.long_id, "Yearly", "EUR", Decimal("50.00")),
        ],
        [OfferRevenue(monthly.long_id, "Monthly", "USD", Decimal("9.99"))],
        [OfferRevenue(yearly.long_id, "Yearly", "EUR", Decimal("50.00"))],
    ]
    assert all(isinstance(line.amount, Decimal) for week in weeks for line in week.revenue)


def test_it_starts_weeks_on_monday_in_utc_and_counts_the_week_before_only_when_asked(three_weeks):
    weeks = oldest_first(weeks=4, now=at(16, 12))

    assert weeks[0].start == datetime(2026, 4, 27, tzinfo=UTC)
    assert (weeks[0].sold, weeks[0].delivered, weeks[0].redeemed, weeks[0].redemption_rate) == (1, 1, 0, 1)
    assert gift_dashboard(weeks=1, now=datetime(2026, 5, 10, 23, 59, tzinfo=UTC))[0].start == MONDAY


def test_it_shows_the_newest_week_first_and_leaves_out_weeks_without_any_gift_activity(shop):
    offer = OfferFactory()
    shop.sell(offer, at(0))  # sold, not delivered (scheduled for later): activity all the same
    shop.sell(offer, at(14), scheduled_at=at(40))

    weeks = gift_dashboard(weeks=4, now=at(20))

    assert [week.start for week in weeks] == [MONDAY + timedelta(weeks=2), MONDAY]  # not the empty week between
    assert [week.sold for week in weeks] == [1, 1]
    assert gift_dashboard(weeks=1, now=at(30)) == []  # nothing happened in the week of 1 June


def populate(count, now):
    gifter, offers = GuestFactory(), [OfferFactory(), OfferFactory(currency="EUR")]
    for i in range(count):
        offer, sent_at = offers[i % 2], now - timedelta(days=i % 40, hours=1)
        state = [
            {"status": GiftStatus.UNCLAIMED},
            {"status": GiftStatus.CLAIMED, "receiver": gifter, "claimed_at": sent_at + timedelta(hours=i)},
            {"status": GiftStatus.EXPIRED, "expired_at": sent_at + timedelta(days=1)},
        ][i % 3]
        GiftFactory(
            gifter=gifter,
            offer=offer,
            invoice=invoice_create(customer=gifter, offer=offer, is_gifted=True),
            created_at=sent_at,
            scheduled_at=sent_at,
            sent_at=sent_at,
            **state,
        )


def test_it_runs_the_same_few_queries_for_5_or_50_gifts(time_machine):
    now = datetime(2026, 5, 20, 12, tzinfo=UTC)
    time_machine.move_to(now, tick=False)
    populate(5, now)
    with CaptureQueriesContext(connection) as few:
        gift_dashboard(now=now)
    populate(45, now)
    with CaptureQueriesContext(connection) as many:
        weeks = gift_dashboard(now=now)

    assert sum(week.sold for week in weeks) == 50
    assert len(few) == len(many) <= 7


# --- the admin pages ------------------------------------------------------------------------------------


@pytest.fixture
def superuser_client(client):
    client.force_login(CustomerFactory(is_staff=True, is_superuser=True))
    return client


def test_it_shows_the_dashboard_with_its_definitions_to_a_superuser(superuser_client, shop):
    shop.sell(OfferFactory(title="Gift Monthly", price=Decimal("12.50")), timezone.now() - timedelta(minutes=1))

    response = superuser_client.get(reverse(DASHBOARD))

    body = response.content.decode()
    assert response.status_code == 200
    assert "Redemption rate: of the gifts delivered in the week" in body
    assert "Gift Monthly" in body and "12.50" in body
    assert reverse(EXPORT) in body and reverse(BEAT) in body


def test_the_dashboard_page_lists_the_newest_week_first_and_no_empty_week(superuser_client, shop, time_machine):
    offer = OfferFactory(title="Gift Monthly")
    shop.sell(offer, at(0), scheduled_at=at(40))
    shop.sell(offer, at(14), scheduled_at=at(40))
    time_machine.move_to(at(20), tick=False)

    body = superuser_client.get(reverse(DASHBOARD)).content.decode()

    start = body.index('id="gift-weeks"')
    table = body[start : body.index("</table>", start)]
    assert table.index("Mon 18 May 2026") < table.index("Mon 4 May 2026")
    assert "Mon 11 May 2026" not in body
    assert "newest first" in body


def test_the_dashboard_page_says_when_no_week_had_any_gift_activity(superuser_client):
    body = superuser_client.get(reverse(DASHBOARD)).content.decode()

    assert "No gift was sold, delivered, redeemed or expired in the last 8 weeks." in body


def test_it_lists_the_beat_schedule_with_each_tasks_interval(superuser_client):
    body = superuser_client.get(reverse(BEAT)).content.decode()

    assert "deliver-due-gifts" in body and "gifts.deliver_due_gifts" in body
    assert "every 15 seconds" in body and "expires=15" in body
    assert "accounts.reap_idempotency_keys" in body and "every 3600 seconds" in body


def test_it_links_the_dashboard_and_beat_schedule_from_the_gift_list(superuser_client):
    body = superuser_client.get(reverse("admin:gifts_gift_changelist")).content.decode()

    assert reverse(DASHBOARD) in body and reverse(BEAT) in body


@pytest.mark.parametrize("page", [DASHBOARD, BEAT, EXPORT])
def test_it_sends_anonymous_visitors_and_customers_to_the_admin_login(client, page):
    assert client.get(reverse(page)).status_code == 302
    client.force_login(CustomerFactory())
    response = client.get(reverse(page))
    assert response.status_code == 302 and response["Location"].startswith(reverse("admin:login"))


@pytest.mark.parametrize("page", [DASHBOARD, BEAT, EXPORT])
def test_it_refuses_staff_without_the_gift_view_permission(client, page):
    staff = CustomerFactory(is_staff=True)
    client.force_login(staff)
    assert client.get(reverse(page)).status_code == 403

    staff.user_permissions.add(Permission.objects.get(content_type__app_label="gifts", codename="view_gift"))
    assert client.get(reverse(page)).status_code == 200


# --- the CSV export -------------------------------------------------------------------------------------


def read_csv(response):
    assert response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"].startswith('attachment; filename="gifts-')
    content = b"".join(response.streaming_content).decode()
    return content, list(csv.reader(io.StringIO(content)))


def test_it_exports_the_selected_gifts_with_their_masked_codes_only(superuser_client):
    gifts = [make_gift(recipient_email=f"friend{i}@example.com") for i in range(3)]

    response = superuser_client.post(
        reverse("admin:gifts_gift_changelist"),
        {"action": "export_csv", "_selected_action": [gifts[0].pk, gifts[2].pk]},
    )

    content, rows = read_csv(response)
    assert rows[0] == CSV_HEADER
    assert [row[0] for row in rows[1:]] == [str(gifts[0].pk), str(gifts[2].pk)]
    assert rows[1][5:7] == ["friend0@example.com", gifts[0].masked_code]
    for gift in gifts:
        assert gift.code not in content and codes.normalize(gift.code) not in content


def test_it_exports_all_gifts_with_offer_invoice_and_dates(superuser_client, shop):
    offer = OfferFactory(title="=HYPERLINK(evil)", price=Decimal("9.99"), currency="USD")
    sold = timezone.now() - timedelta(minutes=1)
    invoiced = shop.sell(offer, sold)
    services.deliver_due_gifts(now=sold)
    plain = make_gift()

    content, rows = read_csv(superuser_client.get(reverse(EXPORT)))

    assert len(rows) == 3
    by_id = {row[0]: dict(zip(CSV_HEADER, row, strict=True)) for row in rows[1:]}
    row = by_id[str(invoiced.pk)]
    assert row["status"] == "unclaimed" and row["offer id"] == offer.long_id
    assert row["offer title"] == "'=HYPERLINK(evil)"  # not a formula when opened in a spreadsheet
    assert row["gifter email"] == invoiced.gifter.email
    assert row["sent at"] == sold.isoformat() and row["claimed at"] == ""
    assert (row["invoice total"], row["currency"]) == ("9.99", "USD")
    assert (by_id[str(plain.pk)]["invoice total"], by_id[str(plain.pk)]["currency"]) == ("", "")
    assert invoiced.code not in content and plain.code not in content
