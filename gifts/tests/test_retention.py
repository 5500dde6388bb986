"""The retention rule for gifts' personal details (issue 19, "People's data: retention"): GIFT_DATA_RETENTION_DAYS
(90) after a gift was redeemed, expired or cancelled, its note, signature and the recipient's address and names go,
with the copies in its events, outbox rows and order; in batches, idempotently, daily by beat. And the outbox never
stores a message: emails are rendered when they are sent."""

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.conf import settings
from django.core import mail

from accounts.tests.factories import CustomerFactory, PaymentMethodFactory
from billing import services as billing_services
from billing.models import Order
from emails.models import Email
from gifts import services as gift_services
from gifts import tasks
from gifts.models import GiftStatus
from gifts.retention import gift_details_remove_ended
from gifts.tests.factories import GiftFactory
from giftshop.celery import app
from giftshop.models import Event
from offers.tests.factories import OfferFactory

pytestmark = pytest.mark.django_db

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
NOTE = "Happy birthday, Peter! Love from the Okafors"


@pytest.fixture
def clock(time_machine):
    time_machine.move_to(START, tick=False)
    return time_machine


def redeemed_gift(django_capture_on_commit_callbacks):
    """A gift bought at the web checkout, delivered (its emails sent) and redeemed at START."""
    gifter = CustomerFactory(email="nia@example.com", first_name="Nia")
    PaymentMethodFactory(customer=gifter, token=f"tok_sandbox_success_{uuid.uuid4().hex[:12]}")
    with django_capture_on_commit_callbacks(execute=True):
        order = billing_services.checkout(
            customer=gifter,
            offer=OfferFactory(),
            checkout_key=uuid.uuid4().hex,
            as_gift=True,
            recipient_email="peter@example.com",
            recipient_first_name="Peter",
            personal_note=NOTE,
            signature="Nia O.",
            payment_method=gifter.payment_methods.get(),
        )
        gift_services.deliver_due_gifts()
    gift = order.gift
    gift_services.gift_redeem(customer=CustomerFactory(email="peter@example.com"), code=gift.code)
    gift.refresh_from_db()
    return gift


def ended(status, when, **fields):
    """A gift that reached `status` at `when` (written as the state machine leaves it)."""
    moment = {GiftStatus.CLAIMED: "claimed_at", GiftStatus.EXPIRED: "expired_at", GiftStatus.CANCELLED: "cancelled_at"}
    extra = {"receiver": CustomerFactory()} if status == GiftStatus.CLAIMED else {}
    return GiftFactory(
        status=status,
        scheduled_at=when - timedelta(days=30),
        personal_note="A note",
        signature="Sam",
        recipient_first_name="Robin",
        recipient_last_name="Reed",
        **{moment[status]: when},
        **extra,
        **fields,
    )


def details(gift):
    gift.refresh_from_db()
    return (
        gift.personal_note,
        gift.signature,
        gift.recipient_email,
        gift.recipient_first_name,
        gift.recipient_last_name,
    )


NONE_LEFT = ("", "", "", "", "")


def test_a_redeemed_gift_loses_its_personal_details_90_days_later_everywhere(clock, django_capture_on_commit_callbacks):
    gift = redeemed_gift(django_capture_on_commit_callbacks)
    code, receiver = gift.code, gift.receiver_id
    delivery = Email.objects.get(gift=gift, kind=Email.Kind.GIFT_DELIVERY)
    assert delivery.status == Email.Status.SENT and delivery.to_email == "peter@example.com"

    clock.move_to(START + timedelta(days=89, hours=23))
    assert gift_details_remove_ended() == 0
    assert details(gift)[0] == NOTE

    clock.move_to(START + timedelta(days=90, minutes=1))
    assert gift_details_remove_ended() == 1

    assert details(gift) == NONE_LEFT
    assert (gift.status, gift.code, gift.receiver_id) == (GiftStatus.CLAIMED, code, receiver)
    events = json.dumps([e.content for e in Event.objects.filter(gift=gift)])
    assert Event.objects.filter(gift=gift).exists()
    for trace in ("peter@example.com", "Peter", NOTE, "Nia O."):
        assert trace not in events
    delivery.refresh_from_db()
    assert delivery.to_email == ""
    gifters = Email.objects.filter(gift=gift).exclude(kind=Email.Kind.GIFT_DELIVERY)
    assert gifters.exists() and set(gifters.values_list("to_email", flat=True)) == {"nia@example.com"}
    order = Order.objects.get(pk=gift.order_id)
    assert (order.recipient_email, order.recipient_first_name, order.personal_note, order.signature) == ("", "", "", "")
    assert order.status == Order.Status.PAID and order.total_price > 0


