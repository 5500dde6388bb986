"""The web pages in a real browser (Debian's Chromium under Playwright), against pytest-django's live server.

Each person gets their own browser context (cookies, time zone): a guest who gives a gift, a customer who gives
and edits gifts, and a recipient who opens the emailed link. Every step checks what that person sees, and the
database where the page alone cannot prove it (a declined card made no gift, opening a link redeemed nothing).

Every page visited is saved at phone and desktop width under $TEST_OUTPUT_DIR/screenshots/<test name>/, after
checking the phone layout does not scroll sideways; the gift emails' HTML parts are saved the same way.
"""

import re
from datetime import datetime, time, timedelta
from decimal import Decimal
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core import mail
from django.utils import timezone
from playwright.sync_api import expect

from accounts.models import Customer, Subscription
from accounts.selectors import customer_for_email
from billing import services as billing_services
from billing.gateways import get_gateway
from billing.models import Order
from gifts import services as gift_services
from gifts.models import Gift, GiftStatus
from giftshop.models import SiteSettings
from giftshop.money import money
from giftshop.timezones import in_words, local_to_utc
from offers.tests.factories import OfferFactory

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}
CARD_OK = "4242 4242 4242 4242"
CARD_DECLINED = "4000 0000 0000 0002"
PASSWORD = "Violet marmalade 77 skyline"
NEXT_FRAME = "() => new Promise(done => requestAnimationFrame(() => requestAnimationFrame(done)))"
NOT_EDITABLE = "Delivery details can be changed until the end of the day before the delivery day."


@pytest.fixture
def persona(chromium, live_server):
    """A new browser (context) per person: `persona(timezone_id=...)` returns its first page."""
    contexts = []

    def open_browser(**options):
        options = {"locale": "en-GB", **options}  # the browser's Accept-Language (a test may ask for another)
        context = chromium.new_context(base_url=live_server.url, viewport=DESKTOP, **options)
        context.set_default_timeout(10_000)
        contexts.append(context)
        return context.new_page()

    yield open_browser
    for context in contexts:
        context.close()


@pytest.fixture
def snap(screenshots):
    """Full-page screenshots at phone and desktop width; the phone layout must not scroll sideways."""

    def resize(page, size):
        page.set_viewport_size(size)
        page.evaluate(NEXT_FRAME)  # the new layout painted, or a full-page shot can show stale parts

    def both(page, name):
        resize(page, PHONE)
        overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        screenshots(page, f"{name}-phone")
        resize(page, DESKTOP)
        screenshots(page, f"{name}-desktop")
        assert overflow <= 0, f"{name}: the phone layout is {overflow}px wider than the screen"

    return both


def main(page):
    return page.locator("main")


def fact(page, term):
    """The <dd> after the <dt> `term` in a facts list."""
    return page.locator("dl.facts dt", has_text=re.compile(f"^{re.escape(term)}$")).locator(
        "xpath=following-sibling::dd[1]"
    )


def field_error(page, input_id):
    return page.locator(".field.has-error", has=page.locator(f"#{input_id}")).locator(".error")


def fill_card(page, number):
    page.get_by_label("Card number").fill(number)
    page.get_by_label("Expiry month").fill("12")
    page.get_by_label("Expiry year").fill("2030")
    page.get_by_label("Security code").fill("123")


def fill_recipient(page, email):
    page.get_by_label("Recipient's email", exact=True).fill(email)
    page.get_by_label("Recipient's email again").fill(email)


def pay(page):
    page.get_by_role("button", name=re.compile(r"^Pay ")).click()


def register(page, *, email, first_name, last_name):
    page.get_by_label("Email").fill(email)
    page.get_by_label("First name").fill(first_name)
    page.get_by_label("Last name").fill(last_name)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Password again").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    # The same answer for a taken address (SEC-9): the account is ready, and logging in goes back to `next`.
    expect(page.get_by_role("heading", level=1)).to_have_text("Check your email")
    main(page).get_by_role("link", name="Log in").click()
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    main(page).get_by_role("button", name="Log in").click()


