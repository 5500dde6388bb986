"""The outbox's admin shows, in the demo (DEBUG), each email rendered as its recipient gets it: a newcomer reads the
gift email and follows its link without looking for it in the worker's log. Rendering happens when the page is
viewed (nothing is stored or sent), only staff see it, and outside DEBUG the page shows no rendered email: it holds
the full code, which the admin of a real shop never shows."""

import re
from html import unescape

import pytest
from django.core import mail
from django.urls import reverse
from playwright.sync_api import expect

from accounts.tests.factories import CustomerFactory
from emails.models import Email
from gifts import services
from gifts.tests.factories import GiftFactory

PASSWORD = "correct horse battery staple"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}


@pytest.fixture
def delivery(db, settings):
    """The delivery email of a gift that went out just now."""
    settings.SITE_URL = "http://127.0.0.1:8802"
    gift = GiftFactory(recipient_email="peter@example.com", personal_note="Enjoy <b>the films</b>!")
    assert services.deliver_due_gifts() == 1
    return Email.objects.get(gift=gift, kind=Email.Kind.GIFT_DELIVERY)


@pytest.fixture
def staff_client(db, client):
    client.force_login(CustomerFactory(is_staff=True, is_superuser=True))
    return client


def change_page(email):
    return reverse("admin:emails_email_change", args=[email.pk])


def test_it_shows_the_rendered_email_in_the_demo(settings, staff_client, delivery):
    settings.DEBUG = True
    gift = delivery.gift

    response = staff_client.get(change_page(delivery))

    assert response.status_code == 200
    page = response.content.decode()
    text = re.search(r'<pre id="email-preview-text"[^>]*>(.*?)</pre>', page, re.S).group(1)
    html = unescape(re.search(r'srcdoc="([^"]*)"', page).group(1))
    link = f'href="http://127.0.0.1:8802/redeem/?giftCode={gift.code}&amp;t={gift.link_token}"'
    assert gift.code in text and link in text  # the text part, its link clickable
    assert gift.code in html and "Redeem your gift" in html  # the HTML part, for the sandboxed frame
    assert "Enjoy &lt;b&gt;the films&lt;/b&gt;!" in html  # the gifter's note stays escaped inside the email
    assert "<b>the films</b>" not in page  # and the text part's (unescaped in a plain-text email) in the page
    assert 'sandbox="allow-same-origin" srcdoc="' in page  # no script, form or pop-up from the email


def test_viewing_the_preview_stores_and_sends_nothing(settings, staff_client, delivery):
    settings.DEBUG = True
    before, sent = Email.objects.values().get(pk=delivery.pk), len(mail.outbox)

    staff_client.get(change_page(delivery))

    assert Email.objects.values().get(pk=delivery.pk) == before
    assert len(mail.outbox) == sent


def test_it_shows_no_rendered_email_outside_the_demo(settings, staff_client, delivery):
    settings.DEBUG = False

    response = staff_client.get(change_page(delivery))

    assert response.status_code == 200
    page = response.content.decode()
    assert "The rendered email is shown only in development" in page
    assert delivery.gift.code not in page and "srcdoc" not in page


def test_a_customer_cannot_open_the_preview(settings, client, delivery):
    settings.DEBUG = True
    client.force_login(CustomerFactory())

    response = client.get(change_page(delivery))

    assert response.status_code == 302 and response.url.startswith(reverse("admin:login"))


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_newcomer_reads_the_gift_email_in_the_admin_and_follows_its_link(chromium, live_server, settings, snap):
    settings.DEBUG = True
    settings.SITE_URL = live_server.url
    CustomerFactory(email="admin@example.com", is_staff=True, is_superuser=True)
    gift = GiftFactory(recipient_email="peter@example.com")
    services.deliver_due_gifts()
    context = chromium.new_context(base_url=live_server.url, viewport=DESKTOP, locale="en-GB")
    page = context.new_page()

    page.goto("/admin/emails/email/")  # where bin/run says the emails are
    page.get_by_label("Email").fill("admin@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("link", name=f"gift:{gift.pk}:delivery").click()

    frame = page.frame_locator("#email-preview-html")
    expect(frame.get_by_role("heading", name="You've received a gift")).to_be_visible()
    expect(frame.get_by_text(gift.code)).to_be_visible()
    snap(page, "email-preview")
    page.locator("#email-preview-text").get_by_role("link").first.click()
    expect(page).to_have_url(re.compile(r"/redeem/\?giftCode="))
    expect(page.get_by_text(gift.offer.title).first).to_be_visible()
    context.close()


@pytest.fixture
def snap(screenshots):
    """Full-page screenshots at phone and desktop width (as in giftshop/tests/test_browser.py)."""

    def both(page, name):
        for size, suffix in ((PHONE, "phone"), (DESKTOP, "desktop")):
            page.set_viewport_size(size)
            page.evaluate("() => new Promise(done => requestAnimationFrame(() => requestAnimationFrame(done)))")
            screenshots(page, f"{name}-{suffix}")

    return both
