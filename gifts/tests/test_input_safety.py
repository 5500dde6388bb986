"""What buyers type ends up in emails: it reaches the HTML only escaped and never as a template (SEC-12), and text
that could forge headers is refused when the gift is bought, not later in a task (SEC-13)."""

import re
from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone
from django.utils.html import escape

from accounts.tests.factories import PaymentMethodFactory
from billing.services import order_create, order_pay, order_update
from emails.models import Email
from gifts import services
from gifts.models import NOTE_MAX_LENGTH, Gift, GiftAction
from gifts.tests.factories import GuestFactory, make_gift
from giftshop.errors import ServiceError
from offers.tests.factories import OfferFactory

pytestmark = pytest.mark.django_db

RECIPIENT = "friend@example.com"
PAYLOADS = {
    "script": "<script>alert(1)</script>",
    "img_onerror": "<img src=x onerror=alert(1)>",
    "javascript_link": '<a href="javascript:x">open</a>',
    "template_variable": "{{7*7}}",
    "template_tag": "{% debug %}",
    "rtl_override": "Thanks for the \u202egpj.exe",
    "quotes_and_ampersand": "Tom & \"Jerry\" 'forever'",
}
TEN_KB = "A long note. " * 800


def delivered_message(**gift_fields):
    make_gift(recipient_email=RECIPIENT, **gift_fields)
    assert services.deliver_due_gifts() == 1
    (message,) = [message for message in mail.outbox if message.to == [RECIPIENT]]
    return message


def html_of(message):
    (html,) = [content for content, mimetype in message.alternatives if mimetype == "text/html"]
    return html


def expect_refusal(field, action):
    with pytest.raises(ServiceError) as refused:
        action()
    assert refused.value.field == field
    assert refused.value.status < 500
    return refused.value


# --- SEC-12 ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("note", PAYLOADS.values(), ids=PAYLOADS.keys())
def test_it_puts_the_personal_note_into_the_delivery_email_only_escaped_and_never_evaluated(note):
    message = delivered_message(personal_note=note)

    html = html_of(message)
    (shown,) = re.findall(r"<blockquote[^>]*>(.*?)</blockquote>", html, re.DOTALL)
    assert shown == escape(note)
    assert "49" not in shown
    if escape(note) != note:
        assert note not in html
    # the text part carries it as typed: it is plain text, and no part re-renders it as a template
    assert note in message.body
    assert message.subject == f"You've received a gift: {Gift.objects.get().offer.title}"


@pytest.mark.parametrize("signature", PAYLOADS.values(), ids=PAYLOADS.keys())
def test_it_puts_the_signature_into_the_delivery_email_only_escaped(signature):
    html = html_of(delivered_message(signature=signature))

    assert f"— {escape(signature)}</p>" in html
    if escape(signature) != signature:
        assert signature not in html


def test_it_escapes_the_gifters_name_in_the_delivery_email():
    gifter = GuestFactory(first_name="<b>Eve</b>", last_name="{{ gift.code }}")

    html = html_of(delivered_message(gifter=gifter))

    assert "<strong>&lt;b&gt;Eve&lt;/b&gt; {{ gift.code }}</strong>" in html


def test_it_keeps_a_right_to_left_override_inside_the_quoted_note():
    html = html_of(delivered_message(personal_note=PAYLOADS["rtl_override"]))

    (shown,) = re.findall(r"<blockquote[^>]*>(.*?)</blockquote>", html, re.DOTALL)
    assert html.count("\u202e") == shown.count("\u202e") == 1


@pytest.fixture
def gift_order():
    order = order_create(customer=GuestFactory(), offer=OfferFactory(), buy_as_gift=True)
    return order_update(order=order, recipient_email=RECIPIENT)


def test_it_refuses_a_10kb_note_when_the_gift_is_created():
    expect_refusal("personalNote", lambda: make_gift(personal_note=TEN_KB))

    assert not Gift.objects.exists() and not Email.objects.exists()


def test_it_refuses_a_10kb_note_on_the_gift_order(gift_order):
    expect_refusal("personalNote", lambda: order_update(order=gift_order, personal_note=TEN_KB))

    gift_order.refresh_from_db()
    assert gift_order.personal_note == ""


def test_it_refuses_a_10kb_note_when_the_gifter_edits_the_gift():
    gift = make_gift(scheduled_at=timezone.now() + timedelta(days=30))
    expect_refusal(
        "personalNote",
        lambda: services.gift_update(
            gift_id=gift.pk,
            action=GiftAction.EDIT,
            actor="test",
            names="mediastore",
            recipient_email=RECIPIENT,
            scheduled_at=gift.scheduled_at,
            personal_note=TEN_KB,
        ),
    )
    gift.refresh_from_db()
    assert gift.personal_note == ""


