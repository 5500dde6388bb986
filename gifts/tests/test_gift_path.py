"""A gift's path on its gifter's "My gifts": paid → sent → delivered → opened → redeemed as the provider's tracking
webhooks (Postmark's, through anymail) report it, or the end it came to instead (bounced, declined, withdrawn,
cancelled, expired), each step at its time in the gifter's zone; a gift its gifter withdrew says so. One page of
gifts costs the same queries however many gifts it shows."""

import re
from datetime import UTC, datetime, timedelta

import pytest
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts.tests.factories import CustomerFactory
from emails.models import Email
from emails.tests.postmark import click, delivery, open_, post_event, postmark_webhooks  # noqa: F401
from gifts import services
from gifts.models import GiftStatus
from gifts.tests.factories import make_gift

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("postmark_webhooks")]

START = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)  # 05:00 in Los Angeles
DAY = timedelta(days=1)


@pytest.fixture
def gifter():
    return CustomerFactory(email="gifter@example.com", time_zone="America/Los_Angeles")


@pytest.fixture
def sent(gifter, time_machine):
    """A gift bought and delivered at START."""
    time_machine.move_to(START, tick=False)
    gift = make_gift(gifter=gifter, recipient_email="robin@example.com", now=START)
    assert services.deliver_due_gifts() == 1
    mail.outbox.clear()
    return gift


def delivery_of(gift):
    return Email.objects.filter(gift=gift, kind=Email.Kind.GIFT_DELIVERY).latest("pk")


def path_of(client, gift):
    """The gift's steps as the page shows them: [(step, its words, when), …]."""
    body = client.get(reverse("gifts:gifts")).content.decode()
    card = body[body.index(f'id="gift-{gift.pk}"') :]
    card = card[: card.index("</ol>")]
    return re.findall(r'data-step="(\w+)"><span class="step">([^<]+)</span> <span class="when">([^<]+)</span>', card)


def test_the_path_follows_the_providers_events_in_the_gifters_zone(client, gifter, sent, time_machine):
    email = delivery_of(sent)
    assert post_event(client, delivery(email, "2026-06-01T12:00:09Z")).status_code == 200
    assert post_event(client, open_(email, "2026-06-02T16:30:00Z")).status_code == 200
    assert post_event(client, click(email, "2026-06-02T16:31:00Z")).status_code == 200
    client.force_login(gifter)

    assert path_of(client, sent) == [
        ("paid", "Paid", "Mon 1 Jun, 05:00 Los Angeles time"),
        ("sent", "Sent", "Mon 1 Jun, 05:00 Los Angeles time"),
        ("delivered", "Delivered", "Mon 1 Jun, 05:00 Los Angeles time"),
        ("opened", "Opened", "Tue 2 Jun, 09:30 Los Angeles time"),
        ("redeemed", "Redeemed", "not yet"),
    ]

    time_machine.move_to(START + 3 * DAY, tick=False)
    services.gift_redeem(customer=CustomerFactory(email="robin@example.com"), code=sent.code)

    assert path_of(client, sent)[-1] == ("redeemed", "Redeemed", "Thu 4 Jun, 05:00 Los Angeles time")


def test_a_click_without_a_reported_open_counts_as_opened_and_proves_the_delivery(client, gifter, sent):
    assert post_event(client, click(delivery_of(sent), "2026-06-02T16:31:00Z")).status_code == 200
    client.force_login(gifter)

    assert [step for step, _, _ in path_of(client, sent)] == ["paid", "sent", "opened", "redeemed"]
    assert ("opened", "Opened", "Tue 2 Jun, 09:31 Los Angeles time") in path_of(client, sent)


def test_a_bounced_gift_ends_its_path_at_the_bounce(client, gifter, sent):
    Email.objects.filter(pk=delivery_of(sent).pk).update(status=Email.Status.BOUNCED)
    client.force_login(gifter)

    assert path_of(client, sent) == [
        ("paid", "Paid", "Mon 1 Jun, 05:00 Los Angeles time"),
        ("sent", "Sent", "Mon 1 Jun, 05:00 Los Angeles time"),
        ("bounced", "Bounced", "Mon 1 Jun, 05:00 Los Angeles time"),
    ]


@pytest.mark.parametrize(
    ("to", "actor", "word"),
    [
        (GiftStatus.CANCELLED, "gifter", "Withdrawn"),
        (GiftStatus.CANCELLED, "admin:1", "Cancelled"),
        (GiftStatus.DECLINED, "customer:0", "Declined"),
    ],
)
def test_a_gift_that_ended_early_shows_how_and_when(client, gifter, sent, to, actor, word):
    actor = f"customer:{gifter.pk}" if actor == "gifter" else actor
    when = START + 2 * DAY
    stamp = {GiftStatus.CANCELLED: "cancelled_at", GiftStatus.DECLINED: "declined_at"}[to]
    assert services.gift_transition(gift_ids=[sent.pk], to=to, now=when, actor=actor, **{stamp: when})
    client.force_login(gifter)

    steps = path_of(client, sent)

    assert steps[-1] == (word.lower(), word, "Wed 3 Jun, 05:00 Los Angeles time")
    assert [step for step, _, _ in steps] == ["paid", "sent", word.lower()]
    body = client.get(reverse("gifts:gifts")).content.decode()
    assert f"<dd>{word}</dd>" in body or to == GiftStatus.DECLINED


def test_an_expired_gift_ends_at_its_expiry(client, gifter, time_machine):
    time_machine.move_to(START, tick=False)
    gift = make_gift(gifter=gifter, now=START, claim_expiry_date=START + 5 * DAY)
    services.deliver_due_gifts()
    services.expire_due_gifts(now=START + 6 * DAY)
    client.force_login(gifter)

    assert path_of(client, gift)[-1] == ("expired", "Expired", "Sun 7 Jun, 05:00 Los Angeles time")


def test_a_scheduled_gift_shows_the_steps_to_come(client, gifter, time_machine):
    time_machine.move_to(START, tick=False)
    gift = make_gift(gifter=gifter, now=START, scheduled_at=START + 10 * DAY)
    client.force_login(gifter)

    assert path_of(client, gift) == [
        ("paid", "Paid", "Mon 1 Jun, 05:00 Los Angeles time"),
        ("sent", "Sent", "not yet"),
        ("delivered", "Delivered", "not yet"),
        ("opened", "Opened", "not yet"),
        ("redeemed", "Redeemed", "not yet"),
    ]


def test_the_page_costs_the_same_queries_for_one_gift_or_many(client, gifter, sent):
    client.force_login(gifter)
    client.get(reverse("gifts:gifts"))  # the session and site settings, read once
    with CaptureQueriesContext(connection) as one:
        client.get(reverse("gifts:gifts"))
    for n in range(4):
        make_gift(gifter=gifter, recipient_email=f"friend{n}@example.com", now=START)
    services.deliver_due_gifts()

    with CaptureQueriesContext(connection) as five:
        body = client.get(reverse("gifts:gifts")).content.decode()

    assert body.count('class="gift-path"') == 5
    assert len(five.captured_queries) == len(one.captured_queries)
