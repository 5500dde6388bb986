"""The gifter's gift pages: the list of gifts given and a gift's edit page show only the gifter's own gifts,
times in the gifter's time zone, and edits go through the service until the cutoff."""

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from accounts.tests.factories import CustomerFactory
from accounts.tests.web import page
from gifts.models import GiftStatus
from gifts.tests.factories import GiftFactory, GuestFactory, make_gift

pytestmark = pytest.mark.django_db

CLOSED = "Delivery details can be changed until the end of the day before the delivery day."


def utc(*args):
    return datetime(*args, tzinfo=UTC)


def test_it_hides_another_customers_gift_behind_a_404(client, customer):
    gift = make_gift(scheduled_at=timezone.now() + timedelta(days=5))
    url = f"/account/gifts/{gift.pk}/edit/"
    assert client.get(url).status_code == 404
    response = client.post(url, {"recipient_email": "me@example.com", "recipient_email_again": "me@example.com"})
    assert response.status_code == 404
    gift.refresh_from_db()
    assert gift.recipient_email == "friend@example.com"
    assert gift.recipient_email not in page(client, "/account/gifts/")


def test_it_lists_my_gifts_with_their_status_in_plain_words_and_times_in_my_zone(client, time_machine):
    time_machine.move_to(utc(2026, 6, 1, 12, 0), tick=False)
    gifter = CustomerFactory(time_zone="Europe/Berlin")
    client.force_login(gifter)
    make_gift(gifter=gifter, scheduled_at=utc(2026, 7, 1, 10, 0), recipient_email="later@example.com")
    sent_at = utc(2026, 5, 20, 7, 0)
    GiftFactory(gifter=gifter, status=GiftStatus.UNCLAIMED, scheduled_at=sent_at, recipient_email="sent@example.com")
    GiftFactory(
        gifter=gifter,
        status=GiftStatus.CLAIMED,
        receiver=GuestFactory(),
        claimed_at=sent_at,
        recipient_email="redeemed@example.com",
    )
    GiftFactory(gifter=gifter, status=GiftStatus.EXPIRED, expired_at=sent_at, recipient_email="late@example.com")
    GiftFactory(gifter=gifter, status=GiftStatus.CANCELLED, cancelled_at=sent_at, recipient_email="no@example.com")
    make_gift(recipient_email="someone.elses@example.com")

    body = page(client, "/account/gifts/")
    assert "<dd>Scheduled</dd>" in body and "Wed 1 Jul, 12:00 Berlin time" in body  # noon in Berlin in summer
    assert "Wed 20 May, 09:00 Berlin time" in body
    for words in ("<dd>Sent</dd>", "<dd>Redeemed</dd>", "<dd>Expired</dd>", "<dd>Cancelled</dd>"):
        assert words in body
    assert "The gift has already been sent." in body and "The gift has already been redeemed." in body
    assert body.count("Edit delivery details") == 1
    assert "someone.elses@example.com" not in body


