"""The "not redeemed yet" nudges (issue 16): an emailed gift still unredeemed is reminded to its recipient
GIFT_NUDGE_RECIPIENT_DAYS after delivery, and its gifter is told after GIFT_NUDGE_GIFTER_DAYS, each once, never for a
declined, redeemed, handed-over or bounced gift nor to an address that complained; and the gifter's answers on the
gift's follow-up page: send it again (once a day), change the address, or send it to me instead (the printable
certificate, same code and claim window)."""

from datetime import UTC, datetime, timedelta

import pytest
from django.core import mail
from django.urls import reverse

from accounts.tests.factories import CustomerFactory
from emails.models import Email
from gifts import nudges, services
from gifts.models import DeliveryMethod, Gift, GiftStatus
from gifts.reminders import send_reminders
from gifts.tests.factories import make_gift
from giftshop.errors import ServiceError
from giftshop.models import Event

pytestmark = pytest.mark.django_db

START = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)


@pytest.fixture
def sweep(time_machine, django_capture_on_commit_callbacks):
    def run(when):
        time_machine.move_to(when, tick=False)
        with django_capture_on_commit_callbacks(execute=True):
            return send_reminders()

    return run


@pytest.fixture
def gifter():
    return CustomerFactory(email="gifter@example.com", time_zone="Europe/Berlin")


@pytest.fixture
def gift(gifter, time_machine):
    time_machine.move_to(START, tick=False)
    gift = make_gift(gifter=gifter, recipient_email="robin@example.com", now=START, recipient_first_name="Robin")
    assert services.deliver_due_gifts() == 1
    mail.outbox.clear()
    gift.refresh_from_db()
    return gift


def sent_to(address, kind):
    subjects = {"nudge": "A reminder:", "not_redeemed": "has not been redeemed yet"}
    return [m for m in mail.outbox if m.to == [address] and subjects[kind] in m.subject]


def test_the_recipient_is_nudged_on_day_ten_and_the_gifter_on_day_fourteen_once_each(sweep, gift, gifter):
    assert sweep(START + 9 * DAY) == 0
    assert sweep(START + 10 * DAY) == 1
    assert sweep(START + 11 * DAY) == 0
    [nudge] = sent_to("robin@example.com", "nudge")
    assert nudge.subject == f"A reminder: {gifter.get_full_name()} gave you {gift.offer.title}"
    assert gift.code in nudge.body and "t=" in nudge.body and "Hi Robin," in nudge.body
    assert gift.code in nudge.alternatives[0][0] and "Redeem your gift" in nudge.alternatives[0][0]

    assert sweep(START + 13 * DAY) == 0
    assert sweep(START + 14 * DAY) == 1
    assert sweep(START + 20 * DAY) == 0

    [notice] = sent_to(gifter.email, "not_redeemed")
    page = reverse("gifts:not_redeemed", args=[gift.pk])
    assert notice.subject == f"Your gift of {gift.offer.title} has not been redeemed yet"
    assert "was sent Mon 1 Jun, 14:00 Berlin time" in notice.body  # 12:00 UTC in the gifter's zone
    assert f"{page}#resend" in notice.body and f"{page}#handover" in notice.body
    assert reverse("gifts:correct_recipient", args=[gift.pk]) in notice.body
    assert gift.code not in notice.body and gift.code not in notice.alternatives[0][0]
    assert len(mail.outbox) == 2
    assert sorted(Email.objects.filter(gift=gift, kind__in=["gift_nudge", "gift_not_redeemed"]).values_list("key")) == [
        (f"gift:{gift.pk}:not-redeemed",),
        (f"gift:{gift.pk}:nudge",),
    ]


def test_a_sweep_that_was_down_catches_up_within_the_week_not_later(sweep, gift):
    assert sweep(START + 18 * DAY) == 1  # the recipient's nudge is 8 days late: too late; the gifter's is due
    assert sent_to("robin@example.com", "nudge") == []


@pytest.mark.parametrize("fate", ["redeemed", "declined", "handover", "bounced", "complained", "withdrawn"])
def test_no_nudge_for_a_gift_that_is_not_waiting_in_an_inbox(sweep, gift, gifter, fate):
    now = START + DAY
    if fate == "redeemed":
        services.gift_redeem(customer=CustomerFactory(email="robin@example.com"), code=gift.code, now=now)
    elif fate == "declined":
        services.gift_transition(gift_ids=[gift.pk], to=GiftStatus.DECLINED, now=now, declined_at=now)
    elif fate == "withdrawn":
        actor = f"customer:{gifter.pk}"
        services.gift_transition(gift_ids=[gift.pk], to=GiftStatus.CANCELLED, now=now, actor=actor, cancelled_at=now)
    elif fate == "handover":
        nudges.gift_handover_choose(gift_id=gift.pk, actor=f"customer:{gifter.pk}", now=now)
    elif fate == "bounced":
        Email.objects.filter(gift=gift, kind=Email.Kind.GIFT_DELIVERY).update(status=Email.Status.BOUNCED)
    else:
        Email.objects.filter(gift=gift, kind=Email.Kind.GIFT_DELIVERY).update(complained_at=now)
    mail.outbox.clear()

    for day in (10, 14):
        sweep(START + day * DAY)

    assert sent_to("robin@example.com", "nudge") == [] and sent_to(gifter.email, "not_redeemed") == []


# --- the gifter's answers ----------------------------------------------------------------------------------------


