"""The email outbox against an unreliable provider: retries with backoff (CEL-9), permanent refusals (CEL-10), a
spent retry budget (CEL-11), duplicate send tasks (CEL-12) and rows left behind by a dead worker (CEL-15)."""

import logging
from datetime import UTC, datetime, timedelta
from unittest import mock

import pytest
from django.core import mail
from django.utils import timezone

from emails import tasks
from emails.models import Email
from emails.services import MAX_ATTEMPTS, STUCK_AFTER, send_due_emails
from emails.tests.email_backends import FlakyBackend, LostAnswerBackend, RefusingBackend
from gifts import services
from gifts.models import GiftStatus
from gifts.tests.factories import GiftFactory, GuestFactory, make_gift

pytestmark = pytest.mark.django_db

START = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
RECIPIENT = "friend@example.com"


def provider(settings, backend, **setup):
    """Makes `backend` (a fake of email_backends) the email provider, set up with `setup`; reset afterwards."""
    settings.EMAIL_BACKEND = f"{backend.__module__}.{backend.__name__}"
    backend.reset(**setup)
    yield backend
    backend.reset()


@pytest.fixture
def flaky_provider(settings):
    yield from provider(settings, FlakyBackend, failures=3)


@pytest.fixture
def refusing_provider(settings):
    yield from provider(settings, RefusingBackend)


@pytest.fixture
def answer_lost_once(settings):
    yield from provider(settings, LostAnswerBackend, failures=1)


@pytest.fixture
def delivered_gift(time_machine):
    """A gift whose delivery sweep ran at START (its emails tried once, straight away)."""
    time_machine.move_to(START, tick=False)
    gift = GiftFactory(recipient_email=RECIPIENT, scheduled_at=START)
    assert services.deliver_due_gifts() == 1
    return gift


def delivery_of(gift):
    return Email.objects.get(gift=gift, kind=Email.Kind.GIFT_DELIVERY)


def messages_to(address):
    return [message for message in mail.outbox if address in message.to]


def retry_until_settled(email, time_machine, *, limit):
    """Runs the outbox sweep each time the email's next attempt is due; returns the delays the sweep was given."""
    delays = []
    for _ in range(limit):
        email.refresh_from_db()
        if email.status != Email.Status.PENDING:
            return delays
        delays.append(email.next_attempt_at - timezone.now())
        time_machine.move_to(email.next_attempt_at - timedelta(seconds=1))
        send_due_emails()
        email.refresh_from_db()
        assert email.status == Email.Status.PENDING, "retried before its delay was up"
        time_machine.move_to(email.next_attempt_at)
        send_due_emails()
    raise AssertionError(f"still pending after {limit} sweeps")


def test_it_retries_a_transient_provider_error_with_growing_delays_and_sends_the_email_once(
    flaky_provider, delivered_gift, time_machine
):
    delivery = delivery_of(delivered_gift)
    delays = retry_until_settled(delivery, time_machine, limit=10)

    assert delivery.status == Email.Status.SENT and delivery.attempts == 4
    assert flaky_provider.attempts_of(delivery.key) == 4
    assert len(delays) == 3 and delays[0] < delays[1] < delays[2], delays
    assert len(messages_to(RECIPIENT)) == 1
    assert delivery.last_error == ""


def test_a_retry_after_an_answer_that_never_came_says_a_duplicate_is_possible(
    answer_lost_once, caplog, delivered_gift, time_machine
):
    delivery = delivery_of(delivered_gift)
    retry_until_settled(delivery, time_machine, limit=3)
    assert delivery.status == Email.Status.SENT and answer_lost_once.attempts_of(delivery.key) == 2
    expected = f"email {delivery.key} attempt 1 got no answer from the provider, will retry; a duplicate is possible"
    assert any(expected in record.getMessage() for record in caplog.get_records("setup"))  # the fixture's send