def test_it_accepts_a_note_of_exactly_the_limit_and_refuses_one_character_more(gift_order):
    assert order_update(order=gift_order, personal_note="x" * NOTE_MAX_LENGTH).personal_note == "x" * NOTE_MAX_LENGTH
    expect_refusal("personalNote", lambda: order_update(order=gift_order, personal_note="x" * (NOTE_MAX_LENGTH + 1)))


# --- SEC-13 ---------------------------------------------------------------------------------------------------

HEADER_BREAKERS = {
    "crlf": "Ann\r\nBcc: eve@example.com",
    "lf": "Ann\nBcc: eve@example.com",
    "cr": "Ann\rX-Injected: 1",
    "nul": "Ann\x00",
    "trailing_lf": "Ann\n",
}
NAME_FIELDS = {"recipient_first_name": "firstName", "recipient_last_name": "lastName", "signature": "signature"}
EMAIL_BREAKERS = {
    "crlf": "friend@example.com\r\nBcc: eve@example.com",
    "lf": "friend@example.com\nBcc: eve@example.com",
    "cr": "friend@example.com\rX-Injected: 1",
    "nul": "friend\x00@example.com",
    "comma": "friend@example.com, eve@example.com",
    "comma_no_space": "friend@example.com,eve@example.com",
}


@pytest.mark.parametrize("value", HEADER_BREAKERS.values(), ids=HEADER_BREAKERS.keys())
@pytest.mark.parametrize("field", NAME_FIELDS)
def test_it_refuses_line_breaks_and_nul_in_names_and_signature_when_the_gift_is_bought(
    field, value, django_capture_on_commit_callbacks
):
    gifter = GuestFactory()
    with django_capture_on_commit_callbacks() as published:
        expect_refusal(NAME_FIELDS[field], lambda: make_gift(gifter=gifter, **{field: value}))

    assert not Gift.objects.exists() and not Email.objects.exists()
    assert published == []


@pytest.mark.parametrize("value", EMAIL_BREAKERS.values(), ids=EMAIL_BREAKERS.keys())
def test_it_refuses_a_recipient_email_that_could_break_a_header_when_the_gift_is_bought(value, gift_order):
    expect_refusal("recipientEmail", lambda: make_gift(recipient_email=value))
    expect_refusal("recipientEmail", lambda: order_update(order=gift_order, recipient_email=value))

    assert not Gift.objects.exists()
    gift_order.refresh_from_db()
    assert gift_order.recipient_email == RECIPIENT


@pytest.mark.parametrize("value", ["friend@exa\u2028mple.com", "friend@exa\u202emple.com"], ids=["u2028", "u202e"])
def test_it_refuses_a_recipient_email_no_message_could_be_addressed_to_when_the_gift_is_bought(value, gift_order):
    expect_refusal("recipientEmail", lambda: make_gift(recipient_email=value))
    expect_refusal("recipientEmail", lambda: order_update(order=gift_order, recipient_email=value))


@pytest.mark.parametrize("value", EMAIL_BREAKERS.values(), ids=EMAIL_BREAKERS.keys())
def test_it_refuses_a_recipient_email_that_could_break_a_header_when_the_gifter_edits_the_gift(value):
    gift = make_gift(recipient_email=RECIPIENT, scheduled_at=timezone.now() + timedelta(days=30))

    expect_refusal(
        "recipientEmail",
        lambda: services.gift_update(
            gift_id=gift.pk,
            action=GiftAction.EDIT,
            actor="test",
            names="mediastore",
            recipient_email=value,
            scheduled_at=gift.scheduled_at,
            personal_note="",
        ),
    )
    gift.refresh_from_db()
    assert gift.recipient_email == RECIPIENT


def test_it_sends_gift_emails_with_only_their_own_headers_whatever_the_names_look_like(
    django_capture_on_commit_callbacks,
):
    gifter = GuestFactory(first_name="Bcc: eve@example.com", last_name="To: eve@example.com")
    PaymentMethodFactory(customer=gifter, token="tok_visa")
    order = order_create(customer=gifter, offer=OfferFactory(title="Premium"), buy_as_gift=True)
    order_update(order=order, recipient_email=RECIPIENT, personal_note="Cc: eve@example.com\nSubject: hi")
    with django_capture_on_commit_callbacks(execute=True):
        gift = order_pay(order=order).gift
    services.deliver_due_gifts()

    assert len(mail.outbox) == 3  # receipt, delivery, "delivered"
    for message in mail.outbox:
        headers = message.message()
        assert sorted(headers.keys()) == sorted(
            ["Content-Type", "MIME-Version", "Subject", "From", "To", "Date", "Message-ID", "X-Giftshop-Email-Key"]
        )
        assert headers.get_all("To") == [message.to[0]] and message.recipients() == message.to
    assert sorted(message.to[0] for message in mail.outbox) == sorted([gifter.email, RECIPIENT, gifter.email])
    assert Email.objects.filter(gift=gift).count() == 3
