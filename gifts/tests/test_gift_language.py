"""The recipient's language (issue 17): the redeem and decline pages opened from the gift's link read in the gift's
language unless the visitor chose one (the language cookie) or is signed in with a stored one; the certificate is in
the gift's language; a bulk list's `language` column becomes each gift's. The texts asserted are the catalogues'
(locale/de, locale/pl): "Redeem your gift" → "Geschenk einlösen", "Use another code" → "Anderen Code verwenden",
"No thanks?" → "Nein danke?", "Your gift code" → "Twój kod prezentu", "A gift for you" → "Prezent dla Ciebie"."""

from datetime import UTC, datetime

import pytest
import time_machine
from django.conf import settings
from django.urls import reverse

from accounts.tests.factories import CustomerFactory
from billing.models import Order
from gifts import bulk, services
from gifts.models import BulkList, Gift
from gifts.tests.factories import GuestFactory, make_gift
from gifts.tests.test_certificates import pdf_text, poppler  # noqa: F401 (a fixture)
from offers.tests.factories import OfferFactory

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def delivered(language, **fields):
    gift = make_gift(
        gifter=GuestFactory(first_name="Ana"),
        offer=OfferFactory(title="Premium monthly", period="month"),
        language=language,
        **fields,
    )
    services.deliver_due_gifts(send=False)
    gift.refresh_from_db()
    return gift


def link(gift):
    return f"{reverse('gifts:redeem')}?giftCode={gift.code}&t={gift.link_token}"


def test_it_shows_the_redeem_link_of_a_german_gift_in_german(client):
    response = client.get(link(delivered("de")), HTTP_ACCEPT_LANGUAGE="en")
    page = response.content.decode()
    assert response.status_code == 200 and response["Content-Language"] == "de"
    assert '<html lang="de"' in page and "Geschenk einlösen" in page and "Anderen Code verwenden" in page
    assert "<h1>Redeem your gift</h1>" not in page


def test_it_shows_the_decline_page_of_a_german_gift_in_german(client):
    gift = delivered("de")
    response = client.get(f"{reverse('gifts:decline')}?t={gift.link_token}")
    assert response.status_code == 200 and response["Content-Language"] == "de"
    assert "Nein danke?" in response.content.decode()


def test_the_visitors_own_choice_wins_over_the_gifts_language(client):
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    response = client.get(link(delivered("de")), HTTP_ACCEPT_LANGUAGE="de")
    page = response.content.decode()
    assert response["Content-Language"] == "en" and '<html lang="en"' in page and "Redeem your gift" in page


def test_a_signed_in_customer_reads_it_in_their_stored_language(client):
    client.force_login(CustomerFactory(locale="en_GB"))
    page = client.get(link(delivered("de"))).content.decode()
    assert '<html lang="en"' in page and "Redeem your gift" in page


def test_a_gift_without_a_language_or_a_wrong_token_leaves_the_browsers_language(client):
    gift = delivered("")
    assert client.get(link(gift), HTTP_ACCEPT_LANGUAGE="en")["Content-Language"] == "en"
    german = delivered("de")
    forged = f"{reverse('gifts:redeem')}?t={german.pk}.AAAAAAAAAAAAAAAAAAAAAA"
    assert client.get(forged, HTTP_ACCEPT_LANGUAGE="en")["Content-Language"] == "en"


@pytest.mark.usefixtures("poppler")
def test_the_certificate_of_a_polish_gift_is_in_polish(client):
    gifter = CustomerFactory(locale="en_US")
    gift = make_gift(
        gifter=gifter,
        offer=OfferFactory(title="Cinema Monthly"),
        recipient_first_name="Piotr",
        scheduled_at=datetime(2026, 12, 24, 9, tzinfo=UTC),
        now=NOW,
        language="pl",
    )
    client.force_login(gifter)
    response = client.get(reverse("gifts:certificate", args=[gift.pk]) + "?paper=a4")
    text = pdf_text(response.content)
    assert response.status_code == 200 and "Twój kod prezentu" in text and gift.code in text
    assert "Your gift code" not in text
    assert client.get(reverse("gifts:gifts")).content.decode().count('lang="en"') >= 1  # the gifter's page unchanged


def test_a_bulk_rows_language_becomes_its_gifts_language():
    gifter = CustomerFactory(time_zone="Europe/Berlin")
    offer = OfferFactory(title="Premium monthly")
    text = "\n".join(
        [
            "email,language",
            "a@example.com,de",
            "b@example.com,de-DE",
            "c@example.com,PL_pl",
            "d@example.com,",
            "e@example.com,pt-br",
        ]
    )
    with time_machine.travel(NOW, tick=False):
        bulk_list = bulk.bulk_list_create(gifter=gifter, offer=offer, source=text + "\n", name="team.csv")
    rows = {row.recipient_email: row for row in bulk_list.rows.all()}
    assert [rows[email].language for email in ("a@example.com", "b@example.com", "c@example.com")] == ["de"] * 2 + [
        "pl"
    ]
    assert rows["e@example.com"].problems == ["“pt-br” is not a language code we know (one of en, de, es, fr, pl)."]
    rows["e@example.com"].dropped = True
    rows["e@example.com"].save(update_fields=["dropped"])
    order = Order.objects.create(
        customer=gifter, offer=offer, quantity=4, currency="USD", offer_price=40, total_price=40
    )
    BulkList.objects.filter(pk=bulk_list.pk).update(status="paid", order=order, paid_at=NOW, gifts_to_create=4)
    bulk.bulk_gifts_create(list_id=bulk_list.pk)
    languages = dict(Gift.objects.values_list("recipient_email", "language"))
    assert languages == {"a@example.com": "de", "b@example.com": "de", "c@example.com": "pl", "d@example.com": ""}