@pytest.mark.parametrize("error", ["bad_request", "recipients_refused"])
def test_it_gives_up_at_once_on_a_permanent_provider_error_logs_the_gift_and_leaves_it_redeemable(
    refusing_provider, error, caplog, time_machine
):
    refusing_provider.reset(refused={RECIPIENT}, error=error)
    time_machine.move_to(START, tick=False)
    gift = GiftFactory(recipient_email=RECIPIENT, scheduled_at=START)
    with caplog.at_level(logging.WARNING, logger="emails"):
        services.deliver_due_gifts()

    delivery = delivery_of(gift)
    assert delivery.status == Email.Status.FAILED and delivery.attempts == 1
    assert refusing_provider.attempts_of(delivery.key) == 1
    logged = [(record.levelno, record.getMessage()) for record in caplog.records if record.name.startswith("emails")]
    assert len(logged) == 1
    assert logged[0][0] == logging.ERROR and f"gift {gift.pk}" in logged[0][1]

    time_machine.move_to(START + timedelta(days=2))
    send_due_emails()  # sends the gifter's "we could not deliver your gift" notice, never the failed email again
    assert refusing_provider.attempts_of(delivery.key) == 1
    assert messages_to(RECIPIENT) == []
    notice = Email.objects.get(gift=gift, kind=Email.Kind.GIFT_BOUNCED)
    assert notice.to_email == gift.gifter.email and notice.status == Email.Status.SENT
    assert send_due_emails() == 0

    gift.refresh_from_db()
    assert gift.status == GiftStatus.UNCLAIMED
    redeemed = services.gift_redeem(customer=GuestFactory(email=RECIPIENT), code=gift.code)
    assert redeemed.gift.status == GiftStatus.CLAIMED


def test_it_marks_an_email_failed_when_the_provider_stays_down_past_the_retry_budget_and_stops_retrying(
    flaky_provider, delivered_gift, time_machine, caplog
):
    flaky_provider.failures = 10**6
    delivery = delivery_of(delivered_gift)
    with caplog.at_level(logging.ERROR, logger="emails"):
        retry_until_settled(delivery, time_machine, limit=MAX_ATTEMPTS + 2)

    assert delivery.status == Email.Status.FAILED and delivery.attempts == MAX_ATTEMPTS
    assert flaky_provider.attempts_of(delivery.key) == MAX_ATTEMPTS
    assert timezone.now() - START > timedelta(hours=1)  # the budget is hours, not a burst of quick retries
    assert any(delivery.key in record.getMessage() for record in caplog.records if record.levelno == logging.ERROR)

    time_machine.move_to(START + timedelta(days=7))
    assert send_due_emails() == 0
    delivery.refresh_from_db()
    assert delivery.status == Email.Status.FAILED and delivery.attempts == MAX_ATTEMPTS
    assert flaky_provider.attempts_of(delivery.key) == MAX_ATTEMPTS
    assert messages_to(RECIPIENT) == []


def test_it_sends_nothing_when_the_send_task_runs_a_second_time_for_the_same_email():
    gift = make_gift()  # its receipt is pending: this test's transaction never commits, so no task ran yet
    receipt = Email.objects.get(gift=gift, kind=Email.Kind.GIFT_RECEIPT)

    tasks.send_email.delay(receipt.pk)
    tasks.send_email.delay(receipt.pk)

    receipt.refresh_from_db()
    assert receipt.status == Email.Status.SENT and receipt.attempts == 1
    assert len(messages_to(gift.gifter.email)) == 1


def test_it_sends_nothing_when_a_duplicate_task_arrives_for_an_email_another_worker_is_sending():
    gift = make_gift()
    receipt = Email.objects.get(gift=gift, kind=Email.Kind.GIFT_RECEIPT)
    Email.objects.filter(pk=receipt.pk).update(status=Email.Status.SENDING, sending_started_at=timezone.now())

    tasks.send_email.delay(receipt.pk)

    assert mail.outbox == []
    receipt.refresh_from_db()
    assert receipt.status == Email.Status.SENDING and receipt.attempts == 0


def test_it_sends_the_delivery_email_once_even_if_its_task_arrives_after_the_sweep_sent_it(delivered_gift):
    delivery = delivery_of(delivered_gift)
    assert delivery.status == Email.Status.SENT

    tasks.send_email.delay(delivery.pk)

    assert len(messages_to(RECIPIENT)) == 1


