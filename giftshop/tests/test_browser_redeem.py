"""The recipient's journeys in a real browser (see test_browser.py), each walked at phone and at desktop size, every
page saved at both widths: from the gift email to watching in two steps. Without an account: open the link, choose a
password (the gift is redeemed in the same step). With one: open the link, log in, confirm. A typed code (pasted with
an em dash) is verified before logging in, and Back after Verify and after redeeming shows a page, never the
browser's "resubmit the form?"."""

import re
from urllib.parse import urlencode

import pytest
from django.core import mail
from playwright.sync_api import expect

from accounts.models import Customer, Subscription
from accounts.tests.factories import CustomerFactory
from gifts import services as gift_services
from gifts.models import Gift, GiftStatus
from gifts.tests.factories import GuestFactory, make_gift
from giftshop.models import SiteSettings
from giftshop.tests import test_browser
from giftshop.tests.test_browser import DESKTOP, PASSWORD, PHONE, main
from offers.tests.factories import OfferFactory

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

persona, snap = test_browser.persona, test_browser.snap  # the browser tests' fixtures: a browser per person, shots
SIZES = pytest.mark.parametrize("size", [PHONE, DESKTOP], ids=["phone", "desktop"])
NOTE = "Happy birthday, Peter!\nLove, Ana"


def delivered_gift(live_server):
    """A gift from Ana Lima, delivered: the link its email carries."""
    site = SiteSettings.load()
    site.redeem_url = f"{live_server.url}/redeem/"
    site.save()
    offer = OfferFactory(title="Premium Streaming", period="month", tags=["premium"])
    gift = make_gift(gifter=GuestFactory(first_name="Ana", last_name="Lima"), offer=offer, personal_note=NOTE)
    gift_services.deliver_due_gifts()
    gift = Gift.objects.select_related("offer").get(pk=gift.pk)
    link = f"{live_server.url}/redeem/?{urlencode({'giftCode': gift.code, 't': gift.link_token})}"
    delivery = next(m for m in mail.outbox if m.to == [gift.recipient_email])
    assert f"Redeem it here: {link}\n" in delivery.body
    return gift, link


def shoot(snap, page, name, size):
    """Both widths' screenshots, then back to the width the journey is walked at."""
    snap(page, name)
    page.set_viewport_size(size)


def expect_the_gift(page):
    """What the gift is, before anything else on the page."""
    expect(main(page).locator(".lead")).to_have_text("Ana Lima sent you Premium Streaming.")
    facts = main(page).locator("dl.gift-facts")
    expect(facts).to_contain_text("1 month")
    expect(facts).to_contain_text("Happy birthday, Peter!")
    expect(facts).to_contain_text("Redeem by")
    expect(facts.locator("dd.outcome")).to_contain_text("Redeeming starts a new Premium Streaming subscription")


def expect_enjoy(page, gift, live_server):
    expect(page).to_have_url(f"{live_server.url}/redeem/done/{gift.pk}/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Enjoy your gift!")
    expect(main(page).locator(".lead")).to_contain_text("You have Premium Streaming until")


@SIZES
def test_a_recipient_without_an_account_chooses_a_password_and_the_gift_is_theirs(persona, snap, live_server, size):
    gift, link = delivered_gift(live_server)
    page = persona()
    page.set_viewport_size(size)

    # Step 1: the email's link.
    page.goto(link)
    expect(page.get_by_role("heading", level=1)).to_have_text("Redeem your gift")
    expect_the_gift(page)
    expect(main(page)).to_contain_text("a Giftshop account for friend@example.com")
    gift.refresh_from_db()
    assert gift.status == GiftStatus.UNCLAIMED  # opening the link redeems nothing
    shoot(snap, page, "01-link", size)

    # A password that is too short is refused beside its field; the gift is still shown.
    page.get_by_label("Password").fill("short")
    page.get_by_role("button", name="Redeem my gift").click()
    expect(page.locator("#id_password_error")).to_contain_text("too short")
    expect_the_gift(page)
    assert not Customer.objects.filter(email="friend@example.com").exists()
    shoot(snap, page, "02-password-refused", size)

    # Step 2: a name (optional) and a password: the gift is redeemed in the same step.
    page.get_by_label("First name").fill("Peter")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Redeem my gift").click()
    expect_enjoy(page, gift, live_server)
    peter = Customer.objects.get(email="friend@example.com")
    assert peter.first_name == "Peter" and peter.check_password(PASSWORD) and peter.email_verified_at
    gift.refresh_from_db()
    assert (gift.status, gift.receiver) == (GiftStatus.CLAIMED, peter)
    shoot(snap, page, "03-redeemed", size)

    # Logged in: the subscription is in the account.
    main(page).get_by_role("link", name="See your subscriptions").click()
    expect(page.locator(".card h2")).to_have_text("Premium Streaming")
    shoot(snap, page, "04-subscriptions", size)

    # The link again, once redeemed: an error, shown as a wrong code is, and nothing to redeem.
    page.goto(link)
    expect(main(page).locator(".errorlist")).to_have_text("This gift code has already been redeemed.")
    expect(page.get_by_role("button", name=re.compile("Redeem|Confirm"))).to_have_count(0)
    assert Subscription.objects.filter(customer=peter).count() == 1
    shoot(snap, page, "05-link-again-refused", size)


