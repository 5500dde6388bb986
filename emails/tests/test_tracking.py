"""The provider's tracking events (Postmark's Delivery, Open, Click and SpamComplaint webhooks, through anymail's
tracking URL) time the email they are about, the first report of each; repeats, late duplicates and events about
emails we never sent change nothing. A complaint is timed, not a bounce: the email arrived at the right address."""

from datetime import UTC, datetime

import pytest
from django.core import mail

from emails.models import Email
from emails.tests.postmark import click, delivery, open_, post_event, postmark_webhooks, spam_complaint  # noqa: F401
from gifts import services
from gifts.tests.factories import make_gift

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("postmark_webhooks")]

AT = "2026-12-04T10:00:01.9070259Z"
LATER = "2026-12-05T08:30:00.0000000Z"
TIME = datetime(2026, 12, 4, 10, 0, 1, 907025, tzinfo=UTC)


@pytest.fixture
def email():
    make_gift(recipient_email="robin@example.com")
    assert services.deliver_due_gifts() == 1
    mail.outbox.clear()
    return Email.objects.get(kind=Email.Kind.GIFT_DELIVERY)


@pytest.mark.parametrize(
    ("payload", "field"),
    [(delivery, "delivered_at"), (open_, "opened_at"), (click, "clicked_at"), (spam_complaint, "complained_at")],
)
def test_it_records_each_event_at_the_providers_time_once(client, email, payload, field):
    assert post_event(client, payload(email, AT)).status_code == 200
    email.refresh_from_db()
    assert getattr(email, field) == TIME

    assert post_event(client, payload(email, LATER)).status_code == 200  # a repeat (a second open, a retry)

    email.refresh_from_db()
    assert getattr(email, field) == TIME
    others = {"delivered_at", "opened_at", "clicked_at", "complained_at"} - {field}
    assert all(getattr(email, other) is None for other in others)


def test_a_spam_complaint_is_timed_but_does_not_bounce_the_email_or_tell_the_gifter(
    client, email, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        assert post_event(client, spam_complaint(email, AT)).status_code == 200

    email.refresh_from_db()
    assert email.status == Email.Status.SENT and email.complained_at == TIME
    assert mail.outbox == []
    assert not Email.objects.filter(kind=Email.Kind.GIFT_BOUNCED).exists()


def test_it_finds_the_email_by_the_providers_message_id_without_metadata(client, email):
    Email.objects.filter(pk=email.pk).update(provider_message_id="b7bc2f4a-e38e-4336-af7d-e6c392c2f817")
    email.refresh_from_db()
    payload = open_(email, AT)
    del payload["Metadata"]

    assert post_event(client, payload).status_code == 200

    email.refresh_from_db()
    assert email.opened_at == TIME


def test_an_event_about_an_unknown_email_is_answered_and_changes_nothing(client, email):
    payload = delivery(email, AT)
    payload["Metadata"] = {"email_key": "gift:999999:delivery"}

    assert post_event(client, payload).status_code == 200  # a 4xx would have the provider retry for days

    email.refresh_from_db()
    assert email.delivered_at is None


def test_an_unsigned_event_is_refused(client, email):
    assert post_event(client, open_(email, AT), auth="anymail-user:guess").status_code == 400
    email.refresh_from_db()
    assert email.opened_at is None


def test_events_out_of_order_each_keep_their_own_time(client, email):
    assert post_event(client, click(email, LATER)).status_code == 200
    assert post_event(client, delivery(email, AT)).status_code == 200

    email.refresh_from_db()
    assert email.delivered_at == TIME and email.clicked_at == datetime(2026, 12, 5, 8, 30, tzinfo=UTC)
