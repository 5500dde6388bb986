"""The reminder sweep: the recipient hears 7 days and 1 day before a gift term ends and before an unredeemed gift
expires, the gifter hears when a gift expired unredeemed; each reminder exactly once, at the right time, however
often the sweep runs and however many workers run it at once."""

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from django.core import mail
from django.db import connection

from accounts.models import Subscription
from accounts.tests.factories import CustomerFactory, PaymentMethodFactory
from emails.models import Email
from emails.services import send_due_emails
from gifts import services, tasks
from gifts.models import GiftStatus
from gifts.reminders import send_reminders
from gifts.tests.factories import make_gift
from giftshop.celery import app as celery_app
from giftshop.models import SiteSettings
from offers.tests.factories import OfferFactory

pytestmark = pytest.mark.django_db

START = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
TERM_END = datetime(2026, 7, 1, 12, 0, tzinfo=UTC)  # a monthly gift redeemed at START
DAY = timedelta(days=1)


@pytest.fixture
def sweep(time_machine, django_capture_on_commit_callbacks):
    """Runs the sweep at `when`, and the send tasks it queues (as a worker would, after commit)."""

    def run(when):
        time_machine.move_to(when, tick=False)
        with django_capture_on_commit_callbacks(execute=True):
            return send_reminders()

    return run


def redeemed_gift(*, receiver, offer=None, gifter=None):
    """A monthly gift delivered and redeemed at START by `receiver`: a gift subscription until TERM_END."""
    gift = make_gift(gifter=gifter, offer=offer, now=START, recipient_email=receiver.email)
    services.deliver_due_gifts(now=START)
    services.gift_redeem(customer=receiver, code=gift.code, now=START)
    gift.refresh_from_db()
    assert gift.subscription.term_end == TERM_END and gift.subscription.origin == Subscription.Origin.GIFT
    return gift


def delivered_gift(*, claim_expiry_date, recipient_email="friend@example.com", gifter=None):
    gift = make_gift(gifter=gifter, now=START, recipient_email=recipient_email, claim_expiry_date=claim_expiry_date)
    services.deliver_due_gifts(now=START)
    gift.refresh_from_db()
    assert gift.status == GiftStatus.UNCLAIMED
    return gift


def sent_to(address):
    return [message for message in mail.outbox if message.to == [address]]


def keys(prefix):
    return sorted(Email.objects.filter(key__startswith=prefix).values_list("key", flat=True))


# --- the gift term -------------------------------------------------------------------------------------------


def test_it_reminds_the_recipient_a_week_and_a_day_before_the_gift_term_ends_once_each(sweep):
    receiver = CustomerFactory(email="receiver@example.com", time_zone="Europe/Berlin")
    gift = redeemed_gift(receiver=receiver)
    sub = gift.subscription
    mail.outbox.clear()
    prefix = f"subscription:{sub.pk}:term-end:2026-07-01:"

    assert sweep(TERM_END - 8 * DAY) == 0
    assert sweep(TERM_END - 7 * DAY) == 1
    assert sweep(TERM_END - 3 * DAY) == 0
    assert keys(prefix) == [f"{prefix}7d"]
    assert sweep(TERM_END - DAY) == 1
    assert sweep(TERM_END - DAY / 2) == 0
    assert sweep(TERM_END + DAY) == 0

    assert keys(prefix) == [f"{prefix}1d", f"{prefix}7d"]
    week, day = sent_to(receiver.email)
    for message in (week, day):
        assert message.subject == f"Your {gift.offer.title} gift subscription ends on 1 July"
        assert "ends on 1 July 2026, 14:00 (Europe/Berlin)" in message.body  # 12:00 UTC in the receiver's zone
        assert "add a payment method: http://" in message.body and "/account/payment-methods/" in message.body
        assert "/account/payment-methods/" in message.alternatives[0][0]
        assert "charged" not in message.body
    assert mail.outbox == [week, day]


def test_it_tells_a_recipient_with_a_card_what_they_will_be_charged_and_when(sweep):
    receiver = CustomerFactory(email="receiver@example.com")
    PaymentMethodFactory(customer=receiver, is_default=True)
    redeemed_gift(receiver=receiver, offer=OfferFactory(price="12.50", currency="EUR"))
    mail.outbox.clear()

    sweep(TERM_END - 7 * DAY)

    [message] = sent_to(receiver.email)
    assert "you will be charged €12.50 on 1 July 2026" in message.body
    assert "add a payment method" not in message.body


