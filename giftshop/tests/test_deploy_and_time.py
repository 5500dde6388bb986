"""Deployment settings and time (RELIABILITY.md SEC-15, SEC-16, SEC-18, SEC-19): production settings pass Django's
deployment checklist, a foreign Host header is refused and never reaches an email, and delivery instants chosen in
local time are stored, delivered and expired on the right UTC instant, across DST changes."""

import os
import secrets
import subprocess
import sys
from datetime import UTC, date, datetime, time, timedelta

import pytest
import time_machine
from django.conf import settings
from django.test import Client

from accounts.tests.factories import CustomerFactory
from emails.models import Email
from gifts import services
from gifts.forms import GiftDetailsForm, clean_gift_details
from gifts.models import Gift, GiftStatus
from gifts.tests.factories import make_gift
from giftshop.tests.mediastore import assert_error, client_for, data_of
from giftshop.timezones import local_to_utc
from offers.tests.factories import OfferFactory


def test_production_settings_pass_the_deployment_checklist(tmp_path):
    # The test process's own DJANGO_ALLOW_ASYNC_UNSAFE (set for the browser tests) is no production setting.
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "DJANGO_ALLOW_ASYNC_UNSAFE"}}
    env.update(
        DEBUG="false",
        SECRET_KEY=secrets.token_urlsafe(50),
        GIFT_CODE_SECRET=secrets.token_urlsafe(32),
        ALLOWED_HOSTS="gifts.example.com",
        EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend",
        HTTPS="true",
        SITE_URL="https://gifts.example.com",
        GIFTSHOP_DATA_DIR=str(tmp_path),
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        env=env,
        cwd=settings.BASE_DIR,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout, result.stdout + result.stderr


@pytest.mark.django_db
def test_a_foreign_host_header_is_refused_and_emails_still_link_to_the_site(mailoutbox):
    assert Client().get("/", HTTP_HOST="evil.example").status_code == 400
    assert Client().post("/mediastore/customers", {}, HTTP_HOST="evil.example").status_code == 400

    make_gift(recipient_email="friend@example.com")
    assert services.deliver_due_gifts() == 1

    delivery = next(m for m in mailoutbox if m.to == ["friend@example.com"])
    bodies = [delivery.body] + [content for content, _ in getattr(delivery, "alternatives", [])]
    assert all("evil.example" not in body for body in bodies)
    assert f"{settings.SITE_URL}/redeem/" in delivery.body


# RELIABILITY.md §4.4: the gap moves to the first instant after it; a repeated time means its first occurrence.
CASES = [
    ("America/New_York", date(2026, 3, 8), time(2, 30), datetime(2026, 3, 8, 7, 0, tzinfo=UTC)),
    ("America/New_York", date(2026, 11, 1), time(1, 30), datetime(2026, 11, 1, 5, 30, tzinfo=UTC)),
    ("Europe/Berlin", date(2026, 3, 29), time(2, 30), datetime(2026, 3, 29, 1, 0, tzinfo=UTC)),
    ("Europe/Berlin", date(2026, 10, 25), time(2, 30), datetime(2026, 10, 25, 0, 30, tzinfo=UTC)),
    ("Pacific/Kiritimati", date(2026, 12, 25), None, datetime(2026, 12, 24, 19, 0, tzinfo=UTC)),
    ("Pacific/Pago_Pago", date(2026, 12, 25), None, datetime(2026, 12, 25, 20, 0, tzinfo=UTC)),
    ("Asia/Kathmandu", date(2026, 12, 25), None, datetime(2026, 12, 25, 3, 15, tzinfo=UTC)),
]


def checkout_delivery_instant(zone, day, clock):
    """What the web checkout's gift form stores for a date (and time) chosen in `zone`."""
    form = GiftDetailsForm(
        data={
            "recipient_email": "friend@example.com",
            "recipient_email_again": "friend@example.com",
            "delivery_date": day.isoformat(),
            "delivery_time": clock.strftime("%H:%M") if clock else "",
            "time_zone": zone,
        }
    )
    assert form.is_valid(), form.errors
    return clean_gift_details(form, dict(form.cleaned_data))["scheduled_at"]


@pytest.mark.django_db
@pytest.mark.parametrize(("zone", "day", "clock", "expected"), CASES, ids=[f"{c[0]}-{c[1]}" for c in CASES])
def test_a_local_delivery_time_is_stored_delivered_once_and_expires_on_the_utc_instant(zone, day, clock, expected):
    with time_machine.travel(datetime(2026, 3, 1, tzinfo=UTC), tick=False):
        delivery_at = checkout_delivery_instant(zone, day, clock)
        offer = OfferFactory()
        early = make_gift(offer=offer, scheduled_at=delivery_at)
        late = make_gift(offer=offer, scheduled_at=delivery_at)
    assert delivery_at == expected
    assert Gift.objects.get(pk=early.pk).scheduled_at == expected

    with time_machine.travel(expected - timedelta(seconds=1), tick=False):
        assert services.deliver_due_gifts() == 0
    with time_machine.travel(expected, tick=False):
        assert services.deliver_due_gifts() == 2
        assert services.deliver_due_gifts() == 0
    with time_machine.travel(expected + timedelta(minutes=5), tick=False):
        assert services.deliver_due_gifts() == 0
    assert Email.objects.filter(kind=Email.Kind.GIFT_DELIVERY, gift__in=[early, late]).count() == 2

    claim_expiry = Gift.objects.get(pk=early.pk).claim_expiry_date
    assert claim_expiry is not None and claim_expiry > expected
    with time_machine.travel(claim_expiry - timedelta(seconds=1), tick=False):
        data_of(client_for(CustomerFactory()).post(f"/mediastore/gifts/redeem/{early.code}"))
    with time_machine.travel(claim_expiry + timedelta(seconds=1), tick=False):
        refused = assert_error(client_for(CustomerFactory()).post(f"/mediastore/gifts/redeem/{late.code}"), 410)
        assert refused["responseData"]["redeemRefusalReason"] == "EXPIRED"
    assert Gift.objects.get(pk=early.pk).status == GiftStatus.CLAIMED
    assert Gift.objects.get(pk=late.pk).status == GiftStatus.UNCLAIMED


# The four 2026 changes: (zone, local day, first UTC minute swept, last UTC minute swept).
TRANSITIONS = [
    (
        "America/New_York",
        date(2026, 3, 8),
        datetime(2026, 3, 8, 5, 0, tzinfo=UTC),
        datetime(2026, 3, 8, 9, 0, tzinfo=UTC),
    ),
    (
        "Europe/Berlin",
        date(2026, 3, 29),
        datetime(2026, 3, 28, 23, 0, tzinfo=UTC),
        datetime(2026, 3, 29, 3, 0, tzinfo=UTC),
    ),
    (
        "Europe/Berlin",
        date(2026, 10, 25),
        datetime(2026, 10, 24, 22, 0, tzinfo=UTC),
        datetime(2026, 10, 25, 3, 0, tzinfo=UTC),
    ),
    (
        "America/New_York",
        date(2026, 11, 1),
        datetime(2026, 11, 1, 4, 0, tzinfo=UTC),
        datetime(2026, 11, 1, 8, 0, tzinfo=UTC),
    ),
]


@pytest.mark.django_db
@pytest.mark.parametrize(("zone", "day", "first", "last"), TRANSITIONS, ids=[f"{t[0]}-{t[1]}" for t in TRANSITIONS])
def test_a_per_minute_sweep_across_a_dst_change_delivers_every_gift_once(zone, day, first, last):
    # Every quarter hour of the local night (gap and repeated hour included), plus every UTC quarter hour, so
    # both readings of the repeated hour are covered.
    local = {local_to_utc(day, time(h, m), zone) for h in range(5) for m in range(0, 60, 15)}
    utc = {first + timedelta(minutes=m) for m in range(7, int((last - first).total_seconds() // 60), 15)}
    due = sorted(instant for instant in local | utc if first <= instant < last)
    with time_machine.travel(first - timedelta(days=1), tick=False):
        offer = OfferFactory()
        gifts = {make_gift(offer=offer, scheduled_at=instant).pk: instant for instant in due}
    assert len(gifts) >= 20

    minute = first
    while minute <= last:
        with time_machine.travel(minute, tick=False):
            services.deliver_due_gifts()
        minute += timedelta(minutes=1)

    rows = Gift.objects.filter(pk__in=gifts).values_list("pk", "status", "sent_at")
    for pk, status, sent_at in rows:
        assert status == GiftStatus.UNCLAIMED, (pk, gifts[pk])
        assert timedelta(0) <= sent_at - gifts[pk] < timedelta(minutes=1), (gifts[pk], sent_at)
    deliveries = Email.objects.filter(kind=Email.Kind.GIFT_DELIVERY, gift__in=gifts)
    assert sorted(deliveries.values_list("gift_id", flat=True)) == sorted(gifts)
