"""Issue 16 in a real browser (see giftshop/tests/test_browser.py): a gifter who changed their mind withdraws a
delivered gift from "My gifts" (the card says until when, the confirmation page states the amount and the deadline),
is refunded through the gateway, and the recipient's emailed link then says the gift was withdrawn. Every page is
saved at phone and desktop width."""

import re
import uuid
from urllib.parse import urlencode

import pytest
from playwright.sync_api import expect

from accounts.tests.factories import CustomerFactory, PaymentMethodFactory
from billing import services as billing_services
from billing.models import Payment
from gifts import services as gift_services
from gifts.models import Gift, GiftStatus
from giftshop.tests import test_browser
from giftshop.tests.test_browser import main
from offers.tests.factories import OfferFactory

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

persona, snap = test_browser.persona, test_browser.snap  # the browser tests' fixtures: a browser per person, shots
PASSWORD = "correct horse battery staple"


def test_a_gifter_withdraws_a_gift_from_my_gifts_and_its_link_then_says_so(persona, snap):
    gifter = CustomerFactory(email="ana@example.com", password=PASSWORD, time_zone="Europe/Lisbon")
    PaymentMethodFactory(customer=gifter, token=f"tok_sandbox_success_{uuid.uuid4().hex[:12]}")
    order = billing_services.checkout(
        customer=gifter,
        offer=OfferFactory(title="Premium Streaming", period="month", price="9.99", currency="EUR"),
        checkout_key=uuid.uuid4().hex,
        as_gift=True,
        recipient_email="peter@example.com",
        payment_method=gifter.payment_methods.get(),
    )
    gift_services.deliver_due_gifts(send=False)
    gift = Gift.objects.get(order=order)
    link = f"/redeem/?{urlencode({'giftCode': gift.code, 't': gift.link_token})}"

    page = persona(timezone_id="Europe/Lisbon")
    page.goto("/login/?next=/account/gifts/")
    page.get_by_label("Email").fill("ana@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    main(page).get_by_role("button", name="Log in").click()
    card = page.locator(f"#gift-{gift.pk}")
    expect(card).to_contain_text("You can withdraw it until")
    expect(card).to_contain_text("Lisbon time")
    snap(page, "01-my-gifts")

    card.get_by_role("link", name=re.compile("^Withdraw and refund")).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Withdraw your gift of Premium Streaming")
    expect(main(page)).to_contain_text("We refund €9.99 to the card you paid with")
    snap(page, "02-confirm")
    main(page).get_by_role("button", name="Withdraw and refund €9.99").click()

    expect(page).to_have_url(re.compile("/account/gifts/$"))
    expect(page.locator(".messages")).to_contain_text("€9.99 is refunded to the card you paid with.")
    expect(card).to_contain_text("Withdrawn")
    expect(card.get_by_role("link", name=re.compile("^Withdraw and refund"))).to_have_count(0)
    snap(page, "03-withdrawn")
    gift.refresh_from_db()
    refund = Payment.objects.get(kind=Payment.Kind.REFUND, invoice_id=gift.invoice_id)
    assert gift.status == GiftStatus.CANCELLED and refund.status == Payment.Status.SUCCEEDED

    recipient = persona()
    recipient.goto(link)
    expect(main(recipient)).to_contain_text("This gift was withdrawn by the person who gave it.")
    snap(recipient, "04-recipients-link")
