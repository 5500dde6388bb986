"""Which language a page and an email are read in (issue 17): the switcher's cookie, then a signed-in customer's
stored language, then Accept-Language, then English; each email in its reader's; money and times written for the
reader."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.conf import settings
from django.template import Context, Template
from django.urls import reverse
from django.utils import translation

from accounts.models import Customer
from accounts.tests.factories import CustomerFactory
from emails.models import Email
from emails.services import email_language, render
from gifts.tests.factories import GiftFactory
from giftshop.i18n import language_of, locale_for
from giftshop.money import money
from giftshop.timezones import in_words


def html_lang(response):
    page = response.content.decode()
    return page[page.index("<html") : page.index(">", page.index("<html")) + 1]


@pytest.mark.parametrize(
    ("locale", "language"),
    [("de_DE", "de"), ("de-AT", "de"), ("pl", "pl"), ("fr_CA", "fr"), ("en_US", "en"), ("ja_JP", "en"), ("", "en")],
)
def test_it_reads_a_stored_locale_as_one_of_the_site_languages(locale, language):
    assert language_of(locale) == language


def test_it_stores_a_chosen_language_as_its_likely_locale_keeping_a_regional_one():
    assert [locale_for(code) for code in ("de", "es", "fr", "pl", "en")] == [
        "de_DE",
        "es_ES",
        "fr_FR",
        "pl_PL",
        "en_US",
    ]
    assert locale_for("de", "de_CH") == "de_CH"
    assert locale_for("fr", "de_CH") == "fr_FR"


def test_it_answers_in_the_browsers_language_with_the_direction(db, client):
    response = client.get(reverse("billing:catalogue"), headers={"accept-language": "pl,en;q=0.5"})
    assert html_lang(response) == '<html lang="pl" dir="ltr">'
    assert response["Content-Language"] == "pl"


def test_a_signed_in_customers_stored_language_outranks_the_browsers(db, client):
    client.force_login(CustomerFactory(locale="de_DE"))
    response = client.get(reverse("billing:catalogue"), headers={"accept-language": "fr"})
    assert html_lang(response) == '<html lang="de" dir="ltr">'


def test_the_switchers_choice_outranks_the_stored_language(db, client):
    client.force_login(CustomerFactory(locale="de_DE"))
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "es"
    response = client.get(reverse("billing:catalogue"), headers={"accept-language": "fr"})
    assert html_lang(response) == '<html lang="es" dir="ltr">'


def test_every_page_has_the_language_switcher(db, client):
    page = client.get(reverse("gifts:redeem")).content.decode()
    assert f'action="{reverse("set_language")}"' in page
    assert all(f'<option value="{code}" lang="{code}"' in page for code, _name in settings.LANGUAGES)


def test_switching_language_sets_the_cookie_and_returns_to_the_page(db, client):
    response = client.post(reverse("set_language"), {"language": "fr", "next": "/redeem/"})
    assert response.status_code == 302 and response["Location"] == "/redeem/"
    assert response.cookies[settings.LANGUAGE_COOKIE_NAME].value == "fr"


def test_switching_language_while_signed_in_stores_it_on_the_account(db, client):
    customer = CustomerFactory(locale="en_US")
    client.force_login(customer)
    client.post(reverse("set_language"), {"language": "pl", "next": "/"})
    customer.refresh_from_db()
    assert customer.locale == "pl_PL"


def test_it_stores_nothing_for_a_language_the_site_does_not_offer(db, client):
    customer = CustomerFactory(locale="de_DE")
    client.force_login(customer)
    client.post(reverse("set_language"), {"language": "xx", "next": "/"})
    customer.refresh_from_db()
    assert customer.locale == "de_DE"


def test_the_account_page_saves_the_language(db, client):
    customer = CustomerFactory(locale="en_US")
    client.force_login(customer)
    assert 'name="language"' in client.get(reverse("accounts:account")).content.decode()
    response = client.post(
        reverse("accounts:account"), {"first_name": "Ada", "last_name": "L", "time_zone": "", "language": "es"}
    )
    assert response.status_code == 302
    customer.refresh_from_db()
    assert customer.locale == "es_ES"
    assert response.cookies[settings.LANGUAGE_COOKIE_NAME].value == "es"


# --- emails -----------------------------------------------------------------------------------------------------


def an_email(kind, gift, to):
    return Email.objects.create(kind=kind, key=f"test:{kind}:{gift.pk}:{to}", to_email=to, gift=gift)


def test_the_gifters_emails_are_in_the_gifters_language(db):
    gift = GiftFactory(gifter=CustomerFactory(locale="fr_FR"), language="de")
    email = an_email("gift_receipt", gift, gift.gifter.email)
    assert email_language(email) == "fr"


def test_the_recipients_emails_are_in_the_language_chosen_for_the_gift(db):
    gift = GiftFactory(gifter=CustomerFactory(locale="fr_FR"), language="pl")
    for kind in ("gift_delivery", "claim_expiring", "gift_nudge"):
        assert email_language(an_email(kind, gift, gift.recipient_email)) == "pl"


def test_a_recipient_with_an_account_reads_in_their_own_language(db):
    recipient = CustomerFactory(locale="es_ES")
    gift = GiftFactory(recipient_email=recipient.email, language="pl")
    assert email_language(an_email("gift_delivery", gift, recipient.email)) == "es"


def test_the_account_that_redeemed_the_gift_reads_in_its_language(db):
    gift = GiftFactory(receiver=CustomerFactory(locale="de_DE"), language="pl")
    assert email_language(an_email("claim_expiring", gift, gift.recipient_email)) == "de"


def test_an_email_with_no_language_to_go_by_is_in_the_sites(db):
    gift = GiftFactory(language="")
    assert email_language(an_email("gift_delivery", gift, gift.recipient_email)) == settings.LANGUAGE_CODE


def test_it_renders_the_email_in_its_readers_language(db):
    gift = GiftFactory(language="de")
    message = render(an_email("gift_delivery", gift, gift.recipient_email))
    assert '<html lang="de" dir="ltr">' in message.alternatives[0][0]
    assert translation.get_language() == settings.LANGUAGE_CODE  # the worker's own language is left as it was


# --- money and times --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("language", "shown"),
    [("en", "€1,234.56"), ("de", "1.234,56\xa0€"), ("es", "1.234,56\xa0€"), ("fr", "1\u202f234,56\xa0€")],
)
def test_it_writes_money_as_the_readers_language_does(language, shown):
    with translation.override(language):
        assert money(Decimal("1234.56"), "EUR") == shown
        assert (
            Template("{{ amount|money:currency }}").render(Context({"amount": "1234.56", "currency": "eur"})) == shown
        )


def test_it_writes_a_currency_without_decimals_without_them():
    assert money(Decimal("1500"), "JPY", "en") == "¥1,500"


def test_a_time_in_words_is_unchanged_in_english_and_names_the_day_in_the_readers_language():
    when, now = datetime(2026, 12, 10, 2, 30, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC)
    assert in_words(when, "America/Los_Angeles", now) == "Wed 9 Dec, 18:30 Los Angeles time"
    with translation.override("de"):
        assert in_words(when, "America/Los_Angeles", now).startswith("Mi")
        assert "Dez" in in_words(when, "America/Los_Angeles", now)


def test_a_new_account_keeps_the_language_it_registered_in(db, client):
    client.post(
        reverse("accounts:register"),
        {
            "email": "neu@example.com",
            "first_name": "Neu",
            "last_name": "Kunde",
            "password1": "Violet marmalade 77 skyline",
            "password2": "Violet marmalade 77 skyline",
        },
        headers={"accept-language": "de-DE,de;q=0.9"},
    )
    assert Customer.objects.get(email="neu@example.com").locale == "de_DE"
