"""Issue 16, "Change your mind": the recipient says "No thanks" (the delivery email's link, the redeem page once the
code is verified, the storefront API), after a page that asks first (a GET never declines); the gifter is told, with
a refund inside the refund window or "send it to someone else" (same code, a fresh claim window, the delivery email
again). A repeat answers the same; a redeem racing a decline lets exactly one through; what cannot be declined or sent
elsewhere is refused with the reason and nothing changes; a declined gift still expires when its window ends."""

import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core import mail
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.tests.factories import CustomerFactory
from billing import gift_sales
from billing.models import Payment
from billing.tests.test_gift_withdraw import buy
from emails.models import Email
from gifts import reminders, services
from gifts.models import Gift, GiftStatus, GiftTimeline
from gifts.tests.factories import GuestFactory, make_gift
from gifts.tests.merchant import MerchantClient, gifter_with_card, new_api_key
from gifts.tests.test_merchant_races import ROUNDS, at_once, unclaimed_gift
from gifts.verification import RedeemRefused, RefusalReason, Verification
from giftshop.errors import ServiceError
from giftshop.models import Event, SiteSettings
from giftshop.tests.mediastore import assert_error, client_for, data_of
from offers.tests.factories import OfferFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2031, 3, 2, 9, 0, tzinfo=UTC)
DECLINED = "This gift was declined, so it can no longer be redeemed."


@pytest.fixture
def clock():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


def delivered(**fields):
    gifter = fields.pop("gifter", None) or GuestFactory(first_name="Ana", last_name="Lima")
    offer = fields.pop("offer", None) or OfferFactory(title="Premium monthly", period="month")
    gift = make_gift(gifter=gifter, offer=offer, personal_note="Happy birthday, Peter!", **fields)
    services.deliver_due_gifts(send=False)
    gift.refresh_from_db()
    assert gift.status == GiftStatus.UNCLAIMED
    return gift


def decline_url(gift):
    return f"{reverse('gifts:decline')}?t={gift.link_token}"


def declined_events(gift):
    return Event.objects.filter(gift=gift, event_type="gift_declined")


def notices(gift):
    return Email.objects.filter(gift=gift, kind=Email.Kind.GIFT_DECLINED)


def assert_unchanged(gift, status):
    gift.refresh_from_db()
    assert gift.status == status and gift.declined_at is None
    assert not declined_events(gift).exists() and not notices(gift).exists()


# --- the recipient declines -------------------------------------------------------------------------------------------


def test_it_puts_a_no_thanks_link_in_the_delivery_email():
    make_gift(gifter=GuestFactory(first_name="Ana", last_name="Lima"), recipient_email="peter@example.com")
    services.deliver_due_gifts()

    (delivery,) = [message for message in mail.outbox if message.to == ["peter@example.com"]]
    gift = Gift.objects.get()
    link = f"/redeem/decline/?t={gift.link_token}"
    assert link in delivery.body and "No thanks" in delivery.alternatives[0][0] and link in delivery.alternatives[0][0]


def test_it_asks_first_from_the_emailed_link_and_declines_only_on_the_post(client, clock):
    gift = delivered()

    for _ in range(3):  # mail scanners open links: nothing changes
        page = client.get(decline_url(gift))
        assert page.status_code == 200
        assert "Yes, decline the gift" in page.content.decode() and "Premium monthly" in page.content.decode()
    assert_unchanged(gift, GiftStatus.UNCLAIMED)

    answer = client.post(reverse("gifts:decline"), {"t": gift.link_token, "action": "decline"})

    assert answer.status_code == 302 and answer.url == decline_url(gift)
    gift.refresh_from_db()
    assert (gift.status, gift.declined_at) == (GiftStatus.DECLINED, NOW)
    assert GiftTimeline.objects.get(gift=gift, status=GiftStatus.DECLINED).actor == "recipient"
    assert declined_events(gift).count() == 1
    assert notices(gift).get().to_email == gift.gifter.email
    shown = client.get(answer.url).content.decode()
    assert "Gift declined" in shown and "We've let them know" in shown


def test_it_declines_a_typed_code_once_the_redeem_page_verified_it(client, clock):
    gift = delivered()
    unverified = client.get(reverse("gifts:decline"), {"giftCode": gift.code})
    assert unverified.status_code == 302 and unverified.url.startswith(reverse("gifts:redeem"))

    client.post(reverse("gifts:redeem"), {"code": gift.code, "action": "verify"})
    page = client.get(reverse("gifts:redeem"), {"giftCode": gift.code}).content.decode()
    assert "No thanks" in page
    asked = client.get(reverse("gifts:decline"), {"giftCode": gift.code})
    assert asked.status_code == 200 and "Yes, decline the gift" in asked.content.decode()
    client.post(reverse("gifts:decline"), {"code": gift.code, "action": "decline"})

    gift.refresh_from_db()
    assert gift.status == GiftStatus.DECLINED


