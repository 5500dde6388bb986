"""Checkout and redeem walked in German and in Polish (issue 17), in Debian's Chromium against the live server: a
gifter whose browser asks for the language buys a gift in it, for a recipient who reads it in the language the
gifter chose, from the emailed link, whatever their own browser asks for. Every label the test looks for is the
catalogue's translation (so the walk fails on any untranslated step), and screenshots are taken at phone and desktop
width."""

import re
from urllib.parse import urlencode

import pytest
from django.core import mail
from django.utils import translation
from playwright.sync_api import expect

from accounts.models import Customer, Subscription
from gifts import services as gift_services
from gifts.models import Gift, GiftStatus
from giftshop.models import SiteSettings
from giftshop.money import money
from giftshop.tests import test_browser
from giftshop.tests.test_browser import CARD_OK, PASSWORD, main
from offers.tests.factories import OfferFactory

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

persona, snap = test_browser.persona, test_browser.snap
BROWSER_LOCALES = {"de": "de-DE", "pl": "pl-PL"}


def in_language(language):
    """`t(msgid, **values)`: the catalogue's text in `language`, which must differ from the English."""

    def t(message, context=None, **values):
        with translation.override(language):
            text = translation.pgettext(context, message) if context else translation.gettext(message)
        assert text != message, f"{message!r} is not translated into {language}"
        return text % values if values else text

    return t


@pytest.mark.parametrize("language", ["de", "pl"])
def test_a_gift_is_bought_and_redeemed_in_the_readers_language(persona, snap, live_server, language):
    t = in_language(language)
    offer = OfferFactory(title="Premium Streaming", currency="EUR")
    site = SiteSettings.load()
    site.redeem_url = f"{live_server.url}/redeem/"
    site.save()

    # The gifter's browser asks for the language: every page answers in it.
    page = persona(locale=BROWSER_LOCALES[language], timezone_id="Europe/Warsaw")
    page.goto("/")
    expect(page.locator("html")).to_have_attribute("lang", language)
    expect(page.get_by_role("heading", name=t("Choose a plan"))).to_be_visible()
    page.get_by_role("link", name=offer.title).click()
    page.get_by_role("link", name=t("As a gift")).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(t("Give %(offer)s as a gift", offer=offer.title))
    gift_language = page.get_by_label(t("Language of the gift"))
    expect(gift_language).to_have_value(language)  # the page's language, unless the gifter picks another
    page.get_by_label(t("Your email")).fill("sam.buyer@example.com")
    page.get_by_label(t("Recipient's first name")).fill("Robin")
    page.get_by_label(t("Recipient's email"), exact=True).fill("robin@example.com")
    page.get_by_label(t("Recipient's email again")).fill("robin@example.com")
    page.get_by_label(t("Send it now")).check()
    counter = t("%%(left)s of %%(limit)s characters left")  # a template's %, doubled in the catalogue
    expect(page.locator("#note-counter")).to_have_text(counter.replace("%%(left)s", "150").replace("%%(limit)s", "150"))
    page.get_by_label(t("Card number")).fill(CARD_OK)
    page.get_by_label(t("Expiry month")).fill("12")
    page.get_by_label(t("Expiry year")).fill("2030")
    page.get_by_label(t("Security code")).fill("123")
    pay = page.get_by_role("button", name=t("Pay %(amount)s", amount=money_in(language, offer.price, offer.currency)))
    snap(page, f"01-checkout-{language}")

    pay.click()
    expect(page).to_have_url(re.compile(r"/thanks/\d+/$"))
    expect(page.get_by_role("heading", level=1)).to_have_text(t("Thank you!"))
    gift = Gift.objects.get()
    assert (gift.language, gift.order.gift_language) == (language, language)
    snap(page, f"02-thanks-{language}")

    # The recipient's browser asks for English; the link opens the gift in the language its gifter chose.
    gift_services.deliver_due_gifts()
    delivery = next(m for m in mail.outbox if m.to == ["robin@example.com"])
    link = f"{live_server.url}/redeem/?{urlencode({'giftCode': gift.code, 't': gift.link_token})}"
    assert link in delivery.body
    assert t("Your gift code") in delivery.body or t("Redeem your gift") in delivery.alternatives[0][0]
    page = persona(timezone_id="Europe/Warsaw")
    page.goto(link)
    expect(page.locator("html")).to_have_attribute("lang", language)
    expect(page.get_by_role("heading", level=1)).to_have_text(t("Redeem your gift"))
    snap(page, f"03-redeem-link-{language}")

    page.get_by_label(t("First name")).fill("Robin")
    page.get_by_label(t("Last name")).fill("Lee")
    page.get_by_label(t("Password")).fill(PASSWORD)
    page.get_by_role("button", name=t("Redeem my gift")).click()
    expect(page).to_have_url(f"{live_server.url}/redeem/done/{gift.pk}/")
    expect(page.get_by_role("heading", level=1)).to_have_text(t("Enjoy your gift!"))
    expect(main(page)).to_contain_text(offer.title)
    robin = Customer.objects.get(email="robin@example.com")
    gift.refresh_from_db()
    assert gift.status == GiftStatus.CLAIMED
    assert Subscription.objects.filter(customer=robin).exists()
    snap(page, f"04-redeemed-{language}")


def money_in(language, amount, currency):
    with translation.override(language):
        return money(amount, currency)