def test_the_follow_up_page_offers_the_three_answers_to_its_gifter_only(client, gift, gifter):
    url = reverse("gifts:not_redeemed", args=[gift.pk])
    client.force_login(CustomerFactory())
    assert client.get(url).status_code == 404
    assert client.post(url, {"action": "resend"}).status_code == 404

    client.force_login(gifter)
    body = client.get(url).content.decode()

    assert 'id="resend"' in body and 'id="handover"' in body
    assert reverse("gifts:correct_recipient", args=[gift.pk]) in body
    assert Email.objects.filter(gift=gift, kind=Email.Kind.GIFT_DELIVERY).count() == 1


def test_the_gifter_resends_the_same_code_once_a_day(
    client, gift, gifter, time_machine, django_capture_on_commit_callbacks
):
    url = reverse("gifts:not_redeemed", args=[gift.pk])
    client.force_login(gifter)
    time_machine.move_to(START + 10 * DAY, tick=False)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url, {"action": "resend"})

    assert response.status_code == 302 and response["Location"] == f"{reverse('gifts:gifts')}#gift-{gift.pk}"
    [resent] = mail.outbox
    assert resent.to == ["robin@example.com"] and gift.code in resent.body
    assert Event.objects.filter(gift=gift, event_type="gift_resent").count() == 1

    time_machine.move_to(START + 10 * DAY + timedelta(hours=5), tick=False)
    response = client.post(url, {"action": "resend"})
    assert response.status_code == 429
    assert "you can send it again from Fri 12 Jun, 14:00 Berlin time" in response.content.decode()
    assert len(mail.outbox) == 1 and Event.objects.filter(gift=gift, event_type="gift_resent").count() == 1

    time_machine.move_to(START + 11 * DAY, tick=False)
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(url, {"action": "resend"}).status_code == 302
    assert len(mail.outbox) == 2
    assert sorted(Email.objects.filter(gift=gift, key__contains="gifter-resend").values_list("key", flat=True)) == [
        f"gift:{gift.pk}:delivery:gifter-resend:1",
        f"gift:{gift.pk}:delivery:gifter-resend:2",
    ]


def test_send_it_to_me_instead_makes_it_a_gift_to_hand_over_with_the_same_code_and_window(client, gift, gifter):
    url = reverse("gifts:not_redeemed", args=[gift.pk])
    client.force_login(gifter)
    code, window = gift.code, gift.claim_expiry_date

    assert client.post(url, {"action": "handover"}).status_code == 302
    assert client.post(url, {"action": "handover"}).status_code == 302  # a second click changes nothing more

    gift.refresh_from_db()
    assert gift.delivery_method == DeliveryMethod.HANDOVER and gift.status == GiftStatus.UNCLAIMED
    assert gift.code == code and gift.claim_expiry_date == window
    assert Event.objects.filter(gift=gift, event_type="gift_handover_chosen").count() == 1
    page = client.get(reverse("gifts:gifts")).content.decode()
    assert reverse("gifts:certificate", args=[gift.pk]) in page
    assert reverse("gifts:not_redeemed", args=[gift.pk]) not in page
    certificate = client.get(reverse("gifts:certificate", args=[gift.pk]) + "?paper=a4")
    assert certificate.status_code == 200 and certificate["Content-Type"] == "application/pdf"
    # A resend now makes no sense: the gifter holds the gift.
    response = client.post(url, {"action": "resend"})
    assert response.status_code == 409 and "print its certificate" in response.content.decode()


def test_the_answers_are_refused_for_a_redeemed_gift_and_change_nothing(client, gift, gifter):
    services.gift_redeem(customer=CustomerFactory(email="robin@example.com"), code=gift.code)
    url = reverse("gifts:not_redeemed", args=[gift.pk])
    client.force_login(gifter)

    for action in ("resend", "handover"):
        response = client.post(url, {"action": action})
        assert response.status_code == 409 and "already been redeemed" in response.content.decode()

    gift.refresh_from_db()
    assert gift.delivery_method == DeliveryMethod.EMAIL
    assert Email.objects.filter(gift=gift, kind=Email.Kind.GIFT_DELIVERY).count() == 1


def test_an_unknown_action_is_404_and_a_get_changes_nothing(client, gift, gifter):
    url = reverse("gifts:not_redeemed", args=[gift.pk])
    client.force_login(gifter)
    assert client.post(url, {"action": "refund"}).status_code == 404
    assert client.get(url).status_code == 200
    assert Gift.objects.get(pk=gift.pk).delivery_method == DeliveryMethod.EMAIL
    with pytest.raises(ServiceError):
        nudges.gift_gifter_resend(gift_id=gift.pk, actor="x", now=START)
        nudges.gift_gifter_resend(gift_id=gift.pk, actor="x", now=START)


def test_a_gift_taken_to_hand_over_gets_no_expiry_reminder_either(sweep, gift, gifter):
    Gift.objects.filter(pk=gift.pk).update(claim_expiry_date=START + 30 * DAY)
    nudges.gift_handover_choose(gift_id=gift.pk, actor=f"customer:{gifter.pk}", now=START + DAY)

    sweep(START + 23 * DAY)

    assert not Email.objects.filter(gift=gift, kind=Email.Kind.CLAIM_EXPIRING).exists()


def test_a_gifter_who_complained_is_not_told(sweep, gift, gifter):
    receipt = Email.objects.filter(gift=gift, to_email=gifter.email).first()
    Email.objects.filter(pk=receipt.pk).update(complained_at=START)

    sweep(START + 10 * DAY)
    sweep(START + 14 * DAY)

    assert len(sent_to("robin@example.com", "nudge")) == 1 and sent_to(gifter.email, "not_redeemed") == []
