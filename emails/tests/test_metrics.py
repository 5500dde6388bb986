"""The outbox's counters move when the provider accepts, refuses or throttles an email, and each request to it is
timed, by provider (the fakes of email_backends are the provider here)."""

from datetime import UTC, datetime

import pytest
from prometheus_client import REGISTRY

from emails import metrics, throttle
from emails.models import Email
from emails.tests.email_backends import FlakyBackend, RecordingBackend, RefusingBackend, provider_error
from gifts import services
from gifts.tests.factories import GiftFactory

pytestmark = pytest.mark.django_db

START = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
RECIPIENT = "friend@example.com"


def sample(name, **labels):
    return REGISTRY.get_sample_value(name, labels) or 0


class Counts:
    """The outbox's counters for the configured provider, read now; `moved()` tells what changed since."""

    def __init__(self, kind="gift_delivery"):
        self.provider, self.kind = metrics.provider(), kind
        self.before = self.read()

    def read(self):
        provider, kind = self.provider, self.kind
        return {
            "sent": sample("giftshop_emails_sent_total", provider=provider, kind=kind),
            "retry": sample("giftshop_email_failures_total", provider=provider, kind=kind, outcome="retry"),
            "failed": sample("giftshop_email_failures_total", provider=provider, kind=kind, outcome="failed"),
            "throttled": sample("giftshop_email_throttled_total", provider=provider),
            "requests ok": sample("giftshop_email_provider_request_seconds_count", provider=provider, outcome="ok"),
            "requests error": sample(
                "giftshop_email_provider_request_seconds_count", provider=provider, outcome="error"
            ),
            "requests throttled": sample(
                "giftshop_email_provider_request_seconds_count", provider=provider, outcome="throttled"
            ),
        }

    def moved(self):
        return {name: now - self.before[name] for name, now in self.read().items() if now != self.before[name]}


def use(settings, backend, **setup):
    settings.EMAIL_BACKEND = f"{backend.__module__}.{backend.__name__}"
    backend.reset(**setup)


def deliver_a_gift(time_machine):
    time_machine.move_to(START, tick=False)
    gift = GiftFactory(recipient_email=RECIPIENT, scheduled_at=START)
    assert services.deliver_due_gifts() == 1
    return Email.objects.get(gift=gift, kind=Email.Kind.GIFT_DELIVERY)


def test_the_provider_label_is_the_backends_name(settings):
    settings.EMAIL_BACKEND = "anymail.backends.postmark.EmailBackend"
    assert metrics.provider() == "postmark"
    settings.EMAIL_BACKEND = "emails.backends.PostmarkBatchBackend"
    assert metrics.provider() == "postmark"
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    assert metrics.provider() == "locmem"


def test_an_accepted_email_counts_as_sent_and_its_request_is_timed(settings, time_machine):
    use(settings, RecordingBackend)
    counts = Counts()
    assert deliver_a_gift(time_machine).status == Email.Status.SENT
    # Two requests: the recipient's email, then (once it is accepted) the gifter's notice, of another kind.
    assert counts.moved() == {"sent": 1, "requests ok": 2}


def test_a_transient_error_counts_as_a_failure_to_retry(settings, time_machine):
    use(settings, FlakyBackend, failures=1)
    counts = Counts()
    assert deliver_a_gift(time_machine).status == Email.Status.PENDING
    assert counts.moved() == {"retry": 1, "requests error": 1}


def test_a_refused_recipient_counts_as_failed_for_good(settings, time_machine):
    use(settings, RefusingBackend, refused={RECIPIENT})
    counts = Counts()
    assert deliver_a_gift(time_machine).status == Email.Status.FAILED
    assert counts.moved() == {"failed": 1, "requests error": 1}


class ThrottlingOnceBackend(RecordingBackend):
    """Answers each message's first request "429 Too many requests" (Retry-After: 0.05 s), then accepts it."""

    def error_for(self, message, attempt):
        if attempt == 1:
            error = provider_error(429, "Too many requests")
            error.response.headers["Retry-After"] = "0.05"
            return error
        return None


def test_a_throttled_request_counts_as_throttled_and_the_email_still_goes(settings, time_machine):
    use(settings, ThrottlingOnceBackend)
    throttle._schedules.clear()  # a pause of an earlier test's provider is not this one's
    counts = Counts()
    assert deliver_a_gift(time_machine).status == Email.Status.SENT
    # The recipient's email and the gifter's notice: each throttled once, then accepted.
    assert counts.moved() == {"sent": 1, "throttled": 2, "requests throttled": 2, "requests ok": 2}
