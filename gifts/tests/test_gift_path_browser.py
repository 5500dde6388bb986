"""See it land (issue 16) in a real browser (Debian's Chromium under Playwright), against the live server: "My
gifts" shows each gift's path (opened, redeemed, bounced, withdrawn) with its times in the gifter's zone, and the
gifter answers "not redeemed yet" by taking a gift to hand over in person. Screenshots at phone and desktop width."""

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from accounts.tests.factories import CustomerFactory
from emails.models import Email
from emails.services import email_tracked
from gifts import services
from gifts.models import DeliveryMethod, Gift, GiftStatus
from gifts.tests.factories import make_gift
from offers.tests.factories import OfferFactory

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def delivery_key(gift):
    return Email.objects.filter(gift=gift, kind=Email.Kind.GIFT_DELIVERY).latest("pk").key


def test_a_gifter_sees_each_gifts_path_and_takes_one_to_hand_over(browser_of, snap):
    gifter = CustomerFactory(email="gifter@example.com", time_zone="Asia/Tokyo")
    offer = OfferFactory(title="Premium Streaming", period="month")
    now = timezone.now()
    waiting = make_gift(gifter=gifter, offer=offer, recipient_email="robin@example.com", now=now - timedelta(days=15))
    redeemed = make_gift(gifter=gifter, offer=offer, recipient_email="sam@example.com", now=now - timedelta(days=9))
    bounced = make_gift(gifter=gifter, offer=offer, recipient_email="nobody@example.com", now=now - timedelta(days=3))
    withdrawn = make_gift(gifter=gifter, offer=offer, recipient_email="alex@example.com", now=now - timedelta(days=2))
    for gift in (waiting, redeemed, bounced, withdrawn):
        services.deliver_due_gifts(now=gift.scheduled_at)
        # As if the worker had sent it then (it sent it now, in the test).
        Email.objects.filter(gift=gift, kind=Email.Kind.GIFT_DELIVERY).update(sent_at=gift.scheduled_at)
    email_tracked(email_key=delivery_key(waiting), event_type="delivered", when=now - timedelta(days=15))
    email_tracked(email_key=delivery_key(waiting), event_type="opened", when=now - timedelta(days=14))
    email_tracked(email_key=delivery_key(redeemed), event_type="delivered", when=now - timedelta(days=9))
    services.gift_redeem(
        customer=CustomerFactory(email="sam@example.com"), code=redeemed.code, now=now - timedelta(days=8)
    )
    Email.objects.filter(key=delivery_key(bounced)).update(status=Email.Status.BOUNCED)
    actor, when = f"customer:{gifter.pk}", now - timedelta(days=1)
    services.gift_transition(gift_ids=[withdrawn.pk], to=GiftStatus.CANCELLED, now=when, actor=actor, cancelled_at=when)

    page = browser_of(gifter)
    page.goto("/account/gifts/")
    card = page.locator(f"#gift-{waiting.pk}")
    path = card.get_by_role("list", name="The way of the gift for robin@example.com")
    expect(path.locator("li.done")).to_have_count(4)  # paid, sent, delivered, opened
    expect(path.locator('[data-step="opened"]')).to_contain_text("Tokyo time")
    expect(path.locator('[data-step="redeemed"]')).to_contain_text("not yet")
    expect(page.locator(f'#gift-{redeemed.pk} [data-step="redeemed"]')).to_contain_text("Tokyo time")
    expect(page.locator(f'#gift-{bounced.pk} [data-step="bounced"]')).to_be_visible()
    expect(page.locator(f"#gift-{withdrawn.pk} .facts")).to_contain_text("Withdrawn")
    expect(page.locator(f'#gift-{withdrawn.pk} [data-step="withdrawn"]')).to_be_visible()
    snap(page, "1-my-gifts-paths")

    card.get_by_role("link", name="Not redeemed yet? Send it again or give it in person").click()
    expect(page.get_by_role("heading", name="Send it to me instead")).to_be_visible()
    snap(page, "2-not-redeemed-yet")

    page.get_by_role("button", name="Send it to me instead").click()
    expect(page.locator(".messages")).to_contain_text("The gift is yours to hand over")
    expect(page.locator(f"#gift-{waiting.pk}")).to_contain_text("Print a certificate")
    snap(page, "3-handed-over")
    assert Gift.objects.get(pk=waiting.pk).delivery_method == DeliveryMethod.HANDOVER