@SIZES
def test_a_recipient_with_an_account_logs_in_and_confirms(persona, snap, live_server, size):
    gift, link = delivered_gift(live_server)
    owner = CustomerFactory(email="friend@example.com", first_name="Peter")
    page = persona()
    page.set_viewport_size(size)

    page.goto(link)
    expect_the_gift(page)
    expect(page.get_by_label("Password")).to_have_count(0)  # an account with a password: never set one here
    expect(main(page)).to_contain_text("friend@example.com has a Giftshop account: log in to redeem your gift")
    shoot(snap, page, "01-link", size)

    # Step 1: log in; the login comes back to the link.
    main(page).get_by_role("link", name="Log in").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Log in")
    page.get_by_label("Email").fill("friend@example.com")
    page.get_by_label("Password").fill("correct horse battery staple")
    shoot(snap, page, "02-login", size)
    main(page).get_by_role("button", name="Log in").click()
    expect(page).to_have_url(link)
    expect_the_gift(page)
    expect(main(page)).to_contain_text("Redeeming into the account of friend@example.com.")
    gift.refresh_from_db()
    assert gift.status == GiftStatus.UNCLAIMED
    shoot(snap, page, "03-confirm", size)

    # Step 2: confirm.
    page.get_by_role("button", name="Confirm and redeem").click()
    expect_enjoy(page, gift, live_server)
    gift.refresh_from_db()
    assert (gift.status, gift.receiver) == (GiftStatus.CLAIMED, owner)
    shoot(snap, page, "04-redeemed", size)


@SIZES
def test_a_visitor_types_a_pasted_code_verifies_it_logs_in_and_confirms(persona, snap, live_server, size):
    gift, _ = delivered_gift(live_server)
    recipient = CustomerFactory(email="peter@example.com")
    page = persona()
    page.set_viewport_size(size)

    page.goto("/redeem/")
    expect(page.get_by_label("Gift code")).to_be_visible()  # no log in needed to type a code
    page.get_by_label("Gift code").fill(gift.code.lower().replace("-", "\u2014"))  # pasted with an em dash
    shoot(snap, page, "01-type-code", size)
    page.get_by_role("button", name="Verify").click()
    expect(page).to_have_url(f"{live_server.url}/redeem/?giftCode={gift.code}")  # a GET after the POST
    expect_the_gift(page)
    expect(main(page).get_by_role("link", name="Create an account")).to_be_visible()
    expect(page.get_by_label("Password")).to_have_count(0)  # a typed code never sets a password
    shoot(snap, page, "02-verified", size)

    # Back and Forward after Verify: pages, never the browser's "resubmit the form?".
    page.go_back()
    expect(page.get_by_label("Gift code")).to_be_visible()
    page.go_forward()
    expect_the_gift(page)

    main(page).get_by_role("link", name="Log in").click()
    page.get_by_label("Email").fill("peter@example.com")
    page.get_by_label("Password").fill("correct horse battery staple")
    main(page).get_by_role("button", name="Log in").click()
    expect(page).to_have_url(f"{live_server.url}/redeem/?giftCode={gift.code}")
    expect(main(page).locator("dd.outcome")).to_have_text(
        re.compile(r"^Redeeming starts a new Premium Streaming subscription, until \d{1,2} \w+ \d{4}\.$")
    )
    shoot(snap, page, "03-confirm", size)
    page.get_by_role("button", name="Confirm and redeem").click()
    expect_enjoy(page, gift, live_server)
    gift.refresh_from_db()
    assert (gift.status, gift.receiver) == (GiftStatus.CLAIMED, recipient)

    page.go_back()
    expect(page).to_have_url(f"{live_server.url}/redeem/?giftCode={gift.code}")
    expect(main(page).locator(".errorlist")).to_have_text("This gift code has already been redeemed.")
    shoot(snap, page, "04-back-refused", size)

    # A wrong code looks the same.
    page.goto("/redeem/")
    page.get_by_label("Gift code").fill("ZZZZ-0000")
    page.get_by_role("button", name="Verify").click()
    expect(main(page).locator(".errorlist")).to_have_text("No gift has this code.")
    shoot(snap, page, "05-wrong-code", size)
