"""Issue 16 in a real browser (see giftshop/tests/test_browser.py): a gifter whose gift ended unredeemed under a credit
offer sees the credit on their account page and at checkout ("€x of account credit will be used"), and pays with it
without a card; a recipient whose access a gift would take past its offer's stacked-access cap is told so on the
redeem page, and nothing changes. Every page is saved at phone and desktop width."""

import re
import uuid

import pytest
from dateutil.relativedelta import relativedelta
from django.utils import timezone
from playwright.sync_api import expect

from accounts.tests.factories import CustomerFactory, SubscriptionFactory
from billing.credit import credit_balance, credit_give
from billing.models import CreditEntry
from gifts import services as gift_services
from gifts.models import GiftStatus
from gifts.tests.factories import make_gift
from giftshop.tests import test_browser
from giftshop.tests.test_browser import main
from offers.tests.factories import OfferFactory

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

persona, snap = test_browser.persona, test_browser.snap  # the browser tests' fixtures: a browser per person, shots
PASSWORD = "correct horse battery staple"


def log_in(page, email, next_url):
    page.goto(f"/login/?next={next_url}")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    main(page).get_by_role("button", name="Log in").click()


def test_a_gifter_sees_their_credit_and_pays_a_checkout_with_it(persona, snap):
    gifter = CustomerFactory(email="ana@example.com", password=PASSWORD)
    credit_give(
        customer=gifter,
        amount="20.00",
        currency="EUR",
        reason=CreditEntry.Reason.GIFT_UNREDEEMED,
        key=f"gift:test-{uuid.uuid4().hex}:unredeemed",
    )
    offer = OfferFactory(title="Premium Streaming", period="month", price="9.99", currency="EUR")

    page = persona()
    log_in(page, "ana@example.com", "/account/")
    expect(page.locator("#account-credit")).to_contain_text("Account credit: €20.00")
    snap(page, "01-account-credit")

    page.goto(f"/checkout/{offer.long_id}/")
    expect(page.locator("#credit-note")).to_contain_text("€9.99 of account credit will be used: no card is needed.")
    snap(page, "02-checkout-credit")
    main(page).get_by_role("button", name="Pay €9.99").click()

    expect(page).to_have_url(re.compile("/thanks/"))
    assert str(credit_balance(customer=gifter, currency="EUR")) == "10.01"
    page.goto("/account/")
    expect(page.locator("#account-credit")).to_contain_text("€10.01")


def test_a_recipient_is_told_a_gift_would_pass_the_stacked_access_cap(persona, snap):
    recipient = CustomerFactory(email="peter@example.com", password=PASSWORD)
    now = timezone.now()
    held = SubscriptionFactory(
        customer=recipient,
        offer=OfferFactory(tags=["premium"]),
        term_start=now - relativedelta(months=1),
        term_end=now + relativedelta(months=17),
    )
    offer = OfferFactory(title="Premium quarterly", period="3months", tags=["premium"], stack_cap_months=18)
    gift = make_gift(offer=offer, recipient_email="peter@example.com")
    gift_services.deliver_due_gifts(send=False)
    until = held.term_end + relativedelta(months=3)

    page = persona()
    log_in(page, "peter@example.com", "/redeem/")
    page.get_by_label("Gift code").fill(gift.code)
    main(page).get_by_role("button", name="Verify").click()

    alert = main(page).get_by_role("alert").first
    expect(alert).to_contain_text(f"This gift would take your access past 18 months ahead (to {until:%-d %B %Y})")
    expect(alert).to_contain_text(f"redeem it after {until - relativedelta(months=18):%-d %B %Y}.")
    snap(page, "03-redeem-cap-refused")
    gift.refresh_from_db()
    held_end = held.term_end
    held.refresh_from_db()
    assert gift.status == GiftStatus.UNCLAIMED and held.term_end == held_end