def test_it_tells_a_recipient_whose_gift_does_not_renew_that_access_simply_ends(sweep):
    receiver = CustomerFactory(email="receiver@example.com")
    PaymentMethodFactory(customer=receiver, is_default=True)
    sub = redeemed_gift(receiver=receiver).subscription
    Subscription.objects.filter(pk=sub.pk).update(status=Subscription.Status.NON_RENEWING, auto_renew=False)
    mail.outbox.clear()

    sweep(TERM_END - 7 * DAY)

    [message] = sent_to(receiver.email)
    assert "Your access ends then; it does not renew." in message.body
    assert "charged" not in message.body and "add a payment method" not in message.body


def test_a_sweep_that_was_down_all_week_sends_only_the_one_day_reminder(sweep):
    receiver = CustomerFactory(email="receiver@example.com")
    sub = redeemed_gift(receiver=receiver).subscription
    mail.outbox.clear()

    assert sweep(TERM_END - timedelta(hours=20)) == 1
    assert sweep(TERM_END - timedelta(hours=19)) == 0

    assert keys(f"subscription:{sub.pk}:") == [f"subscription:{sub.pk}:term-end:2026-07-01:1d"]
    assert len(sent_to(receiver.email)) == 1


def test_it_reminds_no_one_of_a_subscription_that_is_not_a_gift_or_already_ended(sweep):
    receiver = CustomerFactory(email="receiver@example.com")
    sub = redeemed_gift(receiver=receiver).subscription
    mail.outbox.clear()
    Subscription.objects.filter(pk=sub.pk).update(status=Subscription.Status.CANCELLED, cancelled_at=START)

    assert sweep(TERM_END - 7 * DAY) == 0

    Subscription.objects.filter(pk=sub.pk).update(status=Subscription.Status.ACTIVE, origin="purchase")
    assert sweep(TERM_END - DAY) == 0
    assert mail.outbox == []


# --- the unredeemed gift's claim expiry ---------------------------------------------------------------------


def test_it_reminds_the_recipient_a_week_and_a_day_before_the_code_expires_with_the_code_and_link(sweep):
    expiry = START + 30 * DAY
    gift = delivered_gift(claim_expiry_date=expiry)
    mail.outbox.clear()

    assert sweep(expiry - 8 * DAY) == 0
    assert sweep(expiry - 7 * DAY) == 1
    assert sweep(expiry - 2 * DAY) == 0
    assert sweep(expiry - DAY) == 1
    assert sweep(expiry - timedelta(minutes=1)) == 0

    assert keys(f"gift:{gift.pk}:claim-expiry") == [
        f"gift:{gift.pk}:claim-expiry:1d",
        f"gift:{gift.pk}:claim-expiry:7d",
    ]
    week, day = sent_to("friend@example.com")
    for message in (week, day):
        assert message.subject == f"Your gift of {gift.offer.title} expires on 1 July: redeem it now"
        assert gift.code in message.body and f"/redeem/?giftCode={gift.code}" in message.body
        assert gift.code in message.alternatives[0][0]
        assert "1 July 2026, 12:00 (UTC)" in message.body


@pytest.mark.parametrize("when", ["redeemed", "expired", "never expires", "bounced"])
def test_it_does_not_remind_a_recipient_who_cannot_or_need_not_redeem(sweep, when):
    expiry = START + 30 * DAY
    if when == "never expires":
        gift = make_gift(now=START, no_expiry=True)
        services.deliver_due_gifts(now=START)
    else:
        gift = delivered_gift(claim_expiry_date=expiry)
    if when == "redeemed":
        services.gift_redeem(customer=CustomerFactory(), code=gift.code, now=START + DAY)
    if when == "bounced":
        Email.objects.filter(gift=gift, kind=Email.Kind.GIFT_DELIVERY).update(status=Email.Status.BOUNCED)
    mail.outbox.clear()

    # "expired": the sweeps were down until after the expiry date; a reminder then would be too late.
    moments = [expiry + DAY] if when == "expired" else [expiry - 7 * DAY, expiry - DAY]
    for moment in moments:
        sweep(moment)

    assert keys(f"gift:{gift.pk}:claim-expiry") == []
    assert [m for m in mail.outbox if "expires on" in m.subject] == []


# --- the gift that expired unredeemed ----------------------------------------------------------------------


