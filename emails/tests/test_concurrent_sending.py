"""Sending is waiting on the provider (issue 14): a send task keeps EMAIL_SEND_CONCURRENCY requests under way, all
senders keep the provider's rate limit together, a "too many requests" slows every sender and never fails an
email, a send cut short by its time limit gives back at once what it had not started, and the delivery sweep
hands its emails to send tasks instead of waiting on the provider."""

import threading
import time
from datetime import timedelta

import pytest
from celery.exceptions import SoftTimeLimitExceeded
from django.core import mail
from django.core.cache import cache
from django.utils import timezone

from emails import services as outbox
from emails import throttle
from emails.models import Email
from emails.tests.email_backends import KEY_HEADER, RecordingBackend, provider_error
from gifts import services as gift_services
from gifts.models import Gift, GiftStatus
from gifts.tests.factories import make_gift
from offers.tests.factories import OfferFactory

pytestmark = pytest.mark.django_db


class SlowBackend(RecordingBackend):
    """Answers each message after `latency` seconds, recording when each request started and how many were under
    way at once; the first `throttled` requests are answered 429 with `Retry-After: retry_after`."""

    latency, throttled, retry_after = 0.1, 0, "0.2"
    started, answered_429, peak, lock, under_way = [], [], 0, threading.Lock(), 0

    @classmethod
    def reset(cls, latency=0.1, throttled=0, retry_after="0.2"):
        super().reset()
        cls.latency, cls.throttled, cls.retry_after = latency, throttled, retry_after
        cls.started, cls.answered_429, cls.peak, cls.under_way = [], [], 0, 0

    def send_messages(self, messages):
        cls = type(self)
        with cls.lock:
            cls.started.append(time.monotonic())
            cls.under_way += 1
            cls.peak = max(cls.peak, cls.under_way)
            throttle = cls.throttled > 0
            cls.throttled -= throttle
        try:
            time.sleep(cls.latency)
            if throttle:
                error = provider_error(429, "Too many requests")
                error.response.headers["Retry-After"] = cls.retry_after
                cls.answered_429.append(time.monotonic())
                raise error
            return super().send_messages(messages)
        finally:
            with cls.lock:
                cls.under_way -= 1


@pytest.fixture
def slow_provider(settings):
    settings.EMAIL_BACKEND = f"{__name__}.SlowBackend"
    SlowBackend.reset()
    yield SlowBackend
    SlowBackend.reset()


def due_gifts(count):
    offer = OfferFactory()
    return [make_gift(offer=offer, recipient_email=f"friend{n}@example.com") for n in range(count)]


def delivery_emails(gifts):
    return Email.objects.filter(gift__in=gifts, kind=Email.Kind.GIFT_DELIVERY)


def test_a_send_keeps_its_concurrency_of_requests_under_way(slow_provider, settings):
    settings.EMAIL_SEND_CONCURRENCY = 8
    gifts = due_gifts(16)
    started = time.monotonic()

    assert gift_services.deliver_due_gifts() == 16

    elapsed = time.monotonic() - started
    assert slow_provider.peak == 8  # never more, and it got there
    # 16 deliveries + 16 notices at 0.1 s each: 3.2 s one at a time, about 0.4 s eight at a time.
    assert elapsed < 1.6, elapsed
    assert set(delivery_emails(gifts).values_list("status", "attempts")) == {(Email.Status.SENT, 1)}
    assert len(mail.outbox) == 32 and len({m.extra_headers[KEY_HEADER] for m in mail.outbox}) == 32


def test_a_concurrency_of_one_sends_one_at_a_time(slow_provider, settings):
    settings.EMAIL_SEND_CONCURRENCY = 1
    due_gifts(3)
    gift_services.deliver_due_gifts()
    assert slow_provider.peak == 1 and len(mail.outbox) == 6


def test_the_rate_limit_spaces_every_request(slow_provider, settings):
    settings.EMAIL_SEND_CONCURRENCY, settings.EMAIL_RATE_LIMIT = 8, 20.0
    slow_provider.reset(latency=0.01)
    due_gifts(10)
    throttle._schedules.clear()

    gift_services.deliver_due_gifts()

    # One schedule (one Redis client) for the process, however many sender threads took slots on it.
    assert len(throttle._schedules) == 1

    starts = sorted(slow_provider.started)
    assert len(starts) == 20
    # A slot every 50 ms, whichever thread takes it: 20 requests span 0.95 s (a thread that wakes late for its
    # slot can start close to the next one, never before its own).
    assert starts[-1] - starts[0] >= 19 / 20 - 0.02, starts
    # What a provider limiting to 20 a second counts with (a bucket of 20 tokens, 20 more a second) never runs out.
    tokens, last = 20.0, starts[0]
    for start in starts:
        tokens = min(20.0, tokens + (start - last) * 20) - 1
        last = start
        assert tokens >= 0, starts


def test_too_many_requests_pauses_every_sender_and_fails_nothing(slow_provider, settings):
    settings.EMAIL_SEND_CONCURRENCY = 4
    slow_provider.reset(latency=0.01, throttled=3, retry_after="0.3")
    gifts = due_gifts(4)

    gift_services.deliver_due_gifts()

    assert set(delivery_emails(gifts).values_list("status", "attempts")) == {(Email.Status.SENT, 1)}
    deliveries = Email.objects.filter(kind__in=[Email.Kind.GIFT_DELIVERY, Email.Kind.GIFT_DELIVERED])
    assert deliveries.count() == 8 and not deliveries.exclude(status=Email.Status.SENT).exists()
    # After each "too many requests", nothing went out from any thread for the 0.3 s the provider asked for.
    assert len(slow_provider.answered_429) == 3
    for answered in slow_provider.answered_429:
        assert not [s for s in slow_provider.started if answered < s < answered + 0.28], (
            answered,
            slow_provider.started,
        )