def test_it_gives_back_emails_stuck_in_sending_by_a_dead_worker_and_sends_each_exactly_once(
    time_machine, django_capture_on_commit_callbacks
):
    time_machine.move_to(START, tick=False)
    gift = GiftFactory(recipient_email=RECIPIENT, scheduled_at=START)
    services.deliver_due_gifts(send=False)  # the worker committed the delivery, then died before sending
    delivery = delivery_of(gift)
    assert delivery.status == Email.Status.SENDING

    time_machine.move_to(START + STUCK_AFTER - timedelta(seconds=1))
    assert send_due_emails() == 0  # it may still be working
    time_machine.move_to(START + STUCK_AFTER + timedelta(seconds=1))
    # Each goes out in a task of its own (here run in-process, once the test's transaction would commit): only
    # the delivery email, as the gifter's notice is written when the provider accepts it, and sent in its task.
    with django_capture_on_commit_callbacks(execute=True) as tasks_published:
        assert send_due_emails() == 0
    assert len(tasks_published) == 1
    assert send_due_emails() == 0

    delivery.refresh_from_db()
    assert delivery.status == Email.Status.SENT and delivery.attempts == 2
    assert len(messages_to(RECIPIENT)) == 1
    assert Email.objects.filter(gift=gift, kind=Email.Kind.GIFT_DELIVERED, status=Email.Status.SENT).exists()


def test_emails_given_back_by_a_lost_worker_are_sent_one_per_task_so_one_that_kills_its_worker_fails_alone(
    time_machine, django_capture_on_commit_callbacks
):
    """Three rows a dead worker had claimed together; sending the second one kills whoever sends it. Alone in
    its own task it takes down only itself: the other two go out, and it fails when its attempts are spent."""
    time_machine.move_to(START, tick=False)
    gifts = [GiftFactory(recipient_email=f"r{n}@example.com", scheduled_at=START) for n in range(3)]
    services.deliver_due_gifts(send=False)
    deliveries = [delivery_of(gift) for gift in gifts]
    poison = deliveries[1]

    from emails import services as outbox

    real_send = outbox.send_claimed_emails

    def send_or_die(emails):
        if [e.pk for e in emails] == [poison.pk]:
            raise RuntimeError("the worker died")  # as if its process were gone: nothing is recorded
        return real_send(emails)

    time_machine.move_to(START + STUCK_AFTER + timedelta(seconds=1))
    with (
        mock.patch.object(outbox, "send_claimed_emails", send_or_die),
        django_capture_on_commit_callbacks(execute=True),
    ):
        send_due_emails()
    for delivery in deliveries:
        delivery.refresh_from_db()
    assert [d.status for d in deliveries] == [Email.Status.SENT, Email.Status.SENDING, Email.Status.SENT]
    assert [len(messages_to(f"r{n}@example.com")) for n in range(3)] == [1, 0, 1]


def test_it_fails_an_email_whose_last_allowed_attempt_was_lost_with_its_worker_instead_of_retrying_it(
    time_machine, caplog
):
    time_machine.move_to(START, tick=False)
    receipt = Email.objects.get(gift=make_gift(), kind=Email.Kind.GIFT_RECEIPT)
    # every attempt so far killed its worker (a poison message): the budget must still end the retries
    Email.objects.filter(pk=receipt.pk).update(
        status=Email.Status.SENDING, sending_started_at=START, attempts=MAX_ATTEMPTS
    )

    time_machine.move_to(START + STUCK_AFTER + timedelta(seconds=1))
    with caplog.at_level(logging.ERROR, logger="emails"):
        assert send_due_emails() == 0

    receipt.refresh_from_db()
    assert receipt.status == Email.Status.FAILED and receipt.attempts == MAX_ATTEMPTS
    assert mail.outbox == []
    assert any(receipt.key in record.getMessage() for record in caplog.records if record.levelno == logging.ERROR)