def test_it_tells_the_gifter_once_that_their_gift_expired_unredeemed_with_a_link_to_it(sweep):
    gifter = CustomerFactory(email="gifter@example.com")
    expiry = START + 30 * DAY
    gift = delivered_gift(claim_expiry_date=expiry, gifter=gifter, recipient_email="typo@exmaple.com")
    sweep(expiry - DAY)  # the 1-day reminder to the recipient
    mail.outbox.clear()

    assert sweep(expiry + timedelta(minutes=5)) == 0  # not expired yet: the expiry sweep has not run
    assert services.expire_due_gifts(now=expiry + timedelta(minutes=5)) == 1
    assert sweep(expiry + timedelta(minutes=6)) == 1
    assert sweep(expiry + 2 * DAY) == 0

    [message] = mail.outbox
    assert message.to == [gifter.email] and message.subject == "Your gift expired unredeemed"
    assert f"{gift.offer.title} to typo@exmaple.com expired on 1 July 2026" in message.body
    assert f"/account/gifts/#gift-{gift.pk}" in message.body
    assert gift.code not in message.body
    assert keys(f"gift:{gift.pk}:expired") == [f"gift:{gift.pk}:expired"]


def test_it_does_not_tell_gifters_about_gifts_that_expired_long_ago(sweep):
    expiry = START + 30 * DAY
    gift = delivered_gift(claim_expiry_date=expiry)
    services.expire_due_gifts(now=expiry)
    mail.outbox.clear()

    assert sweep(expiry + 8 * DAY) == 0

    assert keys(f"gift:{gift.pk}:expired") == [] and mail.outbox == []


# --- exactly once ----------------------------------------------------------------------------------------------


def everything_due():
    """One of each reminder due at START + 23 days: a term end and a claim expiry in 7 days, and an expired gift."""
    redeemed_gift(receiver=CustomerFactory(email="receiver@example.com"))
    delivered_gift(claim_expiry_date=TERM_END, recipient_email="friend@example.com")
    expired = delivered_gift(claim_expiry_date=START + 22 * DAY, recipient_email="late@example.com")
    services.expire_due_gifts(now=START + 22 * DAY)
    expired.refresh_from_db()
    assert expired.status == GiftStatus.EXPIRED
    mail.outbox.clear()
    return TERM_END - 7 * DAY


def reminder_keys():
    kinds = [Email.Kind.TERM_ENDING, Email.Kind.CLAIM_EXPIRING, Email.Kind.GIFT_EXPIRED]
    return sorted(Email.objects.filter(kind__in=kinds).values_list("key", flat=True))


def test_every_reminder_is_sent_once_when_the_sweep_runs_twice(sweep):
    when = everything_due()

    assert sweep(when) == 3
    assert sweep(when) == 0
    send_due_emails(now=when + DAY)

    assert len(reminder_keys()) == 3
    assert len(mail.outbox) == 3 and len({tuple(m.to) for m in mail.outbox}) == 3


def test_the_beat_task_runs_the_sweep(time_machine, django_capture_on_commit_callbacks):
    when = everything_due()
    time_machine.move_to(when, tick=False)

    with django_capture_on_commit_callbacks(execute=True):
        tasks.send_reminders.delay()

    assert len(reminder_keys()) == 3 and len(mail.outbox) == 3


@pytest.mark.django_db(transaction=True)
def test_every_reminder_is_sent_once_when_two_workers_sweep_at_once():
    SiteSettings.load()
    when = everything_due()
    barrier = threading.Barrier(2)

    def worker():
        # A new thread's Celery "current app" is a bare default one; the worker's is ours (eager in tests).
        celery_app.set_current()
        try:
            barrier.wait(timeout=30)
            return send_reminders(now=when)
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=2) as pool:
        counts = list(pool.map(lambda _: worker(), range(2)))

    assert 3 <= sum(counts) <= 6, counts  # each worker counts what it found to queue; the rows decide
    assert len(reminder_keys()) == 3
    # The outbox sweep sends whatever a lost publish left pending (a worker's own send tasks normally did).
    send_due_emails()
    assert Email.objects.filter(key__in=reminder_keys(), status=Email.Status.SENT).count() == 3
    sent_keys = [m.extra_headers["X-Giftshop-Email-Key"] for m in mail.outbox]
    assert sorted(key for key in sent_keys if key in reminder_keys()) == reminder_keys()
