"""The phone layout (390x844, an iPhone 12-15) in a real browser: a logged-in customer's header links fit one line,
and the gift checkout's fields are evenly spaced, with no wider gap under the delivery date or the card's expiry
(a field's margins added to its row's gap once left one under each field that wrapped)."""

import pytest
from playwright.sync_api import expect

from accounts.models import Customer
from giftshop.tests import test_browser
from giftshop.tests.test_browser import PASSWORD, PHONE, main
from offers.tests.factories import OfferFactory

pytestmark = test_browser.pytestmark
persona, snap = test_browser.persona, test_browser.snap  # the browser tests' fixtures: a browser per person, shots

# The tops of the header's links (and the log-out button's form), rounded to whole pixels.
LINK_TOPS = "nav => [...nav.children].map(item => Math.round(item.getBoundingClientRect().top))"
# From the bottom of one field's input to the top of the next field's label, in pixels.
GAP = """([above, below]) => document.querySelector(`label[for="${below}"]`).getBoundingClientRect().top
    - document.getElementById(above).getBoundingClientRect().bottom"""


@pytest.fixture
def phone(persona, live_server):
    """A logged-in customer's browser at phone size."""
    customer = Customer.objects.create_user("ana@example.com", password=PASSWORD, first_name="Ana")
    page = persona()
    page.set_viewport_size(PHONE)
    page.goto("/login/")
    page.get_by_label("Email").fill(customer.email)
    page.get_by_label("Password").fill(PASSWORD)
    main(page).get_by_role("button", name="Log in").click()
    expect(page.get_by_role("navigation", name="Main").get_by_role("button", name="Log out")).to_be_visible()
    return page


def test_a_logged_in_customers_header_links_fit_one_line(phone, snap):
    phone.goto("/account/")
    nav = phone.get_by_role("navigation", name="Main")
    expect(nav.get_by_role("link", name="Your account")).to_be_visible()
    tops = nav.evaluate(LINK_TOPS)
    assert len(tops) == 4 and len(set(tops)) == 1, f"the header's links wrap: tops {tops}"
    snap(phone, "01-account")


def test_the_gift_checkouts_date_and_expiry_fields_have_no_wider_gap_under_them(phone, snap):
    offer = OfferFactory(title="Premium Streaming")
    phone.goto(f"/checkout/{offer.long_id}/gift/")
    expect(phone.get_by_label("Delivery date")).to_be_visible()
    usual = phone.evaluate(GAP, ["id_recipient_email", "id_recipient_email_again"])
    for pair in (
        ["id_delivery_date", "id_delivery_time"],
        ["id_delivery_time", "id_time_zone"],
        ["id_card_number", "id_exp_month"],
        ["id_exp_month", "id_exp_year"],
        ["id_exp_year", "id_cvc"],
    ):
        gap = phone.evaluate(GAP, pair)
        assert gap <= usual + 1, f"{pair[0]}: {gap:.1f}px to the next field, {usual:.1f}px between the others"
    snap(phone, "01-gift-checkout")
