"""The gifter's "your gift was delivered" notice (issue 12): it goes out only once the provider accepted the
recipient's delivery email, so a gifter whose recipient's address the provider refuses at send time hears only
"we could not deliver", never both in the same second. A bounce reported later, after the provider accepted the
message, still follows the notice (both are true by then)."""

from datetime import timedelta

import pytest
from django.core import mail

from emails import services as outbox
from emails.models import Email
from emails.services import send_due_emails
from emails.tests.email_backends import KEY_HEADER, FlakyBackend, RecordingBackend, RefusingBackend
from emails.tests.mailgun import START, bounce_of, post_webhook
from gifts import services
from gifts.models import GiftStatus
from gifts.tests.factories import make_gift

pytestmark = pytest.mark.django_db

RECIPIENT = "friend@example.com"
GIFTER = "gifter@example.com"


def provider(settings, backend, **setup):
    settings.EMAIL_BACKEND = f"{backend.__module__}.{backend.__name__}"
    backend.reset(**setup)
    yield backend
    backend.reset()


@pytest.fixture
def refusing_provider(settings):
    yield from provider(settings, RefusingBackend, refused={RECIPIENT})


@pytest.fixture
def flaky_provider(settings):
    yield from provider(settings, FlakyBackend, failures=1)


@pytest.fixture
def due_gift(gifter, time_machine):
    """A gift due at START, not yet delivered; the gifter's receipt already sent (by the default test backend)."""
    time_machine.move_to(START, tick=False)
    gift = make_gift(gifter=gifter, recipient_email=RECIPIENT, now=START)
    send_due_emails()  # the gifter's receipt, out of the way
    mail.outbox.clear()
    return gift


def kinds_sent_to(address):
    """The kinds of the messages the provider took for `address`, in the order it took them."""
    kinds = dict(Email.objects.values_list("key", "kind"))
    return [kinds[m.extra_headers[KEY_HEADER]] for m in mail.outbox if address in m.to]


def notices(gift):
    return Email.objects.filter(gift=gift, kind=Email.Kind.GIFT_DELIVERED)


@pytest.mark.parametrize("error", ["bad_request", "recipients_refused"])
def test_a_gifter_whose_recipients_address_is_refused_hears_only_that_it_could_not_be_delivered(
    due_gift, refusing_provider, error, time_machine
):
    refusing_provider.reset(refused={RECIPIENT}, error=error)

    assert services.deliver_due_gifts() == 1

    assert Email.objects.get(gift=due_gift, kind=Email.Kind.GIFT_DELIVERY).status == Email.Status.FAILED
    assert not notices(due_gift).exists()
    time_machine.move_to(START + timedelta(minutes=5))
    send_due_emails()  # the could-not-deliver notice, queued by the refusal
    assert kinds_sent_to(GIFTER) == [Email.Kind.GIFT_BOUNCED]
    assert kinds_sent_to(RECIPIENT) == []
    assert send_due_emails() == 0 and not notices(due_gift).exists()


def test_a_delivery_the_provider_accepts_brings_one_notice_sent_after_it_in_the_same_sweep(due_gift):
    assert services.deliver_due_gifts() == 1

    delivery = Email.objects.get(gift=due_gift, kind=Email.Kind.GIFT_DELIVERY)
    [notice] = notices(due_gift)
    assert notice.key == f"gift:{due_gift.pk}:delivered" and notice.to_email == GIFTER
    assert delivery.status == notice.status == Email.Status.SENT and notice.attempts == 1
    assert notice.sent_at >= delivery.sent_at
    assert [m.extra_headers[KEY_HEADER] for m in mail.outbox] == [delivery.key, notice.key]
    assert send_due_emails() == 0


