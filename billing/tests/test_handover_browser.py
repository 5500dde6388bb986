"""Checkout's "give it in person" and its design choice in a real browser (issue 16): the preview card takes the chosen
design's colours and artwork, the address fields go away for a handover, and the thank-you page links the
certificate, which downloads. Screenshots at phone and desktop width (giftshop/tests/test_browser.py's `snap`)."""

import re

import pytest
from playwright.sync_api import expect

from accounts.tests.factories import CustomerFactory
from billing.tests import test_handover_checkout
from gifts.models import Gift, GiftStatus
from giftshop.tests import test_browser
from giftshop.tests.test_browser import CARD_OK, PASSWORD, fill_card, main, pay
from offers.tests.factories import OfferFactory

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("builtin_designs")]

persona, snap = test_browser.persona, test_browser.snap  # the browser tests' fixtures: a browser per person, shots
designs = test_handover_checkout.designs  # autouse: the built-in designs, which a transactional flush removes


def rgb(hex_colour):
    red, green, blue = (int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgb({red}, {green}, {blue})"


def test_a_gifter_picks_a_design_sees_it_and_gets_a_certificate_to_hand_over(persona, snap, live_server):
    offer = OfferFactory(title="Premium Streaming")
    CustomerFactory(email="ana@example.com", password=PASSWORD)
    page = persona(timezone_id="Europe/Berlin")
    page.goto(f"/login/?next=/checkout/{offer.long_id}/gift/")
    page.get_by_label("Email").fill("ana@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    main(page).get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Give {offer.title} as a gift")

    card = page.locator("#design-preview [data-preview=card]")
    expect(page.locator("#design-preview")).to_be_visible()  # the script shows it (hidden without script)
    expect(card).to_have_css("background-color", rgb("#ffffff"))
    expect(page.get_by_label("Recipient's email", exact=True)).to_be_visible()
    snap(page, "01-checkout-email")

    page.get_by_label("Send it to me to give in person").check()
    expect(page.get_by_label("Recipient's email", exact=True)).to_be_hidden()
    expect(page.get_by_label("Delivery date")).to_be_hidden()
    expect(page.get_by_label("Recipient's first name")).to_be_visible()  # the certificate greets them by it
    page.locator(".design-choice", has_text="Birthday").click()
    expect(card).to_have_css("background-color", rgb("#fff8e7"))
    expect(card).to_have_css("border-top-color", rgb("#a3320b"))
    expect(card).to_have_attribute("data-design", "birthday")
    expect(card.locator("svg")).to_have_count(1)  # the birthday artwork, copied from its radio
    page.get_by_label("Recipient's first name").fill("Robin")
    page.get_by_label("Pay with").select_option("")
    fill_card(page, CARD_OK)
    snap(page, "02-checkout-handover-birthday")

    pay(page)
    expect(page).to_have_url(re.compile(r"/thanks/\d+/$"))
    expect(main(page).locator(".lead")).to_contain_text("ready for you to give in person")
    gift = Gift.objects.get()
    assert (gift.status, gift.delivery_method, gift.design.slug) == (GiftStatus.UNCLAIMED, "handover", "birthday")
    snap(page, "03-thanks-handover")

    with page.expect_download() as download:
        page.get_by_role("link", name="Certificate, A4 (PDF)").click()
    path = download.value.path()
    with open(path, "rb") as pdf:
        assert pdf.read(4) == b"%PDF"
