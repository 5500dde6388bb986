"""Start it later (issue 16) in a real browser (Debian's Chromium under Playwright), against the live server: a
recipient verifies a gift code, picks a start date a few days ahead and redeems; the subscription waits, `future`,
until that day in their time zone. Screenshots at phone and desktop width."""

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from accounts.models import Subscription
from accounts.selectors import customer_has_access
from accounts.tests.factories import CustomerFactory
from gifts import services
from gifts.tests.factories import make_gift
from offers.tests.factories import OfferFactory

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_a_recipient_redeems_a_gift_that_starts_ten_days_later(browser_of, snap):
    zone = ZoneInfo("Asia/Tokyo")
    offer = OfferFactory(title="Premium Streaming", period="month", start_later_days=90)
    gift = make_gift(offer=offer)
    services.deliver_due_gifts(send=False)
    recipient = CustomerFactory(time_zone="Asia/Tokyo")
    today = timezone.now().astimezone(zone).date()
    start = today + timedelta(days=10)

    page = browser_of(recipient)
    page.goto("/redeem/")
    page.get_by_label("Gift code").fill(gift.code)
    page.get_by_role("button", name="Verify").click()
    expect(page.get_by_role("group", name="When should it start?")).to_be_visible()
    expect(page.get_by_label("Start now")).to_be_checked()
    date_field = page.get_by_label("Start date")
    expect(date_field).to_have_attribute("max", (today + timedelta(days=90)).isoformat())
    snap(page, "1-redeem-with-start-choice")

    page.get_by_label("Start on a later day").check()
    date_field.fill(start.isoformat())
    page.get_by_role("button", name="Confirm and redeem").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Enjoy your gift!")
    expect(page.locator("#term-start")).to_have_text(f"{start.day} {start:%B %Y}")
    snap(page, "2-redeemed-starts-later")

    subscription = Subscription.objects.get(customer=recipient)
    assert subscription.status == Subscription.Status.FUTURE
    assert subscription.term_start == datetime.combine(start, datetime.min.time(), tzinfo=zone)
    assert not customer_has_access(recipient, offer)

    page.goto("/account/subscriptions/")
    expect(page.locator(".card").first).to_contain_text("Future")
    snap(page, "3-subscriptions-future")