def test_a_logged_in_recipient_is_the_declines_actor(client, clock):
    gift = delivered()
    peter = CustomerFactory(email="peter@example.com")
    client.force_login(peter)

    client.post(reverse("gifts:decline"), {"t": gift.link_token})

    assert GiftTimeline.objects.get(gift=gift, status=GiftStatus.DECLINED).actor == f"customer:{peter.pk}"


def test_a_repeat_answers_the_same_and_tells_the_gifter_once(client, clock):
    gift = delivered()

    first = client.post(reverse("gifts:decline"), {"t": gift.link_token})
    clock.shift(timedelta(minutes=5))
    second = client.post(reverse("gifts:decline"), {"t": gift.link_token})
    api = client_for(CustomerFactory())
    third = data_of(api.post(f"/mediastore/gifts/decline/{gift.link_token}"))

    assert first.status_code == second.status_code == 302
    assert third == {"declined": True, "declinedAt": int(NOW.timestamp()), "offerId": gift.offer.long_id}
    gift.refresh_from_db()
    assert gift.declined_at == NOW
    assert declined_events(gift).count() == 1 and notices(gift).count() == 1
    assert GiftTimeline.objects.filter(gift=gift, status=GiftStatus.DECLINED).count() == 1


def test_the_storefront_api_declines_by_code_and_then_says_declined(clock):
    gift = delivered()
    recipient = client_for(CustomerFactory(email="peter@example.com"))

    declined = data_of(recipient.post(f"/mediastore/gifts/decline/{gift.code.lower()}"))
    verified = data_of(recipient.get(f"/mediastore/gifts/verification/{gift.code}"))
    redeemed = assert_error(recipient.post(f"/mediastore/gifts/redeem/{gift.code}"), 409)

    assert declined["declined"] is True
    assert (verified["redeemable"], verified["redeemRefusalReason"]) == (False, RefusalReason.DECLINED)
    assert redeemed["errors"] == [DECLINED]
    assert redeemed["responseData"]["redeemRefusalReason"] == RefusalReason.DECLINED


def test_the_redeem_page_then_says_the_gift_was_declined(client, clock):
    gift = delivered()
    services.gift_decline(code=gift.code)

    page = client.get(reverse("gifts:redeem"), {"giftCode": gift.code, "t": gift.link_token})

    assert page.status_code == 409 and DECLINED in page.content.decode()
    assert "No thanks" not in page.content.decode()


def test_the_api_needs_a_login_and_counts_unknown_codes_as_guesses(clock):
    assert_error(APIClient().post("/mediastore/gifts/decline/ABCD-EFGH"), 401)
    client = client_for(CustomerFactory())
    assert_error(client.post("/mediastore/gifts/decline/ABCD-EFGH"), 404)
    assert_error(client.post("/mediastore/gifts/decline/not-a-code!"), 400)


@pytest.mark.parametrize(
    ("ending", "status", "reason"),
    [
        ("redeemed", GiftStatus.CLAIMED, "This gift has already been redeemed, so it can no longer be declined."),
        ("window", GiftStatus.UNCLAIMED, "This gift has expired, so there is nothing to decline."),
        ("cancelled", GiftStatus.CANCELLED, "This gift has been cancelled, so there is nothing to decline."),
        ("scheduled", GiftStatus.SCHEDULED, "This gift has not been delivered yet, so it cannot be declined."),
    ],
)
def test_what_cannot_be_declined_is_refused_with_the_reason_and_nothing_changes(client, clock, ending, status, reason):
    gift = make_gift(scheduled_at=NOW + timedelta(days=3)) if ending == "scheduled" else delivered()
    if ending == "redeemed":
        services.gift_redeem(customer=CustomerFactory(email="peter@example.com"), code=gift.code)
    elif ending == "window":
        clock.move_to(gift.claim_expiry_date)
    elif ending == "cancelled":
        gift_sales.gift_cancel(gift_id=gift.pk, actor="admin:support@example.com")
    api = client_for(CustomerFactory())

    refused = assert_error(api.post(f"/mediastore/gifts/decline/{gift.code}"), 409)
    page = client.post(reverse("gifts:decline"), {"t": gift.link_token})
    with pytest.raises(ServiceError) as by_service:
        services.gift_decline(code=gift.code)

    assert refused["errors"] == [reason]
    assert page.status_code == 409 and reason.replace("'", "&#x27;") in page.content.decode()
    assert (by_service.value.status, by_service.value.code) == (409, "gift_not_declinable")
    assert_unchanged(gift, status)


