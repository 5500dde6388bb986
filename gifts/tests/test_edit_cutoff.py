"""The gifter may change a gift's recipient, delivery date and note until the end of the day before the delivery
day in their own time zone (DST changes included), never after it is sent or redeemed; the claim window moves
with the delivery."""

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from gifts import services
from gifts.models import GiftAction, GiftStatus
from gifts.tests.factories import GuestFactory, make_gift
from giftshop.errors import ServiceError

pytestmark = pytest.mark.django_db

SECOND = timedelta(seconds=1)


def utc(*args):
    return datetime(*args, tzinfo=UTC)


def edit(gift, *, recipient_email="new.friend@example.com", scheduled_at=None, personal_note="Changed my mind"):
    return services.gift_update(
        gift_id=gift.pk,
        action=GiftAction.EDIT,
        actor="test",
        names="mediastore",
        recipient_email=recipient_email,
        scheduled_at=scheduled_at or gift.scheduled_at,
        personal_note=personal_note,
    )


def refused_edit(gift, **changes):
    with pytest.raises(ServiceError) as refused:
        edit(gift, **changes)
    assert (refused.value.status, refused.value.code) == (409, "gift_not_editable")
    return refused.value


# (gifter's zone, delivery instant, the local midnight that starts the delivery day), worked out by hand.
DELIVERIES = {
    # US spring forward at 02:00: the day starts on EST (UTC-5), the delivery is on EDT (UTC-4).
    "new_york_spring_forward": ("America/New_York", utc(2026, 3, 8, 16, 0), utc(2026, 3, 8, 5, 0)),
    # US fall back at 02:00: the day starts on EDT, the delivery is on EST.
    "new_york_fall_back": ("America/New_York", utc(2026, 11, 1, 17, 0), utc(2026, 11, 1, 4, 0)),
    # The day after spring forward starts on EDT; a delivery at 00:30 leaves only half an hour.
    "new_york_day_after": ("America/New_York", utc(2026, 3, 9, 4, 30), utc(2026, 3, 9, 4, 0)),
    # EU summer time starts at 02:00 CET: the day starts at 23:00 UTC the evening before.
    "berlin_summer_time": ("Europe/Berlin", utc(2026, 3, 29, 10, 0), utc(2026, 3, 28, 23, 0)),
    "berlin_winter_time": ("Europe/Berlin", utc(2026, 10, 25, 11, 0), utc(2026, 10, 24, 22, 0)),
    # Chile springs forward at midnight: 00:00 never happens, the day starts at 01:00 -03 (04:00 UTC).
    "santiago_no_midnight": ("America/Santiago", utc(2026, 9, 6, 15, 0), utc(2026, 9, 6, 4, 0)),
}


@pytest.mark.parametrize(("zone", "delivery", "day_starts"), DELIVERIES.values(), ids=DELIVERIES.keys())
def test_it_lets_the_gifter_edit_until_local_midnight_starting_the_delivery_day_across_dst(
    zone, delivery, day_starts, time_machine
):
    time_machine.move_to(delivery - timedelta(days=10), tick=False)
    gift = make_gift(gifter=GuestFactory(time_zone=zone), scheduled_at=delivery, personal_note="Happy birthday")
    assert gift.edit_cutoff() == day_starts

    time_machine.move_to(day_starts - SECOND)
    edited = edit(gift)
    assert (edited.recipient_email, edited.personal_note, edited.scheduled_at) == (
        "new.friend@example.com",
        "Changed my mind",
        delivery,
    )

    time_machine.move_to(day_starts)
    refused_edit(gift, personal_note="Too late")
    time_machine.move_to(day_starts + SECOND)
    refused_edit(gift, personal_note="Too late")
    gift.refresh_from_db()
    assert gift.personal_note == "Changed my mind" and gift.status == GiftStatus.SCHEDULED


def test_it_refuses_edits_once_the_gift_is_sent(time_machine):
    time_machine.move_to(utc(2026, 5, 1, 8, 0), tick=False)
    gift = make_gift(scheduled_at=timezone.now() - timedelta(minutes=1))
    services.deliver_due_gifts()

    refused = refused_edit(gift, scheduled_at=timezone.now() + timedelta(days=3))

    assert "sent" in refused.message
    gift.refresh_from_db()
    assert gift.status == GiftStatus.UNCLAIMED and gift.recipient_email == "friend@example.com"


def test_it_refuses_edits_once_the_gift_is_redeemed():
    gift = make_gift(scheduled_at=timezone.now() + timedelta(days=5))
    services.gift_redeem(customer=GuestFactory(), code=gift.code)  # a code can be redeemed before its email is due

    refused = refused_edit(gift, scheduled_at=timezone.now() + timedelta(days=6))

    assert "redeemed" in refused.message


def test_it_refuses_edits_to_a_cancelled_gift():
    gift = make_gift(scheduled_at=timezone.now() + timedelta(days=5))
    now = timezone.now()
    services.gift_transition(gift_ids=[gift.pk], to=GiftStatus.CANCELLED, now=now, cancelled_at=now)

    refused_edit(gift)


def test_it_delivers_at_once_when_the_new_delivery_date_is_in_the_past(time_machine):
    time_machine.move_to(utc(2026, 5, 1, 8, 0), tick=False)
    gift = make_gift(scheduled_at=timezone.now() + timedelta(days=10))

    edited = edit(gift, scheduled_at=timezone.now() - timedelta(days=3))

    assert edited.scheduled_at == timezone.now()
    assert services.deliver_due_gifts() == 1
    edited.refresh_from_db()
    assert edited.status == GiftStatus.UNCLAIMED and edited.recipient_email == "new.friend@example.com"


@pytest.mark.parametrize("moved_by", [timedelta(days=4), timedelta(days=-2, hours=-3), timedelta(days=-30)])
def test_it_moves_the_claim_window_with_the_delivery(moved_by, time_machine):
    time_machine.move_to(utc(2026, 5, 1, 8, 0), tick=False)
    delivery = timezone.now() + timedelta(days=10)
    gift = make_gift(scheduled_at=delivery, claim_expiry_date=delivery + timedelta(days=30))

    edited = edit(gift, scheduled_at=delivery + moved_by)

    assert edited.scheduled_at == max(delivery + moved_by, timezone.now())
    assert edited.claim_expiry_date - edited.scheduled_at == timedelta(days=30)


def test_it_keeps_a_gift_without_expiry_without_expiry_when_the_delivery_moves():
    delivery = timezone.now() + timedelta(days=10)
    gift = make_gift(scheduled_at=delivery, no_expiry=True)

    edited = edit(gift, scheduled_at=delivery + timedelta(days=3))

    assert edited.no_expiry and edited.claim_expiry_date is None