def test_it_lets_the_gifter_edit_a_gift_until_the_cutoff_in_their_zone(client, time_machine):
    # New York is on EDT (UTC-4) from 8 March: the delivery day, 12 March, starts at 04:00 UTC.
    time_machine.move_to(utc(2026, 3, 1, 12, 0), tick=False)
    gifter = CustomerFactory(time_zone="America/New_York")
    client.force_login(gifter)
    gift = make_gift(gifter=gifter, scheduled_at=utc(2026, 3, 12, 15, 0), personal_note="Happy birthday")
    url = f"/account/gifts/{gift.pk}/edit/"

    time_machine.move_to(utc(2026, 3, 12, 3, 59, 59), tick=False)
    form = page(client, url)
    assert 'value="2026-03-12"' in form and 'value="11:00"' in form
    assert '<option value="America/New_York" selected>' in form
    assert 'maxlength="150"' in form
    response = client.post(
        url,
        {
            "recipient_email": "new.friend@example.com",
            "recipient_email_again": "New.Friend@example.com",
            "delivery_date": "2026-03-14",
            "delivery_time": "09:30",
            "personal_note": "Changed my mind",
        },
    )
    assert response.status_code == 302 and response["Location"] == "/account/gifts/"
    gift.refresh_from_db()
    assert (gift.recipient_email, gift.personal_note, gift.scheduled_at) == (
        "new.friend@example.com",
        "Changed my mind",
        utc(2026, 3, 14, 13, 30),
    )
    assert "Sat 14 Mar, 09:30 New York time" in page(client, "/account/gifts/")

    # The new delivery day starts at 04:00 UTC on 14 March: from then on, editing is closed.
    time_machine.move_to(utc(2026, 3, 14, 4, 0), tick=False)
    body = page(client, url)
    assert CLOSED in body and '<form method="post" class="gift-edit"' not in body
    assert CLOSED in page(client, "/account/gifts/")
    response = client.post(
        url,
        {
            "recipient_email": "too.late@example.com",
            "recipient_email_again": "too.late@example.com",
            "send_now": "on",
            "personal_note": "Too late",
        },
    )
    assert response.status_code == 200 and CLOSED in response.content.decode()
    gift.refresh_from_db()
    assert gift.recipient_email == "new.friend@example.com" and gift.personal_note == "Changed my mind"


@pytest.mark.parametrize(
    ("day", "clock", "instant"),
    [
        ("2026-03-08", "02:30", utc(2026, 3, 8, 7, 0)),  # no 02:30 that night: the first instant after the gap
        ("2026-11-01", "01:30", utc(2026, 11, 1, 5, 30)),  # 01:30 happens twice: the first (EDT) one
    ],
    ids=["spring_forward_gap", "fall_back_twice"],
)
def test_it_reads_a_delivery_time_that_a_clock_change_skips_or_repeats(
    client, customer, time_machine, day, clock, instant
):
    time_machine.move_to(utc(2026, 3, 1, 12, 0), tick=False)
    gift = make_gift(gifter=customer, scheduled_at=utc(2026, 12, 1, 15, 0))
    data = {"recipient_email": "a@example.com", "recipient_email_again": "a@example.com"}
    response = client.post(f"/account/gifts/{gift.pk}/edit/", {**data, "delivery_date": day, "delivery_time": clock})
    assert response.status_code == 302
    gift.refresh_from_db()
    assert gift.scheduled_at == instant


def test_it_sends_a_gift_now_when_asked(client, customer, time_machine):
    time_machine.move_to(utc(2026, 3, 1, 12, 0), tick=False)
    gift = make_gift(gifter=customer, scheduled_at=utc(2026, 3, 20, 15, 0))
    data = {"recipient_email": "friend@example.com", "recipient_email_again": "friend@example.com", "send_now": "on"}
    assert client.post(f"/account/gifts/{gift.pk}/edit/", data).status_code == 302
    gift.refresh_from_db()
    assert gift.scheduled_at == utc(2026, 3, 1, 12, 0) and gift.status == GiftStatus.SCHEDULED


def test_it_ties_form_and_service_errors_to_their_fields(client, customer):
    gift = make_gift(gifter=customer, scheduled_at=timezone.now() + timedelta(days=5))
    url = f"/account/gifts/{gift.pk}/edit/"
    body = client.post(
        url, {"recipient_email": "a@example.com", "recipient_email_again": "b@example.com", "send_now": "on"}
    ).content.decode()
    assert 'id="id_recipient_email_again_error"' in body and "different" in body
    assert 'aria-describedby="id_recipient_email_again_error"' in body

    # The form lets a bell character through; the service refuses it and names the field.
    data = {"recipient_email": "a@example.com", "recipient_email_again": "a@example.com", "send_now": "on"}
    body = client.post(url, {**data, "personal_note": "Ding \x07"}).content.decode()
    assert 'id="id_personal_note_error"' in body and "control characters" in body
    gift.refresh_from_db()
    assert gift.recipient_email == "friend@example.com"