def test_a_handed_over_gift_can_be_declined_by_whoever_holds_the_certificate(client, clock):
    gift = make_gift(recipient_email="", recipient_first_name="Peter", delivery_method="handover")
    assert gift.status == GiftStatus.UNCLAIMED

    client.post(reverse("gifts:decline"), {"t": gift.link_token})

    gift.refresh_from_db()
    assert gift.status == GiftStatus.DECLINED and notices(gift).count() == 1


# --- the gifter is told -----------------------------------------------------------------------------------------------


def test_the_gifter_is_emailed_a_refund_until_the_window_ends_and_send_it_elsewhere(
    clock, django_capture_on_commit_callbacks
):
    gift = buy(delivered=True)
    with django_capture_on_commit_callbacks(execute=True):
        services.gift_decline(code=gift.code)

    (notice,) = [
        message for message in mail.outbox if message.to == [gift.gifter.email] and "no thanks" in message.subject
    ]
    assert notice.subject == "peter@example.com said no thanks to your gift"
    assert f"/account/gifts/{gift.pk}/send-elsewhere/" in notice.body
    assert f"/account/gifts/{gift.pk}/withdraw/" in notice.body
    assert "until Sun 16 Mar, 05:00 New York time" in notice.body
    assert gift.code not in notice.body and gift.code not in notice.alternatives[0][0]


def test_past_the_refund_window_the_gifter_is_offered_only_to_send_it_elsewhere(
    clock, django_capture_on_commit_callbacks
):
    gift = buy(delivered=True)
    clock.shift(timedelta(days=15))
    with django_capture_on_commit_callbacks(execute=True):
        services.gift_decline(code=gift.code)

    (notice,) = [message for message in mail.outbox if "no thanks" in message.subject]
    assert "/send-elsewhere/" in notice.body and "/withdraw/" not in notice.body


# --- the gifter sends it to someone else ------------------------------------------------------------------------------


def test_the_gifter_sends_a_declined_gift_to_someone_else_from_my_gifts(client, clock):
    gift = delivered()
    services.gift_decline(code=gift.code)
    code, old_expiry = gift.code, gift.claim_expiry_date
    clock.shift(timedelta(days=20))
    client.force_login(gift.gifter)

    listed = client.get(reverse("gifts:gifts")).content.decode()
    assert "said no thanks" in listed and reverse("gifts:send_elsewhere", args=[gift.pk]) in listed
    form = client.get(reverse("gifts:send_elsewhere", args=[gift.pk]))
    assert form.status_code == 200 and "Happy birthday, Peter!" in form.content.decode()
    answer = client.post(
        reverse("gifts:send_elsewhere", args=[gift.pk]),
        {
            "recipient_email": "Maria@example.com",
            "recipient_email_again": "maria@example.com",
            "recipient_first_name": "Maria",
            "personal_note": "For you, Maria.",
        },
    )

    assert answer.status_code == 302 and answer.url == reverse("gifts:gifts")
    gift.refresh_from_db()
    sent = NOW + timedelta(days=20)
    assert (gift.status, gift.recipient_email, gift.recipient_first_name) == ("unclaimed", "maria@example.com", "Maria")
    assert (gift.personal_note, gift.sent_at, gift.declined_at) == ("For you, Maria.", sent, None)
    assert gift.code == code
    days = SiteSettings.load().default_claim_expiry_days
    assert gift.claim_expiry_date == sent + timedelta(days=days) and gift.claim_expiry_date > old_expiry
    email = Email.objects.get(gift=gift, key=f"gift:{gift.pk}:delivery:resend:1")
    assert (email.kind, email.to_email) == (Email.Kind.GIFT_DELIVERY, "maria@example.com")
    assert Event.objects.filter(gift=gift, event_type="gift_sent_elsewhere").count() == 1
    actors = list(GiftTimeline.objects.filter(gift=gift).values_list("status", "actor"))
    assert actors[-2:] == [("declined", "recipient"), ("unclaimed", f"customer:{gift.gifter_id}")]
    maria = CustomerFactory(email="maria@example.com")
    assert isinstance(services.gift_redeem(customer=maria, code=code), Verification)


def test_a_gift_sent_elsewhere_can_be_declined_again_and_the_gifter_told_again(clock):
    gift = delivered()
    services.gift_decline(code=gift.code)
    services.gift_send_elsewhere(gift_id=gift.pk, gifter=gift.gifter, recipient_email="maria@example.com")
    services.gift_decline(code=gift.code)

    assert sorted(notices(gift).values_list("key", flat=True)) == [
        f"gift:{gift.pk}:declined:1",
        f"gift:{gift.pk}:declined:2",
    ]