def test_expired_and_cancelled_gifts_too_but_not_a_day_early_nor_a_gift_still_open(clock):
    now = START
    old = now - timedelta(days=91)
    gone = [ended(GiftStatus.EXPIRED, old), ended(GiftStatus.CANCELLED, old), ended(GiftStatus.CLAIMED, old)]
    recent = [ended(status, now - timedelta(days=89)) for status in (GiftStatus.EXPIRED, GiftStatus.CLAIMED)]
    still_open = GiftFactory(status=GiftStatus.UNCLAIMED, scheduled_at=old, personal_note="Not yet")
    waiting = GiftFactory(status=GiftStatus.SCHEDULED, scheduled_at=old, personal_note="Not yet")

    assert gift_details_remove_ended() == 3

    assert [details(gift) for gift in gone] == [NONE_LEFT] * 3
    assert all(details(gift)[0] == "A note" and details(gift)[3] == "Robin" for gift in recent)
    assert details(still_open)[0] == details(waiting)[0] == "Not yet"


def test_it_is_idempotent_and_works_in_batches(clock):
    gifts = [ended(GiftStatus.EXPIRED, START - timedelta(days=100)) for _ in range(5)]

    assert gift_details_remove_ended(batch_size=2) == 5
    assert gift_details_remove_ended(batch_size=2) == 0
    assert [details(gift) for gift in gifts] == [NONE_LEFT] * 5


def test_a_gift_sent_again_after_its_details_went_waits_for_its_new_end(clock):
    gift = ended(GiftStatus.EXPIRED, START - timedelta(days=100))
    gift_details_remove_ended()
    gift_services.gift_change_recipient(gift_id=gift.pk, recipient_email="new@example.com", actor="support")
    gift.refresh_from_db()
    assert (gift.status, gift.recipient_email) == (GiftStatus.UNCLAIMED, "new@example.com")

    assert gift_details_remove_ended() == 0
    assert details(gift)[2] == "new@example.com"


def test_the_number_of_days_is_a_setting(clock, settings):
    settings.GIFT_DATA_RETENTION_DAYS = 30
    gift = ended(GiftStatus.CANCELLED, START - timedelta(days=31))
    assert gift_details_remove_ended() == 1
    assert details(gift) == NONE_LEFT


def test_beat_runs_it_daily(clock):
    entry = settings.CELERY_BEAT_SCHEDULE["remove-ended-gift-details"]
    assert entry["task"] == "gifts.remove_ended_gift_details" and entry["schedule"] <= 86400
    assert entry["task"] in app.tasks
    gift = ended(GiftStatus.EXPIRED, START - timedelta(days=91))

    tasks.remove_ended_gift_details.delay()

    assert details(gift) == NONE_LEFT


# --- the outbox stores no message --------------------------------------------------------------------------------


def test_outbox_rows_store_no_subject_or_body(clock, django_capture_on_commit_callbacks):
    stored = {field.name for field in Email._meta.concrete_fields}
    assert stored == {
        "id",
        "key",
        "kind",
        "to_email",
        "gift",
        "order",
        "status",
        "attempts",
        "next_attempt_at",
        "sending_started_at",
        "sent_at",
        "last_error",
        "provider_message_id",
        "delivered_at",
        "opened_at",
        "clicked_at",
        "complained_at",
        "created_at",
    }
    mail.outbox.clear()
    gift = redeemed_gift(django_capture_on_commit_callbacks)

    delivery = next(message for message in mail.outbox if message.to == ["peter@example.com"])
    assert gift.code in delivery.body and NOTE in delivery.body  # what was sent had them ...
    rows = json.dumps(list(Email.objects.values()), default=str)
    for sent in (gift.code, NOTE, delivery.subject):
        assert sent not in rows  # ... and no row keeps them
