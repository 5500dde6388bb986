"""The gifts' metrics: a real delivery (beat's sweep, the send task, the locmem provider) moves the counters that
/metrics shows and records how late it went out; failed gift codes are counted by channel and reason; the global
budget's state is read at the scrape."""

from datetime import UTC, datetime, timedelta

import pytest
from rest_framework.test import APIClient

from accounts.tests.factories import CustomerFactory
from emails.models import Email
from gifts import services
from gifts.tests.factories import GiftFactory, make_gift
from giftshop import ratelimit
from giftshop.mediastore import issue_jwt
from giftshop.tests.test_metrics import scrape, value

pytestmark = pytest.mark.django_db

START = datetime(2026, 12, 25, 9, 0, tzinfo=UTC)
TOKEN = "metrics-test-token-0123456789"


@pytest.fixture
def token(settings):
    settings.METRICS_TOKEN = TOKEN
    return {"HTTP_AUTHORIZATION": f"Bearer {TOKEN}"}


def test_a_delivery_moves_the_counters_and_records_how_late_it_went_out(
    client, token, time_machine, django_capture_on_commit_callbacks
):
    time_machine.move_to(START, tick=False)
    gift = GiftFactory(recipient_email="friend@example.com", scheduled_at=START)
    before = scrape(client, token)
    assert value(before, "giftshop_gifts", status="scheduled") == 1

    time_machine.move_to(START + timedelta(seconds=45), tick=False)  # beat's sweep runs 45 s after the delivery time
    with django_capture_on_commit_callbacks(execute=True):
        assert services.delivery_sweep() == 1  # hands the emails to a send task, run here
    assert Email.objects.get(gift=gift, kind=Email.Kind.GIFT_DELIVERY).status == Email.Status.SENT
    after = scrape(client, token)

    def moved(name, **labels):
        return (value(after, name, **labels) or 0) - (value(before, name, **labels) or 0)

    assert moved("giftshop_emails_sent_total", provider="locmem", kind="gift_delivery") == 1
    assert moved("giftshop_emails_sent_total", provider="locmem", kind="gift_delivered") == 1  # the gifter's notice
    assert moved("giftshop_gift_delivery_lateness_seconds_count", provider="locmem") == 1
    assert moved("giftshop_gift_delivery_lateness_seconds_sum", provider="locmem") == 45
    assert moved("giftshop_gift_delivery_lateness_seconds_bucket", provider="locmem", le="30.0") == 0
    assert moved("giftshop_gift_delivery_lateness_seconds_bucket", provider="locmem", le="60.0") == 1
    assert moved("giftshop_email_provider_request_seconds_count", provider="locmem", outcome="ok") == 2
    assert value(after, "giftshop_gifts", status="scheduled") == 0
    assert value(after, "giftshop_gifts", status="unclaimed") == 1


def test_a_resend_to_a_corrected_address_is_not_counted_as_a_late_delivery(
    client, token, time_machine, django_capture_on_commit_callbacks
):
    time_machine.move_to(START, tick=False)
    gift = make_gift(now=START)
    with django_capture_on_commit_callbacks(execute=True):
        services.deliver_due_gifts()
    before = scrape(client, token)
    time_machine.move_to(START + timedelta(days=3), tick=False)
    with django_capture_on_commit_callbacks(execute=True):
        services.gift_resend(gift_id=gift.pk, actor="support")
    after = scrape(client, token)

    assert value(after, "giftshop_emails_sent_total", provider="locmem", kind="gift_delivery") == (
        value(before, "giftshop_emails_sent_total", provider="locmem", kind="gift_delivery") + 1
    )
    count = "giftshop_gift_delivery_lateness_seconds_count"
    assert value(after, count, provider="locmem") == value(before, count, provider="locmem")


def test_failed_gift_codes_are_counted_by_channel_and_reason(client, token, settings):
    settings.GIFT_CODE_ATTEMPT_LIMIT = 2
    api = APIClient(REMOTE_ADDR="203.0.113.7")
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {issue_jwt(CustomerFactory())}")
    before = scrape(client, token)

    statuses = [api.get(f"/mediastore/gifts/verification/ZZZZ-000{n}").status_code for n in range(3)]
    assert statuses == [404, 404, 429]
    gift = make_gift()
    services.deliver_due_gifts(send=False)
    gift.refresh_from_db()
    wrong_link = APIClient(REMOTE_ADDR="203.0.113.8")
    wrong_link.credentials(HTTP_AUTHORIZATION=f"Bearer {issue_jwt(CustomerFactory())}")
    assert wrong_link.get(f"/mediastore/gifts/verification/{gift.pk}.{'A' * 22}").status_code == 404
    after = scrape(client, token)

    def moved(**labels):
        name = "giftshop_gift_code_failures_total"
        return (value(after, name, **labels) or 0) - (value(before, name, **labels) or 0)

    assert moved(channel="typed", reason="wrong") == 2
    assert moved(channel="typed", reason="limited") == 1
    assert moved(channel="link", reason="wrong") == 1
    assert value(after, "giftshop_gift_code_global_failures") == 2  # links do not spend the global budget


def test_the_global_budgets_pause_shows_at_the_scrape(client, token, settings, time_machine):
    time_machine.move_to(START, tick=False)
    settings.GIFT_CODE_GLOBAL_FAILURE_LIMIT, settings.GIFT_CODE_PAUSE_SECONDS = 3, 3600
    for _ in range(4):
        ratelimit.record_failure("gift-code")
    text = scrape(client, token)

    assert value(text, "giftshop_gift_code_global_failures") == 4
    assert value(text, "giftshop_gift_code_global_budget") == 3
    assert value(text, "giftshop_gift_code_paused_seconds") == 3600
    assert value(text, "giftshop_gifts", status="scheduled") == 0
