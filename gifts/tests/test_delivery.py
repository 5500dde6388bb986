"""Delivery: the purchase's outbox rows are written with it or not at all (CEL-1, CEL-2), and the sweep delivers
every due gift exactly once, however many sweeps run at once and however late they run (CEL-4, CEL-5)."""

import threading
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from django.core import mail
from django.db import connection, transaction
from django.utils import timezone

from accounts.tests.factories import PaymentMethodFactory
from billing.services import order_create, order_pay, order_update
from emails.models import Email
from gifts import services
from gifts.models import Gift, GiftStatus
from gifts.tests.factories import GiftFactory, GuestFactory, make_gift
from offers.tests.factories import OfferFactory


class PaymentCrashed(Exception):
    """Anything going wrong later in the purchase's transaction."""


def delivery_emails():
    """The messages sent to recipients (the gifter's own emails go elsewhere)."""
    return [message for message in mail.outbox if message.subject.startswith("You've received a gift")]


@pytest.mark.django_db
def test_it_leaves_no_outbox_row_task_or_email_when_the_purchase_rolls_back_after_the_gift_insert(
    django_capture_on_commit_callbacks,
):
    gifter, offer = GuestFactory(), OfferFactory()
    with django_capture_on_commit_callbacks() as published, pytest.raises(PaymentCrashed), transaction.atomic():
        gift = make_gift(gifter=gifter, offer=offer)
        assert Email.objects.filter(gift=gift).exists()  # it was there, inside the transaction
        raise PaymentCrashed
    assert not Gift.objects.exists()
    assert not Email.objects.exists()
    assert published == []
    assert mail.outbox == []


@pytest.mark.django_db
def test_it_queues_only_the_receipt_when_a_purchase_commits_and_emails_the_recipient_only_when_due(
    django_capture_on_commit_callbacks, time_machine
):
    time_machine.move_to(datetime(2026, 5, 4, 9, 0, tzinfo=UTC), tick=False)
    gifter = GuestFactory()
    PaymentMethodFactory(customer=gifter, token="tok_visa")
    order = order_create(customer=gifter, offer=OfferFactory(), buy_as_gift=True)
    deliver_at = timezone.now() + timedelta(days=2)
    order_update(order=order, recipient_email="friend@example.com", scheduled_at=deliver_at)
    with django_capture_on_commit_callbacks(execute=True) as published:
        gift = order_pay(order=order).gift

    assert len(published) <= 1
    assert list(Email.objects.values_list("kind", "to_email", "status")) == [("gift_receipt", gifter.email, "sent")]
    assert [message.to for message in mail.outbox] == [[gifter.email]]

    time_machine.move_to(deliver_at - timedelta(seconds=1))
    assert services.deliver_due_gifts() == 0
    assert delivery_emails() == []
    gift.refresh_from_db()
    assert gift.status == GiftStatus.SCHEDULED

    time_machine.move_to(deliver_at)
    assert services.deliver_due_gifts() == 1
    assert [message.to for message in delivery_emails()] == [["friend@example.com"]]


@pytest.mark.django_db(transaction=True)
def test_it_delivers_each_of_1000_due_gifts_exactly_once_when_four_sweeps_run_at_the_same_time():
    now = timezone.now()
    gifter, offer = GuestFactory(), OfferFactory()
    Gift.objects.bulk_create(
        GiftFactory.build(gifter=gifter, offer=offer, scheduled_at=now - timedelta(seconds=i)) for i in range(1000)
    )
    start = threading.Barrier(4)
    delivered, errors = [], []

    def sweep():
        try:
            start.wait()
            delivered.append(services.deliver_due_gifts())
        except Exception as error:  # reported below, with the others
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=sweep) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert sum(delivered) == 1000
    recipients = Counter(recipient for message in delivery_emails() for recipient in message.to)
    assert len(recipients) == 1000 and set(recipients.values()) == {1}
    assert set(recipients) == set(Gift.objects.values_list("recipient_email", flat=True))
    assert Gift.objects.filter(status=GiftStatus.UNCLAIMED, sent_at__isnull=False).count() == 1000
    assert Email.objects.filter(kind="gift_delivery", status="sent").count() == 1000


@pytest.mark.django_db
def test_it_catches_up_on_three_hours_of_due_gifts_in_one_sweep_and_sends_none_twice(time_machine):
    beat_stopped = datetime(2026, 3, 1, 6, 0, tzinfo=UTC)
    time_machine.move_to(beat_stopped, tick=False)
    gifter, offer = GuestFactory(), OfferFactory()
    for minute in range(180):
        GiftFactory(gifter=gifter, offer=offer, scheduled_at=beat_stopped + timedelta(minutes=minute))

    time_machine.move_to(beat_stopped + timedelta(hours=3))  # beat is back
    assert services.deliver_due_gifts() == 180
    assert services.deliver_due_gifts() == 0

    recipients = Counter(recipient for message in delivery_emails() for recipient in message.to)
    assert len(recipients) == 180 and set(recipients.values()) == {1}
    assert not Gift.objects.exclude(status=GiftStatus.UNCLAIMED).exists()
    assert Email.objects.filter(kind="gift_delivery").count() == 180
