"""The gift funnel in a real browser (Chromium under Playwright, against the live server): support opens it from
the dashboard, reads the chart (an image with a name) and the table, filters it by offer; the page does not scroll
sideways at 1280 px and axe-core finds no serious or critical violation. Screenshots at phone and desktop width,
as test_admin_browser.py saves them."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import expect

from emails.models import Email
from gifts.models import GiftStatus
from gifts.tests.factories import GiftFactory
from gifts.tests.test_admin_browser import serious_violations, snap, support  # noqa: F401 - fixtures
from offers.tests.factories import OfferFactory

# What the page would scroll sideways by: the document's, and the table's own scrolling box's.
OVERFLOW = """() => Math.max(
    document.documentElement.scrollWidth - document.documentElement.clientWidth,
    ...[...document.querySelectorAll('.funnel-table')].map(box => box.scrollWidth - box.clientWidth))"""
pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def gifts_sold_over_three_weeks():
    now = timezone.now()
    offers = [OfferFactory(title="Premium digital subscription, 12 months", period="year"), OfferFactory(title="Basic")]
    for n in range(12):
        sold = now - timedelta(days=n * 2, hours=1)
        gift = GiftFactory(offer=offers[n % 2], created_at=sold, scheduled_at=sold, status=GiftStatus.UNCLAIMED)
        Email.objects.create(
            key=f"gift:{gift.pk}:delivery",
            kind=Email.Kind.GIFT_DELIVERY,
            to_email=gift.recipient_email,
            gift=gift,
            status=Email.Status.SENT,
            sent_at=sold,
            delivered_at=sold + timedelta(minutes=1),
            opened_at=sold + timedelta(hours=n) if n % 3 else None,
            clicked_at=sold + timedelta(hours=n, minutes=2) if n % 3 == 1 else None,
        )
    return offers


def test_support_reads_the_funnel_and_filters_it_by_offer(support, snap):  # noqa: F811 - fixtures
    premium, _basic = gifts_sold_over_three_weeks()
    support.goto(reverse("admin:gifts_gift_dashboard"))
    support.get_by_role("link", name="Funnel").click()
    expect(support.locator("h1")).to_have_text("Gift funnel")
    expect(support.get_by_role("img", name="All shown weeks together")).to_be_visible()
    expect(support.locator("#funnel-rows tfoot")).to_contain_text("12")
    snap(support, "funnel")
    assert serious_violations(support) == []
    assert support.evaluate(OVERFLOW) <= 0, "the funnel scrolls sideways at 1280 px"

    support.get_by_label("Offer:").select_option(label=str(premium))
    support.get_by_role("button", name="Show").click()
    expect(support.locator("#funnel-rows tbody")).not_to_contain_text("Basic")
    expect(support.locator("#funnel-rows tfoot")).to_contain_text("6")
    expect(support.locator("#funnel-export")).to_have_attribute(
        "href", f"/admin/gifts/gift/funnel.csv?weeks=8&offer={premium.pk}"
    )
    snap(support, "funnel-one-offer")
