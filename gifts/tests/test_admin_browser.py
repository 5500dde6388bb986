"""The gift admin in a real browser (Debian's Chromium under Playwright, against pytest-django's live server):
support reissues a code through the confirmation page and sees the new code once; the gift list fits 1280 px; and
axe-core finds no serious or critical violation on the gift admin's pages.

axe-core is installed pinned under gifts/tests/axe/ (`npm ci` there) and injected from that file, never from a CDN.
Every page visited is saved at phone and desktop width under $TEST_OUTPUT_DIR/screenshots/<test name>/."""

import re
from datetime import timedelta
from pathlib import Path

import pytest
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import expect

from accounts.tests.factories import CustomerFactory
from gifts import services
from gifts.models import Gift
from gifts.tests.factories import GuestFactory, make_gift
from offers.tests.factories import OfferFactory

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

AXE = Path(__file__).parent / "axe" / "node_modules" / "axe-core" / "axe.min.js"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}
PASSWORD = "correct horse battery staple"  # CustomerFactory's
NEXT_FRAME = "() => new Promise(done => requestAnimationFrame(() => requestAnimationFrame(done)))"
# What the page would scroll sideways by: the document's, and the changelist's own scrolling box's.
OVERFLOW = """() => Math.max(
    document.documentElement.scrollWidth - document.documentElement.clientWidth,
    ...[...document.querySelectorAll('.results')].map(box => box.scrollWidth - box.clientWidth))"""


@pytest.fixture
def support(chromium, live_server):
    """A support person's browser, logged in to the admin through its login form."""
    admin = CustomerFactory(is_staff=True, is_superuser=True, email="support@example.com")
    # bypass_csp: axe is injected as an inline script, which the site's Content-Security-Policy rightly refuses.
    context = chromium.new_context(base_url=live_server.url, viewport=DESKTOP, locale="en-GB", bypass_csp=True)
    context.set_default_timeout(10_000)
    page = context.new_page()
    page.goto(reverse("admin:login"))
    page.get_by_label("Email").fill(admin.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.locator("#site-name")).to_be_visible()
    yield page
    context.close()


@pytest.fixture
def snap(screenshots):
    def both(page, name):
        page.set_viewport_size(PHONE)
        page.evaluate(NEXT_FRAME)
        screenshots(page, f"{name}-phone")
        page.set_viewport_size(DESKTOP)
        page.evaluate(NEXT_FRAME)
        screenshots(page, f"{name}-desktop")

    return both


def serious_violations(page):
    """axe-core's serious and critical findings on the page, as (rule, first offending element) pairs."""
    if not AXE.exists():
        pytest.fail(f"axe-core is not installed: run `npm ci` in {AXE.parents[2]}")
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    return [
        (violation["id"], violation["nodes"][0]["html"])
        for violation in result["violations"]
        if violation["impact"] in ("serious", "critical")
    ]


def gifts_as_support_sees_them():
    """Gifts with the long titles and addresses real ones have, one delivered and one scheduled."""
    offer = OfferFactory(title="Premium digital subscription, 12 months")
    delivered = make_gift(
        offer=offer,
        gifter=GuestFactory(email="a.generous.gifter.with.a.long.address@example.com"),
        recipient_email="the.lucky.recipient.of.a.gift@subdomain.example.com",
        auto_claim=False,
    )
    services.deliver_due_gifts()
    scheduled = make_gift(offer=offer, scheduled_at=timezone.now() + timedelta(days=3))
    return Gift.objects.get(pk=delivered.pk), scheduled


def choose_action(page, gift, action):
    page.goto(reverse("admin:gifts_gift_changelist"))
    page.locator(f'input[name="_selected_action"][value="{gift.pk}"]').check()
    page.locator('select[name="action"]').select_option(label=action)
    page.get_by_role("button", name="Go").click()


def test_support_reissues_a_code_after_confirming_and_sees_the_new_code_once(support, snap):
    gift, _scheduled = gifts_as_support_sees_them()
    old_code = gift.code

    choose_action(support, gift, "Reissue the code")
    expect(support.locator("h1")).to_have_text("Reissue the code")
    expect(support.locator("#content")).to_contain_text(gift.recipient_email)
    assert Gift.objects.get(pk=gift.pk).code == old_code  # nothing done before confirming
    snap(support, "reissue-confirm")
    assert serious_violations(support) == []

    support.get_by_role("button", name="Yes, reissue the codes").click()
    new_code = Gift.objects.get(pk=gift.pk).code
    assert new_code != old_code
    expect(support.locator("#new-codes .gift-code")).to_have_text(new_code)
    expect(support.locator("#shown-once")).to_contain_text("shown this once")
    expect(support.locator("ul.messagelist")).not_to_contain_text(new_code)
    snap(support, "reissued-once")
    assert serious_violations(support) == []

    support.reload()
    expect(support.locator("#codes-gone")).to_be_visible()
    assert new_code not in support.content()
    snap(support, "reissued-reloaded")


def test_support_cancels_a_gift_only_after_confirming(support, snap):
    gift, _scheduled = gifts_as_support_sees_them()

    choose_action(support, gift, "Cancel (refund the gifter)")
    expect(support.locator("h1")).to_have_text("Cancel gifts and refund the gifters")
    assert Gift.objects.get(pk=gift.pk).status == Gift.Status.UNCLAIMED
    snap(support, "cancel-confirm")
    assert serious_violations(support) == []

    support.get_by_role("link", name="No, take me back").click()
    expect(support).to_have_url(re.compile(r"/admin/gifts/gift/$"))
    assert Gift.objects.get(pk=gift.pk).status == Gift.Status.UNCLAIMED

    choose_action(support, gift, "Cancel (refund the gifter)")
    support.get_by_role("button", name="Yes, cancel and refund").click()
    expect(support.locator("ul.messagelist")).to_contain_text(f"Gift {gift.pk}: cancelled")
    assert Gift.objects.get(pk=gift.pk).status == Gift.Status.CANCELLED


def test_the_gift_admin_fits_1280px_and_axe_finds_no_serious_violation(support, snap):
    gift, _scheduled = gifts_as_support_sees_them()
    pages = {
        "gift-list": reverse("admin:gifts_gift_changelist"),
        "gift-search": f"{reverse('admin:gifts_gift_changelist')}?q={gift.code}",
        "gift-change": reverse("admin:gifts_gift_change", args=[gift.pk]),
        "dashboard": reverse("admin:gifts_gift_dashboard"),
        "beat-schedule": reverse("admin:gifts_gift_beat_schedule"),
    }
    for name, url in pages.items():
        support.goto(url)
        snap(support, name)
        assert serious_violations(support) == [], name

    support.goto(pages["gift-list"])
    assert support.evaluate(OVERFLOW) <= 0, "the gift list scrolls sideways at 1280 px"
    support.goto(pages["gift-search"])
    expect(support.locator("#result_list tbody tr")).to_have_count(1)
    expect(support.locator("#result_list")).to_contain_text(gift.masked_code)
    expect(support.get_by_label("Search gifts")).to_have_value(gift.code)
