"""Checkout's "Send it to me to give in person" and its design choice (issue 16, "Hand it over yourself"): a handed-over
gift is redeemable at once, emails no one but its gifter (whose receipt and thank-you page link the certificate), and
the design chosen (on the web form or over the storefront API) is the gift's, in its delivery email too."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core import mail
from django.urls import reverse

from accounts.tests.factories import CustomerFactory
from billing.models import Order
from billing.tests.test_mediastore_orders import create_order, patch, pay
from billing.tests.test_web_checkout import gift_form
from emails.models import Email
from gifts.models import DeliveryMethod, Gift, GiftAction, GiftDesign, GiftStatus
from gifts.reminders import send_reminders
from gifts.services import deliver_due_gifts
from giftshop.models import SiteSettings
from giftshop.tests.mediastore import assert_error, client_for, data_of
from offers.tests.factories import OfferFactory

pytestmark = pytest.mark.django_db

BOUGHT = datetime(2026, 6, 1, 10, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def designs(builtin_designs):
    """The built-in designs, made again for each test (gifts/tests/designs.py)."""


@pytest.fixture
def offer():
    return OfferFactory(title="Premium yearly", period="year", price="99.99", short_id="S900000001", country="US")


@pytest.fixture
def gifter(client):
    gifter = CustomerFactory(email="ana@example.com")
    client.force_login(gifter)
    return gifter


def handover_form(client, offer, **fields):
    """The form as sent without script by a gifter who picked "in person": no recipient address, no delivery time."""
    form = gift_form(client, offer, **{"delivery_method": "handover", "saved_card": "", **fields})
    for name in ("recipient_email", "recipient_email_again", "delivery_date", "delivery_time"):
        form.pop(name)
    return form


def checkout(client, offer, form, capture):
    with capture(execute=True):
        return client.post(reverse("billing:gift_checkout", args=[offer.long_id]), form)


def test_a_handover_gift_is_redeemable_at_once_and_emails_only_its_gifter_the_certificate(
    client, gifter, offer, django_capture_on_commit_callbacks
):
    SiteSettings.load()
    SiteSettings.objects.update(default_claim_expiry_days=90)
    with time_machine.travel(BOUGHT, tick=False):
        form = handover_form(client, offer, recipient_first_name="Peter", design="birthday")
        response = checkout(client, offer, form, django_capture_on_commit_callbacks)
        assert response.status_code == 302
        gift = Gift.objects.get()
        assert (gift.status, gift.delivery_method, gift.recipient_email) == (GiftStatus.UNCLAIMED, "handover", "")
        assert gift.sent_at == BOUGHT and gift.claim_expiry_date == BOUGHT + timedelta(days=90)
        assert gift.design.slug == "birthday" and gift.auto_claim is False
        assert [(row.status, row.actor) for row in gift.timeline.all()] == [
            ("scheduled", f"customer:{gifter.pk}"),
            ("unclaimed", "handover"),
        ]
        with django_capture_on_commit_callbacks(execute=True):
            deliver_due_gifts()
    (receipt,) = mail.outbox  # no delivery email, to anyone: only the gifter's receipt
    assert receipt.to == ["ana@example.com"]
    certificate = reverse("gifts:certificate", args=[gift.pk])
    for paper in ("a4", "letter"):
        assert f"{certificate}?paper={paper}" in receipt.body
        assert f"{certificate}?paper={paper}" in receipt.alternatives[0][0]
    assert "for you to give in person" in receipt.body and "Delivery:" not in receipt.body
    assert not Email.objects.filter(kind=Email.Kind.GIFT_DELIVERY).exists()

    thanks = client.get(response.url).content.decode()
    assert f'href="{certificate}?paper=a4"' in thanks and f'href="{certificate}?paper=letter"' in thanks
    assert "ready for you to give in person" in thanks
    pdf = client.get(f"{certificate}?paper=letter")
    assert pdf.status_code == 200 and pdf["Content-Type"] == "application/pdf" and pdf.content.startswith(b"%PDF")


def test_a_handover_gift_is_never_resent_nor_reminded_to_an_address_it_does_not_have(
    client, gifter, offer, django_capture_on_commit_callbacks
):
    SiteSettings.load()
    SiteSettings.objects.update(default_claim_expiry_days=10)
    with time_machine.travel(BOUGHT, tick=False):
        checkout(client, offer, handover_form(client, offer), django_capture_on_commit_callbacks)
    gift = Gift.objects.get()
    assert (
        gift.refusal(GiftAction.RESEND, BOUGHT)
        == "This gift has no recipient address: its gifter hands it over in person."
    )
    with time_machine.travel(BOUGHT + timedelta(days=5), tick=False):
        send_reminders()
    assert not Email.objects.filter(kind=Email.Kind.CLAIM_EXPIRING).exists()


def test_the_design_chosen_is_the_gifts_and_its_delivery_email_wears_it(
    client, gifter, offer, django_capture_on_commit_callbacks
):
    form = gift_form(client, offer, saved_card="", send_now="on", delivery_method="email", design="birthday")
    assert checkout(client, offer, form, django_capture_on_commit_callbacks).status_code == 302
    gift = Gift.objects.get()
    assert (gift.delivery_method, gift.design.slug, gift.recipient_email) == ("email", "birthday", "friend@example.com")
    with django_capture_on_commit_callbacks(execute=True):
        deliver_due_gifts()
    (delivery,) = [m for m in mail.outbox if m.to == ["friend@example.com"]]
    assert "background:#fff8e7" in delivery.alternatives[0][0]  # the birthday design's background


def test_the_checkout_page_offers_each_active_design_with_a_preview_and_both_ways_to_give(client, offer):
    GiftDesign.objects.filter(slug="holidays").update(is_active=False)
    body = client.get(reverse("billing:gift_checkout", args=[offer.long_id])).content.decode()
    assert 'value="handover"' in body and "Send it to me to give in person" in body and "Email it to them" in body
    assert 'name="design" id="id_design_0" value="plain" checked' in body
    assert 'value="birthday"' in body and 'value="holidays"' not in body
    assert 'data-background="#fff8e7"' in body and 'id="design-preview"' in body
    assert "js/gift-design.js" in body and "<script>" not in body  # no inline script (CSP)


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"delivery_method": "pigeon"}, "delivery_method", "Choose how the gift reaches them"),
        ({"design": "nope"}, "design", "This design is no longer on offer"),
        ({"design": "holidays"}, "design", "This design is no longer on offer"),  # not on offer any more
    ],
)
def test_an_unknown_way_or_design_is_refused_on_the_form_and_nothing_is_bought(
    client, gifter, offer, django_capture_on_commit_callbacks, fields, field, message
):
    GiftDesign.objects.filter(slug="holidays").update(is_active=False)
    form = gift_form(client, offer, saved_card="", send_now="on", **fields)
    response = checkout(client, offer, form, django_capture_on_commit_callbacks)
    assert response.status_code == 200 and message in response.content.decode()
    assert f'id="id_{field}_error"' in response.content.decode() or field == "delivery_method"
    assert not Gift.objects.exists() and not Order.objects.exists() and not mail.outbox


def test_an_emailed_gift_still_needs_its_recipients_address(client, gifter, offer, django_capture_on_commit_callbacks):
    form = handover_form(client, offer, delivery_method="email", send_now="on")
    response = checkout(client, offer, form, django_capture_on_commit_callbacks)
    assert response.status_code == 200 and not Gift.objects.exists()
    assert 'id="id_recipient_email_error"' in response.content.decode()


# --- the storefront API -------------------------------------------------------------------------------------------


@pytest.fixture
def api(gifter):
    return client_for(gifter)


def test_the_storefront_api_hands_a_gift_over_in_the_design_asked_for(
    api, gifter, offer, django_capture_on_commit_callbacks
):
    order = data_of(create_order(api, offer.short_id))["order"]
    details = {"deliveryMethod": "handover", "designId": "holidays", "personalNote": "For you"}
    updated = data_of(patch(api, order, {"buyAsAGift": True, "deliveryDetails": details}))["order"]
    assert updated["deliveryDetails"]["deliveryMethod"] == "handover"
    assert updated["deliveryDetails"]["designId"] == "holidays"
    with django_capture_on_commit_callbacks(execute=True):
        paid = data_of(pay(api, order))
    gift = Gift.objects.get(pk=paid["giftId"])
    assert (gift.status, gift.delivery_method, gift.design.slug) == (GiftStatus.UNCLAIMED, "handover", "holidays")
    assert gift.sent_at == gift.created_at and gift.recipient_email == "" and gift.personal_note == "For you"
    assert [m.to for m in mail.outbox] == [["ana@example.com"]]
    assert reverse("gifts:certificate", args=[gift.pk]) in mail.outbox[0].body


def test_the_storefront_api_takes_a_design_by_id_and_still_wants_an_address_for_email(api, offer):
    order = data_of(create_order(api, offer.short_id))["order"]
    birthday = GiftDesign.objects.get(slug="birthday")
    details = {"deliveryMethod": "email", "designId": str(birthday.pk)}
    data_of(patch(api, order, {"buyAsAGift": True, "deliveryDetails": details}))
    assert Order.objects.get(pk=order["id"]).design == birthday
    body = assert_error(pay(api, order), 422)
    assert body["responseData"] == {"field": "recipientEmail"} and not Gift.objects.exists()


@pytest.mark.parametrize(
    ("details", "code"),
    [
        ({"deliveryMethod": "pigeon"}, "REQ0001"),
        ({"designId": "nope"}, None),
        ({"designId": "999999"}, None),
        ({"designId": "9" * 30}, None),  # beyond a bigint: still a 422, not a database error
        ({"designId": "²"}, None),
    ],
)
def test_the_storefront_api_refuses_an_unknown_way_or_design_and_changes_nothing(api, offer, details, code):
    order = data_of(create_order(api, offer.short_id))["order"]
    body = assert_error(patch(api, order, {"buyAsAGift": True, "deliveryDetails": details}), 422, code)
    if code is None:
        assert body["responseData"] == {"field": "deliveryDetails.designId"}
    saved = Order.objects.get(pk=order["id"])
    assert (saved.buy_as_gift, saved.delivery_method, saved.design) == (False, DeliveryMethod.EMAIL, None)
