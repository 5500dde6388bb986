"""The time-zone round trip in a real browser, in a zone that is not the site's: a gifter in Los Angeles picks a
delivery time (the picker offers the browser's zone first and preselects it), and the thank-you page, "My gifts" and
the edit page all speak Los Angeles time; moving the gift to Santiago on the edit page keeps the clock reading
and stores the new zone, and saving again untouched keeps the instant."""

import re
from datetime import time, timedelta
from zoneinfo import ZoneInfo

from django.utils import timezone
from playwright.sync_api import expect

from accounts.models import Customer
from gifts.models import Gift
from giftshop.tests import test_browser
from giftshop.tests.test_browser import PASSWORD, fact, fill_card, fill_recipient, main, pay
from giftshop.timezones import in_words, local_to_utc
from offers.tests.factories import OfferFactory

pytestmark = test_browser.pytestmark
persona, snap = test_browser.persona, test_browser.snap  # the browser tests' fixtures: a browser per person, shots

LOS_ANGELES, SANTIAGO = "America/Los_Angeles", "America/Santiago"


def test_a_gifter_in_los_angeles_sees_and_edits_every_time_in_los_angeles_time(persona, snap, live_server):
    offer = OfferFactory(title="Premium Streaming")
    gifter = Customer.objects.create_user("ana@example.com", password=PASSWORD)  # no zone of her own yet
    page = persona(timezone_id=LOS_ANGELES)
    page.goto(f"/login/?next=/checkout/{offer.long_id}/gift/")
    page.get_by_label("Email").fill(gifter.email)
    page.get_by_label("Password").fill(PASSWORD)
    main(page).get_by_role("button", name="Log in").click()
    expect(page).to_have_url(f"{live_server.url}/checkout/{offer.long_id}/gift/")

    # The browser's zone is chosen, and first in the "Common" group.
    zone = page.get_by_label("Time zone")
    expect(zone).to_have_value(LOS_ANGELES)
    expect(zone.locator("optgroup").first).to_have_attribute("label", "Common")
    expect(zone.locator("optgroup").first.locator("option").first).to_have_attribute("value", LOS_ANGELES)
    for link in ("GB-Eire", "W-SU", "Zulu", "Etc/GMT+8", "US/Pacific"):
        expect(zone.locator(f'option[value="{link}"]')).to_have_count(0)

    day = timezone.now().astimezone(ZoneInfo(LOS_ANGELES)).date() + timedelta(days=5)
    fill_recipient(page, "peter@example.com")
    page.get_by_label("Delivery date").fill(day.isoformat())
    page.get_by_label("Delivery time").fill("18:30")
    fill_card(page, test_browser.CARD_OK)
    snap(page, "01-checkout-los-angeles")
    pay(page)
    expect(page).to_have_url(re.compile(r"/thanks/\d+/$"))
    when = local_to_utc(day, time(18, 30), LOS_ANGELES)
    gift = Gift.objects.get()
    assert (gift.scheduled_at, gift.time_zone) == (when, LOS_ANGELES)
    cutoff = local_to_utc(day, time(0), LOS_ANGELES)
    expect(fact(page, "Arrives")).to_have_text(in_words(when, LOS_ANGELES))
    expect(fact(page, "You can change it until")).to_have_text(in_words(cutoff, LOS_ANGELES))
    snap(page, "02-thanks-los-angeles")

    main(page).get_by_role("link", name="See your gifts").click()
    card = page.locator(f"#gift-{gift.pk}")
    expect(card).to_contain_text(f"{in_words(when, LOS_ANGELES)}")
    expect(card).to_contain_text(f"{day:%a} {day.day} {day:%b}, 18:30 Los Angeles time")
    snap(page, "03-gifts-los-angeles")

    # The edit page reads the time on the gift's clock, and a new zone keeps the clock reading.
    card.get_by_role("link", name=re.compile("^Edit delivery details")).click()
    expect(page.get_by_label("Delivery date")).to_have_value(day.isoformat())
    expect(page.get_by_label("Delivery time")).to_have_value("18:30")
    expect(page.get_by_label("Time zone")).to_have_value(LOS_ANGELES)
    snap(page, "04-edit-los-angeles")
    page.get_by_label("Time zone").select_option(SANTIAGO)
    page.get_by_role("button", name="Save changes").click()
    expect(page).to_have_url(f"{live_server.url}/account/gifts/")
    in_santiago = local_to_utc(day, time(18, 30), SANTIAGO)
    expect(card).to_contain_text(in_words(in_santiago, SANTIAGO))
    gift.refresh_from_db()
    assert (gift.scheduled_at, gift.time_zone) == (in_santiago, SANTIAGO)
    snap(page, "05-gifts-santiago")

    # Saved again untouched: the same instant.
    card.get_by_role("link", name=re.compile("^Edit delivery details")).click()
    expect(page.get_by_label("Delivery time")).to_have_value("18:30")
    expect(page.get_by_label("Time zone")).to_have_value(SANTIAGO)  # the gift's, not the browser's guess
    page.get_by_role("button", name="Save changes").click()
    expect(page).to_have_url(f"{live_server.url}/account/gifts/")
    gift.refresh_from_db()
    assert (gift.scheduled_at, gift.time_zone) == (in_santiago, SANTIAGO)
    gifter.refresh_from_db()
    assert gifter.time_zone == ""  # a customer's own zone is theirs to set (the account page)


def test_the_picker_posts_a_valid_zone_without_javascript(persona, live_server):
    # No screenshots here: they wait for an animation frame, which never comes without JavaScript.
    offer = OfferFactory(title="Premium Streaming")
    page = persona(timezone_id=LOS_ANGELES, java_script_enabled=False)
    page.goto(f"/checkout/{offer.long_id}/gift/")
    zone = page.get_by_label("Time zone")
    expect(zone).to_have_value("UTC")  # the site's zone: no script to guess the browser's
    zone.select_option(SANTIAGO)
    day = timezone.now().astimezone(ZoneInfo(SANTIAGO)).date() + timedelta(days=3)
    page.get_by_label("Your email").fill("guest@example.com")
    fill_recipient(page, "peter@example.com")
    page.get_by_label("Delivery date").fill(day.isoformat())
    page.get_by_label("Delivery time").fill("09:00")
    fill_card(page, test_browser.CARD_OK)
    pay(page)
    expect(page).to_have_url(re.compile(r"/thanks/\d+/$"))
    when = local_to_utc(day, time(9), SANTIAGO)
    assert (Gift.objects.get().scheduled_at, Gift.objects.get().time_zone) == (when, SANTIAGO)
    expect(fact(page, "Arrives")).to_have_text(in_words(when, SANTIAGO))