def test_the_notice_waits_for_a_retry_the_provider_accepts(due_gift, flaky_provider, time_machine):
    services.deliver_due_gifts()  # the provider answers 503 to the first attempt of the delivery email

    assert Email.objects.get(gift=due_gift, kind=Email.Kind.GIFT_DELIVERY).status == Email.Status.PENDING
    assert not notices(due_gift).exists()
    flaky_provider.reset(failures=0)  # it is back
    time_machine.move_to(START + timedelta(minutes=1))
    assert send_due_emails() == 2  # the delivery email, then the notice it brought

    assert kinds_sent_to(RECIPIENT) == [Email.Kind.GIFT_DELIVERY]
    assert kinds_sent_to(GIFTER) == [Email.Kind.GIFT_DELIVERED]


def test_a_resent_delivery_email_brings_no_second_notice(due_gift, django_capture_on_commit_callbacks):
    services.deliver_due_gifts()

    with django_capture_on_commit_callbacks(execute=True):
        services.gift_resend(gift_id=due_gift.pk, actor="support")

    assert kinds_sent_to(RECIPIENT) == [Email.Kind.GIFT_DELIVERY, Email.Kind.GIFT_DELIVERY]
    assert kinds_sent_to(GIFTER) == [Email.Kind.GIFT_DELIVERED]
    assert notices(due_gift).count() == 1


def test_a_corrected_address_the_provider_accepts_tells_a_gifter_who_heard_only_of_the_refusal(
    due_gift, refusing_provider, time_machine, django_capture_on_commit_callbacks
):
    services.deliver_due_gifts()
    time_machine.move_to(START + timedelta(minutes=5))
    send_due_emails()
    assert kinds_sent_to(GIFTER) == [Email.Kind.GIFT_BOUNCED]

    with django_capture_on_commit_callbacks(execute=True):
        services.gift_change_recipient(
            gift_id=due_gift.pk, recipient_email="friend@example.org", actor="gifter", by_gifter=True
        )

    assert kinds_sent_to("friend@example.org") == [Email.Kind.GIFT_DELIVERY]
    assert kinds_sent_to(GIFTER) == [Email.Kind.GIFT_BOUNCED, Email.Kind.GIFT_DELIVERED]
    assert notices(due_gift).count() == 1


def test_a_bounce_reported_after_the_provider_accepted_the_email_follows_the_notice(
    client, delivered, django_capture_on_commit_callbacks, time_machine
):
    """Today's behaviour, kept: the provider accepted it (the gifter was told it went out), then it bounced."""
    delivery = Email.objects.get(gift=delivered, kind=Email.Kind.GIFT_DELIVERY)
    assert notices(delivered).get().status == Email.Status.SENT

    with django_capture_on_commit_callbacks(execute=True):
        assert post_webhook(client, bounce_of(delivery)).status_code == 200

    assert kinds_sent_to(GIFTER) == [Email.Kind.GIFT_BOUNCED]
    assert notices(delivered).count() == 1
    delivered.refresh_from_db()
    assert delivered.status == GiftStatus.UNCLAIMED


class BouncedWhileSendingBackend(RecordingBackend):
    """Accepts every message, but the ESP's bounce webhook for a delivery email arrives before the worker has
    written `sent` (as it can, on another web process)."""

    def send_messages(self, messages):
        sent = super().send_messages(messages)
        for message in messages:
            if message.to == [RECIPIENT]:
                outbox.email_bounced(
                    email_key=message.extra_headers[KEY_HEADER],
                    recipient=RECIPIENT,
                    event_type="bounced",
                    description="No such mailbox",
                )
        return sent


def test_a_bounce_that_beats_the_workers_write_of_sent_brings_only_the_could_not_deliver_notice(
    due_gift, settings, time_machine
):
    settings.EMAIL_BACKEND = f"{__name__}.BouncedWhileSendingBackend"
    # In the task's own thread: the webhook it plays must see this test's (uncommitted) rows.
    settings.EMAIL_SEND_CONCURRENCY = 1
    BouncedWhileSendingBackend.reset()

    services.deliver_due_gifts()

    assert Email.objects.get(gift=due_gift, kind=Email.Kind.GIFT_DELIVERY).status == Email.Status.BOUNCED
    assert not notices(due_gift).exists()
    time_machine.move_to(START + timedelta(minutes=5))
    send_due_emails()
    assert kinds_sent_to(GIFTER) == [Email.Kind.GIFT_BOUNCED]