def local(when, zone_name):
    return in_words(when, zone_name)


def day_starts(when, zone_name):
    """The edit cutoff: midnight starting the delivery day, in the gift's zone."""
    zone = ZoneInfo(zone_name)
    return datetime.combine(when.astimezone(zone).date(), time.min, tzinfo=zone)


def test_guest_gives_a_gift_after_a_declined_card(persona, snap, live_server):
    offer = OfferFactory(title="Premium Streaming", description="Every film and series, ad-free, on any screen.")
    OfferFactory(title="Basic Streaming", price=Decimal("4.99"), giftable=False, description="One screen, with ads.")
    page = persona(timezone_id="Europe/Berlin")
    berlin_today = timezone.now().astimezone(ZoneInfo("Europe/Berlin")).date()
    day, note = berlin_today + timedelta(days=4), "Happy birthday, Robin! Enjoy the films."

    page.goto("/")
    expect(page.get_by_role("heading", name="Choose a plan")).to_be_visible()
    expect(page.locator(".offer-card")).to_have_count(2)
    expect(page.locator(".offer-card", has_text=offer.title)).to_contain_text("Can be given as a gift")
    snap(page, "01-catalogue")

    page.get_by_role("link", name=offer.title).click()
    expect(page).to_have_url(f"{live_server.url}/offers/{offer.long_id}/")
    expect(page.get_by_role("heading", level=1)).to_have_text(offer.title)
    expect(page.get_by_role("link", name="For myself")).to_be_visible()
    snap(page, "02-offer")

    page.get_by_role("link", name="As a gift").click()
    expect(page).to_have_url(f"{live_server.url}/checkout/{offer.long_id}/gift/")
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Give {offer.title} as a gift")
    expect(page.get_by_label("Time zone")).to_have_value("Europe/Berlin")  # the script took the browser's zone
    counter = page.locator("#note-counter")
    expect(counter).to_have_text("150 of 150 characters left")
    snap(page, "03-checkout")

    page.get_by_label("Your email").fill("sam.buyer@example.com")
    page.get_by_label("Recipient's first name").fill("Robin")
    fill_recipient(page, "robin@example.com")
    page.get_by_label("From").fill("Sam")
    page.get_by_label("Delivery date").fill(day.isoformat())
    page.get_by_label("Delivery time").fill("10:30")
    page.get_by_label("Time zone").select_option("Europe/Berlin")
    page.get_by_label("Personal note").press_sequentially(note[:5])
    expect(counter).to_have_text("145 of 150 characters left")
    page.get_by_label("Personal note").press_sequentially(note[5:])
    expect(counter).to_have_text(f"{150 - len(note)} of 150 characters left")
    fill_card(page, CARD_DECLINED)
    snap(page, "04-checkout-filled")

    pay(page)
    expect(field_error(page, "id_card_number")).to_have_text("Your card was declined. Try another card.")
    expect(page.locator(".has-error")).to_have_count(1)  # only the card
    # A summary at the top says what went wrong, holds the focus, and its link leads to the field.
    summary = page.locator("#error-summary")
    expect(summary).to_be_focused()
    expect(summary.get_by_role("link")).to_have_text("Card number: Your card was declined. Try another card.")
    summary.get_by_role("link").click()
    expect(page.get_by_label("Card number")).to_be_focused()
    expect(page.get_by_label("Recipient's email", exact=True)).to_have_value("robin@example.com")
    expect(page.get_by_label("Personal note")).to_have_value(note)
    assert not Gift.objects.exists()
    assert not Order.objects.filter(status=Order.Status.PAID).exists()
    snap(page, "05-checkout-declined")

    page.get_by_label("Card number").fill(CARD_OK)
    pay(page)
    expect(page).to_have_url(re.compile(r"/thanks/\d+/$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Thank you!")
    gift = Gift.objects.select_related("order").get()
    when = local_to_utc(day, time(10, 30), "Europe/Berlin")
    assert (gift.recipient_email, gift.scheduled_at, gift.personal_note) == ("robin@example.com", when, note)
    assert (gift.recipient_first_name, gift.from_name) == ("Robin", "Sam")
    assert Order.objects.get().status == Order.Status.PAID  # the retry paid the same order
    expect(main(page).locator(".lead")).to_contain_text(f"Your gift of {offer.title} for robin@example.com is paid.")
    # The page speaks in the zone chosen for the gift, which the guest's new account takes too.
    expect(fact(page, "Arrives")).to_have_text(local(when, "Europe/Berlin"))
    cutoff = day_starts(when, "Europe/Berlin")
    expect(fact(page, "You can change it until")).to_have_text(local(cutoff, "Europe/Berlin"))
    assert Customer.objects.get(email="sam.buyer@example.com").time_zone == "Europe/Berlin"
    expect(fact(page, "Paid")).to_have_text(money(offer.price, offer.currency))
    expect(main(page)).to_contain_text("We emailed your receipt to sam.buyer@example.com. It has a link to set a")
    snap(page, "06-thanks")

    (receipt,) = mail.outbox
    assert receipt.to == ["sam.buyer@example.com"]
    assert gift.code in receipt.body
    assert f"Delivery: {local(when, 'Europe/Berlin')}" in receipt.body
    assert f"the note until {local(cutoff, 'Europe/Berlin')}." in receipt.body


def test_customer_gives_now_and_edits_a_scheduled_gift_until_the_cutoff(persona, snap, live_server):
    offer = OfferFactory(title="Premium Streaming", description="Every film and series, ad-free, on any screen.")
    page = persona(timezone_id="America/New_York")

    # Through login to registration, and back to the checkout.
    page.goto(f"/offers/{offer.long_id}/")
    page.get_by_role("link", name="As a gift").click()
    main(page).get_by_role("link", name="Log in").click()
    expect(page).to_have_url(re.compile(r"/login/\?next=/checkout/"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Log in")
    snap(page, "01-login")
    main(page).get_by_role("link", name="Create an account").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Create an account")
    snap(page, "02-register")
    register(page, email="alex@example.com", first_name="Alex", last_name="Morgan")
    expect(page).to_have_url(f"{live_server.url}/checkout/{offer.long_id}/gift/")
    expect(page.get_by_label("Your email")).to_have_count(0)  # logged in: no guest email
    customer = Customer.objects.get(email="alex@example.com")

    # A gift sent now: the date and time disappear. Addressed to the gifter's own address (a browser's autofill,
    # often), it asks first; the gifter meant someone else.
    fill_recipient(page, "Alex@Example.com")
    page.get_by_label("Send it now").check()
    expect(page.get_by_label("Delivery date")).to_be_hidden()
    expect(page.get_by_label("Delivery time")).to_be_hidden()
    fill_card(page, CARD_OK)
    pay(page)
    expect(page.locator("#error-summary")).to_be_focused()
    expect(field_error(page, "id_recipient_email")).to_contain_text("This is your own email address.")
    expect(page.get_by_label("Yes, this gift is for me")).not_to_be_checked()
    assert not Gift.objects.exists()
    snap(page, "03-checkout-own-address")
    fill_recipient(page, "kim@example.com")
    fill_card(page, CARD_OK)
    snap(page, "03-checkout-send-now")
    pay(page)
    expect(page).to_have_url(re.compile(r"/thanks/\d+/$"))
    now_gift = Gift.objects.get(recipient_email="kim@example.com")
    assert now_gift.gifter == customer
    assert now_gift.scheduled_at <= timezone.now()
    expect(main(page).locator(".lead")).to_contain_text("for kim@example.com is paid and ")
    expect(main(page).get_by_role("link", name="See your gifts")).to_be_visible()
    # Sent now: the page says it went out (or is going), and nothing about changing it.
    expect(main(page).locator(".lead")).to_contain_text(re.compile(r"(on its way|being sent now)\.$"))
    expect(main(page).locator("dl.facts dt").first).to_have_text(re.compile(r"^(Sent|Sending)$"))
    expect(fact(page, "Changes")).to_have_count(0)
    expect(fact(page, "You can change it until")).to_have_count(0)
    snap(page, "04-thanks-send-now")

    # The customer sets their time zone: their pages and deadlines follow it.
    page.goto("/account/")
    expect(main(page).locator(".lead")).to_have_text("Signed in as alex@example.com.")
    page.get_by_label("Time zone").select_option("America/New_York")
    page.get_by_role("button", name="Save details").click()
    expect(page.locator(".messages")).to_have_text("Your details are saved.")
    snap(page, "05-account")

    # A second gift, for a few days ahead at 09:00 in Berlin.
    day = timezone.now().astimezone(ZoneInfo("America/New_York")).date() + timedelta(days=3)
    page.goto(f"/checkout/{offer.long_id}/gift/")
    expect(page.get_by_label("Time zone")).to_have_value("America/New_York")
    fill_recipient(page, "jamie@example.com")
    page.get_by_label("Delivery date").fill(day.isoformat())
    page.get_by_label("Delivery time").fill("09:00")
    page.get_by_label("Time zone").select_option("Europe/Berlin")
    page.get_by_label("Personal note").fill("See you soon")
    fill_card(page, CARD_OK)
    pay(page)
    expect(page).to_have_url(re.compile(r"/thanks/\d+/$"))
    gift = Gift.objects.get(recipient_email="jamie@example.com")
    when = local_to_utc(day, time(9), "Europe/Berlin")
    assert gift.scheduled_at == when
    # The gift's times are in the zone chosen for it (Berlin), not the account's (New York).
    cutoff = day_starts(when, "Europe/Berlin")
    expect(fact(page, "Arrives")).to_have_text(local(when, "Europe/Berlin"))
    expect(fact(page, "You can change it until")).to_have_text(local(cutoff, "Europe/Berlin"))
    snap(page, "06-thanks-scheduled")
    receipt = next(m for m in mail.outbox if m.subject.startswith("Your gift receipt") and "jamie@" in m.body)
    assert f"Delivery: {local(when, 'Europe/Berlin')}" in receipt.body
    assert f"until {local(cutoff, 'Europe/Berlin')}." in receipt.body

    page.goto("/account/transactions/")
    expect(main(page).locator(".card")).to_have_count(2)
    expect(main(page).locator(".card").first).to_contain_text("Gift purchase")
    snap(page, "07-transactions")
    page.goto("/account/payment-methods/")
    expect(main(page)).to_contain_text("No cards on file.")
    snap(page, "08-payment-methods")

    # Before the cutoff: the scheduled gift can be edited; the one sent now cannot.
    main(page).get_by_role("link", name="My gifts").click()
    card = page.locator(f"#gift-{gift.pk}")
    expect(card).to_contain_text("See you soon")
    expect(page.locator(f"#gift-{now_gift.pk}")).to_contain_text(NOT_EDITABLE)
    # Nothing to change on it: its only links are its certificate's two papers (to give it in person), and, inside
    # the offer's refund window, taking it back (issue 16).
    links = page.locator(f"#gift-{now_gift.pk}").get_by_role("link")
    expect(links).to_have_text(
        [re.compile(r"^A4 certificate"), re.compile(r"^US Letter certificate"), re.compile(r"^Withdraw and refund")]
    )
    snap(page, "09-gifts")
    card.get_by_role("link", name=re.compile("^Edit delivery details")).click()
    expect(page).to_have_url(f"{live_server.url}/account/gifts/{gift.pk}/edit/")
    expect(page.get_by_label("Delivery time")).to_have_value("09:00")
    expect(page.get_by_label("Time zone")).to_have_value("Europe/Berlin")
    expect(page.locator("#note-counter")).to_have_text(f"{150 - len('See you soon')} of 150 characters left")
    page.get_by_label("Personal note").fill("See you soon — bring popcorn")
    expect(page.locator("#note-counter")).to_have_text("122 of 150 characters left")
    snap(page, "10-gift-edit")
    page.get_by_role("button", name="Save changes").click()
    expect(page).to_have_url(f"{live_server.url}/account/gifts/")
    expect(page.locator(".messages")).to_have_text("Your gift for jamie@example.com is updated.")
    expect(card).to_contain_text("See you soon — bring popcorn")
    gift.refresh_from_db()
    assert (gift.personal_note, gift.scheduled_at) == ("See you soon — bring popcorn", when)
    snap(page, "11-gifts-updated")

    # The edit form is open when the cutoff (midnight in Berlin starting the delivery day) passes.
    card.get_by_role("link", name=re.compile("^Edit delivery details")).click()
    page.get_by_label("Personal note").fill("Too late?")
    with time_machine.travel(cutoff + timedelta(minutes=1), tick=True):
        page.get_by_role("button", name="Save changes").click()
        expect(page.locator(".notice")).to_have_text(f"Editing is closed. {NOT_EDITABLE}")
        expect(page.locator("form.gift-edit")).to_have_count(0)
        gift.refresh_from_db()
        assert gift.personal_note == "See you soon — bring popcorn"
        assert gift.status == GiftStatus.SCHEDULED  # not delivered yet: only editing is closed
        snap(page, "12-gift-edit-refused")

        page.goto("/account/gifts/")
        expect(card).to_contain_text(NOT_EDITABLE)
        # No edit link any more; the certificate's two papers stay (its code still works), and so does withdrawing
        # it, inside the refund window (issue 16).
        expect(card.get_by_role("link")).to_have_text(
            [re.compile(r"^A4 certificate"), re.compile(r"^US Letter"), re.compile(r"^Withdraw and refund")]
        )
        snap(page, "13-gifts-after-cutoff")


def test_recipient_redeems_the_emailed_link(persona, snap, live_server):
    offer = OfferFactory(title="Premium Streaming", description="Every film and series, ad-free, on any screen.")
    # A guest gave it (a customer without a name or password), to be sent at once.
    gifter = customer_for_email("pat.guest@example.com")
    card = get_gateway().tokenize(number="4242424242424242", exp_month=12, exp_year=2030)
    billing_services.checkout(
        customer=gifter,
        offer=offer,
        checkout_key="browser-test-redeem",
        as_gift=True,
        recipient_email="river@example.com",
        personal_note="Happy holidays!\nLove, Pat",
        card_token=card.token,
    )
    gift = Gift.objects.get()
    site = SiteSettings.load()
    site.redeem_url = f"{live_server.url}/redeem/"
    site.save()

    assert gift_services.deliver_due_gifts() == 1
    delivery = next(m for m in mail.outbox if m.to == ["river@example.com"])
    link = f"{live_server.url}/redeem/?{urlencode({'giftCode': gift.code, 't': gift.link_token})}"
    assert f"Redeem it here: {link}\n" in delivery.body

    page = persona(timezone_id="Europe/London")
    page.goto(link)
    expect(page.get_by_role("heading", level=1)).to_have_text("Redeem your gift")
    # The gift before anything else; the guest gave no name, so the page names them by their email.
    expect(main(page).locator(".lead")).to_have_text(f"pat.guest@example.com sent you {offer.title}.")
    outcome = main(page).locator("dd.outcome")
    expect(outcome).to_contain_text(f"Redeeming starts a new {offer.title} subscription, until ")
    gift.refresh_from_db()
    assert (gift.status, gift.receiver_id) == (GiftStatus.UNCLAIMED, None)  # opening the link redeems nothing
    snap(page, "01-redeem-link")

    # No account yet: a password (and a name) on the same page, and the gift is redeemed in that step
    # (giftshop/tests/test_browser_redeem.py walks this and the other journeys at both sizes).
    promised = re.search(r"until (\d{1,2} \w+ \d{4})\.", outcome.text_content()).group(1)
    page.get_by_label("First name").fill("River")
    page.get_by_label("Last name").fill("Lee")
    page.get_by_label("Password").fill(PASSWORD)
    snap(page, "02-redeem-choose-password")
    page.get_by_role("button", name="Redeem my gift").click()
    expect(page).to_have_url(f"{live_server.url}/redeem/done/{gift.pk}/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Enjoy your gift!")
    river = Customer.objects.get(email="river@example.com")
    assert (river.get_full_name(), river.email_verified_at is not None) == ("River Lee", True)
    subscription = Subscription.objects.get(customer=river)
    until = f"{subscription.term_end:%-d %B %Y}"
    assert promised == until
    expect(main(page).locator(".lead")).to_have_text(f"You have {offer.title} until {until}.")
    expect(main(page).get_by_role("link", name="add a payment method")).to_have_attribute(
        "href", "/account/payment-methods/"
    )
    gift.refresh_from_db()
    assert (gift.status, gift.receiver, gift.subscription) == (GiftStatus.CLAIMED, river, subscription)
    snap(page, "04-redeemed")

    main(page).get_by_role("link", name="See your subscriptions").click()
    expect(page.locator(".card")).to_have_count(1)
    expect(page.locator(".card h2")).to_have_text(offer.title)
    expect(fact(page, "Status")).to_have_text("Active")
    snap(page, "05-subscriptions")

    page.goto(link)
    expect(main(page).locator(".errorlist")).to_have_text("This gift code has already been redeemed.")
    expect(page.get_by_role("button", name="Confirm and redeem")).to_have_count(0)
    assert Subscription.objects.filter(customer=river).count() == 1
    snap(page, "06-redeem-again-refused")

    # The four gift emails: readable as text, and presentable as HTML.
    emails = {m.subject: m for m in mail.outbox}
    receipt = emails[f"Your gift receipt: {offer.title}"]
    delivered = emails["Your gift has been delivered"]
    redeemed = emails["Your gift has been redeemed"]
    assert delivery.subject == f"You've received a gift: {offer.title}"
    assert receipt.to == delivered.to == redeemed.to == ["pat.guest@example.com"]
    for text in (offer.title, "river@example.com", gift.code, "/reset/"):
        assert text in receipt.body
    assert "You can change" not in receipt.body  # sent at once: no deadline to offer
    for text in (offer.title, gift.code, "Happy holidays!\nLove, Pat", link):
        assert text in delivery.body
    # The guest gave no name: the sentence names them by their email rather than start with a blank.
    assert f"\npat.guest@example.com has given you a gift: {offer.title}" in delivery.body
    for message in (delivered, redeemed):
        assert f"gift of {offer.title}" in message.body
        assert "river@example.com" in message.body
    mailbox = persona()  # a blank page: the redeem page's CSP would block the emails' inline styles
    for name, message in [
        ("receipt", receipt),
        ("delivery", delivery),
        ("delivered", delivered),
        ("redeemed", redeemed),
    ]:
        html, mimetype = message.alternatives[0]
        assert mimetype == "text/html"
        mailbox.set_content(html)
        expect(mailbox.locator("body")).to_contain_text(offer.title)
        if message is delivery:
            expect(mailbox.get_by_role("link", name="Redeem your gift")).to_have_attribute("href", link)
            expect(mailbox.locator("body")).to_contain_text(gift.code)
        snap(mailbox, f"07-email-{name}")
