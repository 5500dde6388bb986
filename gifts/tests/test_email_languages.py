"""Every gift email in each of the five languages (issue 17): rendered by the outbox's own render step, in the language
of whoever reads it — the recipient's emails in the gift's language (or the redeeming account's), the gifter's in the
gifter's. A translated email keeps the user's data (names, note, code, links) and leaves no English sentence of its
English version behind."""

import re
from decimal import Decimal
from html import unescape

import pytest
from django.conf import settings
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.tests.factories import CustomerFactory
from billing import services as billing_services
from billing.gateways import get_gateway
from emails.models import Email
from emails.services import render
from gifts import services
from gifts.emails import bounce_notice_key
from gifts.models import Gift
from gifts.tests.factories import make_gift
from giftshop.i18n import locale_for
from offers.tests.factories import OfferFactory

LANGUAGES = [code for code, _name in settings.LANGUAGES]
NOTE = "Alles Gute, Robin!"
# The gift's emails: to its recipient, then to its gifter.
RECIPIENT_KINDS = ["gift_delivery", "claim_expiring", "gift_nudge", "term_ending"]
GIFTER_KINDS = [
    "gift_receipt",
    "gift_delivered",
    "gift_redeemed",
    "gift_expired",
    "gift_bounced",
    "gift_code_replaced",
    "gift_declined",
    "gift_not_redeemed",
    "gift_cancelled",
]
# What each language writes the gift's price as (Babel's CLDR rules).
PRICES = {"en": "€12.50", "de": "12,50\xa0€", "es": "12,50\xa0€", "fr": "12,50\xa0€", "pl": "12,50\xa0€"}


@pytest.fixture
def emails(db, settings):
    """A gift bought at checkout, delivered and redeemed (its subscription gets the term-ending reminder), with an
    outbox row of every gift kind about it."""
    settings.SITE_URL = "https://shop.example"
    offer = OfferFactory(title="Premium Streaming", price=Decimal("12.50"), currency="EUR", period="month")
    gifter = CustomerFactory(email="sam@example.com", first_name="Sam", last_name="Buyer")
    card = get_gateway().tokenize(number="4242424242424242", exp_month=12, exp_year=2030)
    billing_services.checkout(
        customer=gifter,
        offer=offer,
        checkout_key="languages",
        as_gift=True,
        recipient_email="robin@example.com",
        recipient_first_name="Robin",
        personal_note=NOTE,
        card_token=card.token,
    )
    gift = Gift.objects.get()
    assert services.deliver_due_gifts() == 1
    receiver = CustomerFactory(email="robin@example.com", first_name="Robin")
    services.gift_redeem(customer=receiver, code=gift.code)
    gift.refresh_from_db()
    delivery = Email.objects.get(gift=gift, kind="gift_delivery")
    rows = {email.kind: email for email in Email.objects.filter(gift=gift)}
    for kind in [*RECIPIENT_KINDS, *GIFTER_KINDS]:
        if kind not in rows:
            key = bounce_notice_key(gift.pk, delivery.pk) if kind == "gift_bounced" else f"test:{gift.pk}:{kind}"
            to = gift.recipient_email if kind in RECIPIENT_KINDS else gifter.email
            rows[kind] = Email.objects.create(kind=kind, key=key, to_email=to, gift=gift)
    return gift, rows


def read_in(gift, email, language):
    """The email as sent when its reader's language is `language`: (subject, text, html)."""
    Gift.objects.filter(pk=gift.pk).update(language=language)
    for customer in (gift.gifter, gift.receiver):
        customer.locale = locale_for(language)
        customer.save(update_fields=["locale"])
    message = render(Email.objects.select_related("gift").get(pk=email.pk))
    (html, _type) = message.alternatives[0]
    return message.subject, message.body, html


def sentences(text, gift):
    """The English text's own words: each line cut at the user's data (note, names, addresses, codes, links, the
    offer's title), which every language keeps, into pieces of three words or more."""
    data = [NOTE, gift.code, gift.offer.title, "Robin", "Sam Buyer", "Sam", r"\S+@\S+", r"https?://\S+"]
    pattern = "|".join(part if part.startswith(("\\S", "https")) else re.escape(part) for part in data)
    pieces = []
    for line in text.splitlines():
        for piece in re.split(pattern, line):
            piece = piece.strip(" .,:;!?()\"'—-")
            if len(re.findall(r"[A-Za-z]{2,}", piece)) >= 3:
                pieces.append(piece)
    return pieces


@pytest.mark.parametrize("kind", [*RECIPIENT_KINDS, *GIFTER_KINDS])
def test_it_renders_each_gift_email_in_all_five_languages(emails, kind):
    gift, rows = emails
    english_subject, english_text, _html = read_in(gift, rows[kind], "en")
    english = sentences(english_text, gift)
    assert english, f"{kind}: no English sentence to compare"

    for language in LANGUAGES[1:]:
        subject, text, html = read_in(gift, rows[kind], language)
        assert subject and subject != english_subject, f"{kind} ({language}): subject not translated: {subject}"
        left = [sentence for sentence in english if sentence in text]
        assert not left, f"{kind} ({language}): English left in the text: {left}"
        assert f'lang="{language}"' in html, f"{kind} ({language}): the HTML does not say its language"
        assert "Robin" in unescape(html) or "Sam" in unescape(html) or gift.offer.title in unescape(html)


def test_the_recipient_reads_the_gifts_language_and_the_gifter_their_own(emails):
    gift, rows = emails
    gift.receiver.locale = "pl_PL"
    gift.receiver.save(update_fields=["locale"])
    gift.gifter.locale = "de_DE"
    gift.gifter.save(update_fields=["locale"])

    delivery = render(Email.objects.get(pk=rows["gift_delivery"].pk))
    receipt = render(Email.objects.get(pk=rows["gift_receipt"].pk))

    assert 'lang="pl"' in delivery.alternatives[0][0]  # the redeeming account's language
    assert 'lang="de"' in receipt.alternatives[0][0]  # the gifter's


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_receipt_writes_money_the_readers_way(emails, language):
    gift, rows = emails
    _subject, text, html = read_in(gift, rows["gift_receipt"], language)
    assert PRICES[language] in text, text
    assert PRICES[language] in unescape(html)


def test_a_batch_reads_each_addressees_account_language(db):
    """The outbox looks up the accounts at all of a batch's addresses at once (emails.services.batch_lookup): each
    delivery comes in the language of the account at its address, whatever the address's case."""
    offer = OfferFactory(title="Premium Streaming")
    CustomerFactory(email="ada@example.com", locale="de_DE")
    CustomerFactory(email="bo@example.com", locale="pl_PL")
    for address in ("Ada@Example.com", "bo@example.com", "cy@example.com"):
        make_gift(offer=offer, recipient_email=address)
    mail.outbox.clear()

    with CaptureQueriesContext(connection) as queries:
        assert services.deliver_due_gifts() == 3

    locales = [q["sql"] for q in queries if '"accounts_customer"."locale"' in q["sql"] and '"password"' not in q["sql"]]
    # One per batch: the three deliveries, then the gifters' "delivered" notices they brought.
    assert len(locales) == 2 and all('LOWER("accounts_customer"."email") IN' in sql for sql in locales)

    languages = {m.to[0].lower(): re.search(r'lang="(\w+)"', m.alternatives[0][0]).group(1) for m in mail.outbox}
    assert languages["ada@example.com"] == "de" and languages["bo@example.com"] == "pl"
    assert languages["cy@example.com"] == "en"
