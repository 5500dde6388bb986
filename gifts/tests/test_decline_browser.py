"""Issue 16's "No thanks" in a real browser (Debian's Chromium under Playwright), against the live server: the recipient
verifies the code, chooses "No thanks", is asked first and declines; the gifter then finds it on "My gifts" and sends
it to someone else. Screenshots at phone and desktop width."""

import pytest
from playwright.sync_api import expect

from accounts.tests.factories import CustomerFactory
from emails.models import Email
from gifts import services
from gifts.models import GiftStatus
from gifts.tests.browsers import DESKTOP
from gifts.tests.factories import make_gift
from offers.tests.factories import OfferFactory

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_a_recipient_says_no_thanks_and_the_gifter_sends_it_to_someone_else(browser_of, snap):
    gifter = CustomerFactory(first_name="Ana", last_name="Lima", time_zone="Europe/Lisbon")
    offer = OfferFactory(title="Premium Streaming", period="month")
    gift = make_gift(gifter=gifter, offer=offer, recipient_email="peter@example.com", personal_note="Enjoy, Peter!")
    services.deliver_due_gifts(send=False)

    page = browser_of(CustomerFactory(email="peter@example.com"))
    page.goto("/redeem/")
    page.get_by_label("Gift code").fill(gift.code)
    page.get_by_role("button", name="Verify").click()
    page.get_by_role("link", name="No thanks").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("No thanks?")
    expect(page.get_by_role("button", name="Yes, decline the gift")).to_be_visible()
    snap(page, "1-no-thanks-asks-first")
    gift.refresh_from_db()
    assert gift.status == GiftStatus.UNCLAIMED  # opening the page changed nothing

    page.get_by_role("button", name="Yes, decline the gift").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Gift declined")
    expect(page.get_by_role("status")).to_contain_text("You said no thanks to Premium Streaming from Ana Lima")
    snap(page, "2-declined")
    gift.refresh_from_db()
    assert gift.status == GiftStatus.DECLINED

    page = browser_of(gifter)
    page.goto("/account/gifts/")
    card = page.locator(f"#gift-{gift.pk}")
    expect(card).to_contain_text("peter@example.com said no thanks")
    snap(page, "3-my-gifts-declined")
    card.get_by_role("link", name="Send it to someone else").click()
    expect(page.get_by_label("Personal note")).to_have_value("Enjoy, Peter!")
    snap(page, "4-send-elsewhere")

    page.get_by_label("Their first name").fill("Maria")
    page.get_by_label("Their email", exact=True).fill("maria@example.com")
    page.get_by_label("Their email again").fill("maria@example.com")
    page.get_by_label("Personal note").fill("For you, Maria!")
    page.get_by_role("button", name="Send the gift").click()
    expect(page.get_by_text("Your gift is on its way to maria@example.com, with the same code.")).to_be_visible()
    snap(page, "5-sent-elsewhere")

    gift.refresh_from_db()
    assert (gift.status, gift.recipient_email, gift.personal_note) == (
        "unclaimed",
        "maria@example.com",
        "For you, Maria!",
    )
    assert Email.objects.filter(gift=gift, kind=Email.Kind.GIFT_DELIVERY, to_email="maria@example.com").exists()


def test_the_emailed_no_thanks_link_asks_a_visitor_first(chromium, live_server, snap):
    gift = make_gift(offer=OfferFactory(title="Premium Streaming"), recipient_email="peter@example.com")
    services.deliver_due_gifts(send=False)
    context = chromium.new_context(base_url=live_server.url, viewport=DESKTOP, locale="en-GB")
    try:
        page = context.new_page()
        page.goto(f"/redeem/decline/?t={gift.link_token}")
        expect(page.get_by_role("button", name="Yes, decline the gift")).to_be_visible()
        snap(page, "1-emailed-link-asks-first")
        page.get_by_role("button", name="Yes, decline the gift").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Gift declined")
        gift.refresh_from_db()
        assert gift.status == GiftStatus.DECLINED
    finally:
        context.close()