def test_the_storefront_api_sends_it_elsewhere_for_its_gifter_only(clock):
    gift = delivered()
    services.gift_decline(code=gift.code)
    gifter, stranger = client_for(gift.gifter), client_for(CustomerFactory())
    url = f"/mediastore/gifts/{gift.pk}/send-to"

    assert_error(stranger.post(url, {"recipientEmail": "maria@example.com"}, format="json"), 404)
    assert_error(gifter.post(url, {}, format="json"), 422, "REQ0001")
    same = assert_error(gifter.post(url, {"recipientEmail": "FRIEND@example.com"}, format="json"), 422)
    assert same["errors"] == ["friend@example.com declined this gift: send it to someone else."]
    assert same["responseData"] == {"field": "recipientEmail"}
    shown = data_of(gifter.get(f"/mediastore/gifts/{gift.pk}"))
    assert (shown["status"], shown["declinedAt"]) == ("declined", int(NOW.timestamp()))

    sent = data_of(gifter.post(url, {"recipientEmail": "maria@example.com", "firstName": "Maria"}, format="json"))

    assert (sent["status"], sent["declinedAt"], sent["code"]) == ("unclaimed", None, gift.code)
    assert sent["deliveryDetails"]["recipientEmail"] == "maria@example.com"
    assert sent["deliveryDetails"]["personalNote"] == "Happy birthday, Peter!"  # absent: kept
    again = assert_error(gifter.post(url, {"recipientEmail": "jo@example.com"}, format="json"), 409)
    assert again["errors"] == ["The gift is sent, not redeemed; only a declined gift can be sent to someone else."]


def test_sending_elsewhere_is_refused_for_others_and_for_what_is_not_declined(client, clock):
    gift = delivered()
    client.force_login(CustomerFactory())
    assert client.get(reverse("gifts:send_elsewhere", args=[gift.pk])).status_code == 404
    client.force_login(gift.gifter)
    form = {"recipient_email": "maria@example.com", "recipient_email_again": "maria@example.com"}

    page = client.post(reverse("gifts:send_elsewhere", args=[gift.pk]), form)

    assert page.status_code == 409 and "only a declined gift can be sent" in page.content.decode()
    gift.refresh_from_db()
    assert (gift.status, gift.recipient_email) == (GiftStatus.UNCLAIMED, "friend@example.com")
    assert not Email.objects.filter(gift=gift, key__contains="resend").exists()


def test_a_declined_gift_past_its_window_cannot_be_sent_elsewhere(clock):
    gift = delivered()
    services.gift_decline(code=gift.code)
    clock.move_to(gift.claim_expiry_date)

    with pytest.raises(ServiceError) as refused:
        services.gift_send_elsewhere(gift_id=gift.pk, gifter=gift.gifter, recipient_email="maria@example.com")

    assert (refused.value.status, refused.value.code) == (409, "gift_not_sendable")
    assert refused.value.message == "The gift's claim window has ended, so it can no longer be sent to someone else."


def test_a_form_with_different_addresses_changes_nothing(client, clock):
    gift = delivered()
    services.gift_decline(code=gift.code)
    client.force_login(gift.gifter)

    page = client.post(
        reverse("gifts:send_elsewhere", args=[gift.pk]),
        {"recipient_email": "maria@example.com", "recipient_email_again": "mario@example.com"},
    )

    assert page.status_code == 422 and "The two email addresses are different." in page.content.decode()
    gift.refresh_from_db()
    assert gift.status == GiftStatus.DECLINED


# --- withdraw after a decline -----------------------------------------------------------------------------------------


def test_a_declined_gift_is_withdrawn_and_refunded_inside_the_refund_window(client, clock):
    gift = buy(delivered=True)
    services.gift_decline(code=gift.code)
    client.force_login(gift.gifter)
    assert reverse("billing:gift_withdraw", args=[gift.pk]) in client.get(reverse("gifts:gifts")).content.decode()

    answer = client.post(reverse("billing:gift_withdraw", args=[gift.pk]))

    assert answer.status_code == 302
    gift.refresh_from_db()
    assert gift.status == GiftStatus.CANCELLED
    refund = Payment.objects.get(kind=Payment.Kind.REFUND, invoice_id=gift.invoice_id)
    assert refund.status == Payment.Status.SUCCEEDED
    assert Event.objects.filter(gift=gift, event_type="gift_withdrawn").count() == 1