def test_an_email_throttled_again_and_again_goes_back_to_the_queue_not_failed(slow_provider, settings):
    settings.EMAIL_SEND_CONCURRENCY = 1
    slow_provider.reset(latency=0, throttled=outbox.THROTTLED_TRIES, retry_after="0.05")
    (gift,) = due_gifts(1)

    gift_services.deliver_due_gifts()

    email = delivery_emails([gift]).get()
    assert (email.status, email.attempts) == (Email.Status.PENDING, 0)  # the attempt is not counted
    assert "throttled" in email.last_error and email.next_attempt_at <= timezone.now() + timedelta(seconds=1)
    time.sleep(0.1)
    outbox.send_due_emails()
    email.refresh_from_db()
    assert (email.status, email.attempts) == (Email.Status.SENT, 1)


def test_a_send_cut_short_by_its_time_limit_gives_back_at_once_what_it_had_not_started(
    slow_provider, settings, monkeypatch
):
    settings.EMAIL_SEND_CONCURRENCY = 4
    slow_provider.reset(latency=0.05)
    gifts = due_gifts(40)
    record, outcomes = outbox._outcomes, []

    def outcome_then_time_is_up(group, future):
        outcomes.append(record(group, future))
        if len(outcomes) == 6:  # once, as Celery's signal handler does, in the task's thread
            raise SoftTimeLimitExceeded()
        return outcomes[-1]

    monkeypatch.setattr(outbox, "_outcomes", outcome_then_time_is_up)
    with pytest.raises(SoftTimeLimitExceeded):
        gift_services.deliver_due_gifts()
    monkeypatch.undo()

    emails = delivery_emails(gifts)
    sent = emails.filter(status=Email.Status.SENT)
    # The sixth was recorded (then the limit struck): it stays `sending` for the stuck reset, as a row whose
    # outcome was lost does. The others under way finished; what had not started went back to the queue.
    assert emails.filter(status=Email.Status.SENDING).count() <= 1
    assert sent.count() >= 5 and set(sent.values_list("attempts", flat=True)) == {1}
    given_back = emails.filter(status=Email.Status.PENDING)
    assert given_back.count() >= 20  # 40 at 50 ms, four at a time: most had not started
    assert sent.count() + given_back.count() + emails.filter(status=Email.Status.SENDING).count() == 40
    assert set(given_back.values_list("attempts", flat=True)) == {0}
    assert not given_back.filter(next_attempt_at__gt=timezone.now()).exists()  # due at once

    outbox.send_due_emails()
    assert emails.filter(status=Email.Status.SENT).count() >= 39
    assert len({m.extra_headers[KEY_HEADER] for m in mail.outbox}) == len(mail.outbox)  # none sent twice


def test_the_delivery_sweep_hands_its_emails_to_send_tasks(settings, django_capture_on_commit_callbacks):
    settings.EMAIL_SEND_CHUNK = 3
    gifts = due_gifts(7)
    handed = []

    def hand_off(ids):
        handed.extend(ids)
        outbox.hand_off(ids)

    with django_capture_on_commit_callbacks(execute=True) as published:
        assert gift_services.deliver_due_gifts(hand_off=hand_off) == 7
    assert len(published) == 3  # 7 emails, 3 to a task
    assert sorted(handed) == sorted(delivery_emails(gifts).values_list("pk", flat=True))
    assert set(delivery_emails(gifts).values_list("status", "attempts")) == {(Email.Status.SENT, 1)}


def test_a_handed_off_email_whose_task_is_lost_goes_out_with_the_outbox_sweep(time_machine):
    (gift,) = due_gifts(1)
    gift_services.deliver_due_gifts(hand_off=lambda ids: None)  # the publish is lost
    email = delivery_emails([gift]).get()
    assert (email.status, email.attempts) == (Email.Status.PENDING, 0)
    outbox.send_due_emails()
    email.refresh_from_db()
    assert email.status == Email.Status.PENDING  # its task has the grace to send it first
    time_machine.move_to(timezone.now() + gift_services.HAND_OFF_GRACE + timedelta(seconds=1))
    outbox.send_due_emails()
    email.refresh_from_db()
    assert email.status == Email.Status.SENT


def test_one_delivery_sweep_at_a_time_and_only_when_a_gift_is_due():
    assert gift_services.delivery_sweep() == 0  # nothing due: one probe, no lock
    assert not cache.get(gift_services.SWEEP_LOCK)
    due_gifts(2)
    cache.add(gift_services.SWEEP_LOCK, 1)  # another worker's sweep is running
    assert gift_services.delivery_sweep() == 0
    cache.delete(gift_services.SWEEP_LOCK)
    assert gift_services.delivery_sweep() == 2
    assert set(Gift.objects.values_list("status", flat=True)) == {GiftStatus.UNCLAIMED}


class RefusingWithReasonBackend(RecordingBackend):
    def send_messages(self, messages):
        raise provider_error(422, "Invalid 'To' address: 'friend0@example.com' is on the suppression list.")


def test_a_refusal_keeps_the_providers_status_and_words_in_the_log_and_the_row(settings, caplog):
    settings.EMAIL_BACKEND = f"{__name__}.RefusingWithReasonBackend"
    (gift,) = due_gifts(1)

    gift_services.deliver_due_gifts()

    email = delivery_emails([gift]).get()
    assert email.status == Email.Status.FAILED
    for text in (email.last_error, caplog.text):
        assert "HTTP 422" in text and "suppression list" in text
    assert "AnymailAPIError()" not in caplog.text