def test_a_declined_gift_past_the_refund_window_is_not_withdrawn(clock):
    gift = buy(delivered=True)
    clock.shift(timedelta(days=14))
    services.gift_decline(code=gift.code)

    with pytest.raises(ServiceError) as refused:
        gift_sales.gift_withdraw(gift_id=gift.pk, gifter=gift.gifter)

    assert refused.value.code == "gift_not_withdrawable"
    gift.refresh_from_db()
    assert gift.status == GiftStatus.DECLINED
    assert not Payment.objects.filter(kind=Payment.Kind.REFUND, invoice_id=gift.invoice_id).exists()


# --- the claim window still ends --------------------------------------------------------------------------------------


def test_the_expiry_sweep_ends_a_declined_gift_whose_window_passed(clock):
    declined, open_ = delivered(), delivered()
    services.gift_decline(code=declined.code)
    services.gift_decline(code=open_.code)
    Gift.objects.filter(pk=open_.pk).update(claim_expiry_date=NOW + timedelta(days=400))
    clock.move_to(declined.claim_expiry_date + timedelta(seconds=1))

    assert services.expire_due_gifts() == 1

    declined.refresh_from_db()
    open_.refresh_from_db()
    assert (declined.status, open_.status) == (GiftStatus.EXPIRED, GiftStatus.DECLINED)
    assert Event.objects.filter(gift=declined, event_type="gift_expired").count() == 1


def test_no_claim_expiring_reminder_goes_to_a_declined_gift(clock):
    declined, unclaimed = delivered(), delivered()
    services.gift_decline(code=declined.code)
    clock.move_to(declined.claim_expiry_date - timedelta(days=3))

    reminders.send_reminders()

    expiring = Email.objects.filter(kind=Email.Kind.CLAIM_EXPIRING)
    assert list(expiring.values_list("gift_id", flat=True)) == [unclaimed.pk]


# --- the merchant API -------------------------------------------------------------------------------------------------


def test_the_merchant_api_shows_a_declined_gift_as_chargebees_unclaimed():
    gift = unclaimed_gift(gifter_with_card(), OfferFactory(), claim_expiry_date=timezone.now() + timedelta(days=30))
    services.gift_decline(code=gift.code)
    api = MerchantClient(new_api_key())

    shown = api.get(f"gifts/{gift.pk}").json()["gift"]
    listed = api.get("gifts", {"status[is]": "unclaimed"}).json()["list"]
    unknown = api.get("gifts", {"status[is]": "declined"})
    claim = api.post(f"gifts/{gift.pk}/claim")

    assert shown["status"] == "unclaimed"
    assert [row["status"] for row in shown["gift_timelines"]] == ["scheduled", "unclaimed"]
    assert [row["gift"]["id"] for row in listed] == [str(gift.pk)]
    assert unknown.status_code == 400
    assert claim.status_code == 409
    assert claim.json()["message"] == "The gift is declined by its recipient; only unclaimed gifts can be claimed."
    event = Event.objects.get(gift=gift, event_type="gift_declined")
    assert event.content["gift"]["status"] == "unclaimed"
    cancelled = api.post(f"gifts/{gift.pk}/cancel")
    assert cancelled.status_code == 200 and cancelled.json()["gift"]["status"] == "cancelled"


# --- the race ---------------------------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_decline_racing_a_redeem_lets_exactly_one_through():
    gifter, offer = GuestFactory(), OfferFactory(period="month")
    winners = Counter()

    for round_ in range(ROUNDS):
        redeemer = CustomerFactory(email=f"peter-{round_}-{uuid.uuid4().hex[:6]}@example.com")
        gift = delivered(gifter=gifter, offer=offer)

        def redeem(code=gift.code, customer=redeemer):
            return services.gift_redeem(customer=customer, code=code)

        def decline(token=gift.link_token):
            return services.gift_decline(code=token)

        redeemed, declined = at_once([redeem, decline])

        gift.refresh_from_db()
        winners[gift.status] += 1
        if gift.status == GiftStatus.CLAIMED:
            assert isinstance(redeemed, Verification), redeemed
            assert isinstance(declined, ServiceError) and declined.code == "gift_not_declinable", declined
            assert not declined_events(gift).exists() and not notices(gift).exists()
        else:
            assert gift.status == GiftStatus.DECLINED
            assert isinstance(declined, Gift), declined
            assert isinstance(redeemed, RedeemRefused) and redeemed.code == RefusalReason.DECLINED, redeemed
            assert gift.subscription_id is None and declined_events(gift).count() == 1

    assert sum(winners.values()) == ROUNDS
