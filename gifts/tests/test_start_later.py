"""Start it later (issue 16): a recipient starting a new subscription with a gift may choose a start date within the
offer's start_later_days, on the redeem page or with the API's startDate. The subscription is `future` (no access)
until then, its term a period from its start, and renewals and reminders follow those dates; an extension ignores
the choice. Bad dates are refused with nothing changed."""

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from dateutil.relativedelta import relativedelta
from django.core.cache import cache
from django.urls import reverse

from accounts.models import Subscription
from accounts.selectors import customer_has_access, subscriptions_with_access
from accounts.tests.factories import CustomerFactory, SubscriptionFactory
from billing.renewals import renew_due_subscriptions
from billing.services import payment_method_add
from emails.models import Email
from gifts import group_codes, services
from gifts.models import GiftStatus
from gifts.reminders import send_reminders
from gifts.tests.factories import GiftFactory, make_gift
from giftshop.tests.mediastore import assert_error, client_for, data_of
from offers.tests.factories import OfferFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 3, 10, 15, 0, tzinfo=UTC)  # 11:00 in New York
NEW_YORK = ZoneInfo("America/New_York")


@pytest.fixture(autouse=True)
def clock():
    cache.clear()  # failed code attempts are counted in the cache
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller
    cache.clear()


@pytest.fixture
def recipient():
    return CustomerFactory(time_zone="America/New_York")


@pytest.fixture
def gift():
    offer = OfferFactory(title="Premium monthly", period="month", tags=["premium"], start_later_days=90)
    gift = make_gift(offer=offer)
    services.deliver_due_gifts(send=False)
    gift.refresh_from_db()
    return gift


def redeem(customer, code, body=None):
    return client_for(customer).post(f"/mediastore/gifts/redeem/{code}", body or {}, format="json")


def unchanged(gift, customer):
    gift.refresh_from_db()
    return gift.status == GiftStatus.UNCLAIMED and not Subscription.objects.filter(customer=customer).exists()


# --- the API ---------------------------------------------------------------------------------------------------


def test_verification_offers_a_later_start_to_a_new_subscriber_only(recipient, gift):
    data = data_of(client_for(recipient).get(f"/mediastore/gifts/verification/{gift.code}"))
    assert (data["redeemMode"], data["startLaterDays"]) == ("NEW", 90)
    SubscriptionFactory(customer=recipient, offer=gift.offer)
    data = data_of(client_for(recipient).get(f"/mediastore/gifts/verification/{gift.code}"))
    assert (data["redeemMode"], data["startLaterDays"]) == ("EXTEND", 0)


def test_a_start_date_makes_a_future_subscription_starting_that_day_in_the_recipients_zone(recipient, gift):
    data = data_of(redeem(recipient, gift.code, {"startDate": "2026-04-01"}))
    subscription = Subscription.objects.get(customer=recipient)
    start = datetime(2026, 4, 1, tzinfo=NEW_YORK)
    assert (subscription.status, subscription.term_start) == (Subscription.Status.FUTURE, start)
    assert subscription.term_end == start + relativedelta(months=1)
    assert (data["redeemMode"], data["subscriptionId"]) == ("NEW", subscription.pk)
    assert (data["accessFrom"], data["accessUntil"]) == (int(start.timestamp()), int(subscription.term_end.timestamp()))
    listed = data_of(client_for(recipient).get(f"/mediastore/customers/{recipient.pk}/subscriptions"))["items"]
    assert [(s["status"], s["startedAt"]) for s in listed] == [("future", int(start.timestamp()))]


def test_an_iso_date_time_starts_it_at_that_moment(recipient, gift):
    data_of(redeem(recipient, gift.code, {"startDate": "2026-03-20T08:30:00Z"}))
    subscription = Subscription.objects.get(customer=recipient)
    assert subscription.term_start == datetime(2026, 3, 20, 8, 30, tzinfo=UTC)
    assert subscription.status == Subscription.Status.FUTURE


def test_today_or_no_start_date_starts_it_now(recipient, gift):
    data = data_of(redeem(recipient, gift.code, {"startDate": "2026-03-10"}))
    subscription = Subscription.objects.get(customer=recipient)
    assert (subscription.status, subscription.term_start) == (Subscription.Status.ACTIVE, NOW)
    assert data["accessFrom"] == int(NOW.timestamp())


@pytest.mark.parametrize(
    ("start", "code"),
    [
        ("2026-03-09", "START_DATE_PAST"),
        ("2026-03-10T14:00:00Z", "START_DATE_PAST"),
        ("2026-06-09", "START_DATE_TOO_LATE"),  # today + 91 days
        ("next tuesday", "REQ0001"),
        ("2026-13-01", "REQ0001"),
        (20260401, "REQ0001"),
    ],
)
def test_a_bad_start_date_is_refused_with_422_and_nothing_changes(recipient, gift, start, code):
    body = assert_error(redeem(recipient, gift.code, {"startDate": start}), 422, code)
    assert body["errors"][0]
    assert unchanged(gift, recipient)


def test_the_last_day_of_the_window_is_allowed(recipient, gift):
    data_of(redeem(recipient, gift.code, {"startDate": "2026-06-08"}))  # today + 90 days
    assert Subscription.objects.get(customer=recipient).term_start == datetime(2026, 6, 8, tzinfo=NEW_YORK)


def test_an_offer_without_a_window_refuses_any_later_start(recipient):
    gift = make_gift(offer=OfferFactory(start_later_days=0))
    services.deliver_due_gifts(send=False)
    assert data_of(client_for(recipient).get(f"/mediastore/gifts/verification/{gift.code}"))["startLaterDays"] == 0
    assert_error(redeem(recipient, gift.code, {"startDate": "2026-03-11"}), 422, "START_DATE_TOO_LATE")
    assert unchanged(gift, recipient)


def test_a_group_codes_seat_may_start_later_too_and_a_refused_date_gives_the_seat_back(recipient):
    group = group_codes.group_code_create(gifter=CustomerFactory(), offer=OfferFactory(), seats=2)
    assert_error(redeem(recipient, group.code, {"startDate": "2027-01-01"}), 422, "START_DATE_TOO_LATE")
    group.refresh_from_db()
    assert group.seats_used == 0 and not Subscription.objects.filter(customer=recipient).exists()
    data = data_of(redeem(recipient, group.code, {"startDate": "2026-04-01"}))
    subscription = Subscription.objects.get(customer=recipient)
    assert (data["seatsLeft"], subscription.status) == (1, Subscription.Status.FUTURE)
    assert subscription.term_start == datetime(2026, 4, 1, tzinfo=NEW_YORK)


def test_an_extension_ignores_the_start_date_and_adds_to_the_end(recipient, gift):
    held = SubscriptionFactory(customer=recipient, offer=gift.offer, term_start=NOW, term_end=NOW + timedelta(days=5))
    data = data_of(redeem(recipient, gift.code, {"startDate": "2027-01-01"}))  # beyond the window: ignored
    held.refresh_from_db()
    assert data["redeemMode"] == "EXTEND"
    assert (held.status, held.term_start) == (Subscription.Status.ACTIVE, NOW)
    assert held.term_end == NOW + timedelta(days=5) + relativedelta(months=1)
    assert Subscription.objects.filter(customer=recipient).count() == 1


def test_a_second_gift_extends_the_subscription_that_starts_later(recipient, gift):
    data_of(redeem(recipient, gift.code, {"startDate": "2026-04-01"}))
    second = make_gift(offer=gift.offer)
    data = data_of(redeem(recipient, second.code))
    subscription = Subscription.objects.get(customer=recipient)
    assert data["redeemMode"] == "EXTEND" and subscription.status == Subscription.Status.FUTURE
    assert subscription.term_end == datetime(2026, 4, 1, tzinfo=NEW_YORK) + relativedelta(months=2)


# --- access, renewal, reminders and expiry follow the real dates --------------------------------------------------


def test_access_begins_at_the_start_date_not_before(clock, recipient, gift):
    services.gift_redeem(customer=recipient, code=gift.code, start=date(2026, 4, 1))
    subscription = Subscription.objects.get(customer=recipient)
    start = subscription.term_start
    offers_url = f"/mediastore/customers/{recipient.pk}/offers"
    assert not customer_has_access(recipient, gift.offer)
    assert data_of(client_for(recipient).get(offers_url))["items"] == []

    clock.move_to(start - timedelta(seconds=1))
    assert services.subscriptions_start_due() == 0
    assert not subscriptions_with_access(customer=recipient)

    clock.move_to(start)
    assert services.subscriptions_start_due() == 1
    assert services.subscriptions_start_due() == 0
    subscription.refresh_from_db()
    assert subscription.status == Subscription.Status.ACTIVE
    assert customer_has_access(recipient, gift.offer)
    assert [o["subscriptionId"] for o in data_of(client_for(recipient).get(offers_url))["items"]] == [subscription.pk]

    clock.move_to(subscription.term_end + timedelta(seconds=1))  # no card: it simply ends
    renew_due_subscriptions()
    assert not customer_has_access(recipient, gift.offer)


def test_it_renews_at_the_real_term_end_with_a_card_added_while_it_waited(clock, recipient, gift):
    services.gift_redeem(customer=recipient, code=gift.code, start=date(2026, 4, 1))
    payment_method_add(customer=recipient, card_number="4242424242424242", exp_month=12, exp_year=2030)
    subscription = Subscription.objects.get(customer=recipient)
    term_end = subscription.term_end
    assert term_end == datetime(2026, 5, 1, tzinfo=NEW_YORK)

    clock.move_to(NOW + relativedelta(months=1))  # when a subscription started at redemption would have ended
    assert renew_due_subscriptions() == 0
    services.subscriptions_start_due()
    subscription.refresh_from_db()
    assert (subscription.status, subscription.auto_renew, subscription.term_end) == ("active", True, term_end)

    clock.move_to(term_end - timedelta(seconds=1))
    assert renew_due_subscriptions() == 0
    clock.move_to(term_end)
    assert renew_due_subscriptions() == 1
    subscription.refresh_from_db()
    assert (subscription.term_start, subscription.term_end) == (term_end, term_end + relativedelta(months=1))


def test_the_term_ending_reminder_follows_the_real_term_end(clock, recipient, gift):
    services.gift_redeem(customer=recipient, code=gift.code, start=date(2026, 4, 1))
    subscription = Subscription.objects.get(customer=recipient)

    def reminders():
        return Email.objects.filter(kind=Email.Kind.TERM_ENDING, to_email=recipient.email).count()

    clock.move_to(NOW + relativedelta(months=1) - timedelta(days=3))  # a term begun at redemption would end soon
    send_reminders()
    assert reminders() == 0
    services.subscriptions_start_due()
    clock.move_to(subscription.term_end - timedelta(days=3))
    send_reminders()
    assert reminders() == 1


def test_expiry_and_the_start_sweep_leave_an_unclaimed_merchant_gifts_placeholder_alone():
    placeholder = SubscriptionFactory(
        status=Subscription.Status.FUTURE, term_start=NOW - timedelta(days=1), renewable=False, auto_renew=False
    )
    GiftFactory(status=GiftStatus.UNCLAIMED, subscription=placeholder, scheduled_at=NOW - timedelta(days=1))
    assert services.subscriptions_start_due() == 0
    placeholder.refresh_from_db()
    assert placeholder.status == Subscription.Status.FUTURE


def test_the_gift_expiry_sweep_does_not_cancel_a_redeemed_future_subscription(clock, recipient, gift):
    services.gift_redeem(customer=recipient, code=gift.code, start=date(2026, 4, 1))
    clock.move_to(NOW + timedelta(days=400))  # past the gift's claim expiry date
    services.expire_due_gifts()
    assert Subscription.objects.get(customer=recipient).status == Subscription.Status.FUTURE


# --- the redeem page ---------------------------------------------------------------------------------------------


def test_the_page_offers_start_now_or_a_date_within_the_window(client, recipient, gift):
    client.force_login(recipient)
    client.post(reverse("gifts:redeem"), {"code": gift.code, "action": "verify"})
    page = client.get(reverse("gifts:redeem"), {"giftCode": gift.code}).content.decode()
    assert 'name="start" value="now" checked' in page
    assert 'min="2026-03-11" max="2026-06-08"' in page


def test_redeeming_on_the_page_with_a_later_date(client, recipient, gift):
    client.force_login(recipient)
    client.post(reverse("gifts:redeem"), {"code": gift.code, "action": "verify"})
    done = client.post(
        reverse("gifts:redeem"),
        {"code": gift.code, "action": "confirm", "start": "later", "start_date": "2026-04-01"},
    )
    assert done.status_code == 302
    subscription = Subscription.objects.get(customer=recipient)
    assert (subscription.status, subscription.term_start) == ("future", datetime(2026, 4, 1, tzinfo=NEW_YORK))
    assert "starts on" in client.get(done.url).content.decode()


@pytest.mark.parametrize("start_date", ["", "2026-03-01", "2026-07-01", "soon"])
def test_the_page_refuses_a_bad_date_and_shows_the_gift_again(client, recipient, gift, start_date):
    client.force_login(recipient)
    client.post(reverse("gifts:redeem"), {"code": gift.code, "action": "verify"})
    response = client.post(
        reverse("gifts:redeem"), {"code": gift.code, "action": "confirm", "start": "later", "start_date": start_date}
    )
    assert response.status_code == 422
    body = response.content.decode()
    assert 'id="id_start_date_error"' in body and "Confirm and redeem" in body
    assert unchanged(gift, recipient)


def test_the_page_offers_no_date_to_a_subscriber_whose_gift_extends(client, recipient, gift):
    SubscriptionFactory(customer=recipient, offer=gift.offer)
    client.force_login(recipient)
    client.post(reverse("gifts:redeem"), {"code": gift.code, "action": "verify"})
    page = client.get(reverse("gifts:redeem"), {"giftCode": gift.code}).content.decode()
    assert "extends your" in page and 'name="start_date"' not in page


def test_a_new_account_chooses_its_password_and_a_later_start_in_one_post(client, gift, settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    page = client.get(reverse("gifts:redeem"), {"giftCode": gift.code, "t": gift.link_token}).content.decode()
    assert 'value="claim"' in page and 'name="start_date"' in page
    form = {"code": gift.code, "t": gift.link_token, "action": "claim", "password": "Violet marmalade 77 skyline"}
    done = client.post(reverse("gifts:redeem"), {**form, "start": "later", "start_date": "2026-04-01"})
    assert done.status_code == 302
    subscription = Subscription.objects.get(customer__email=gift.recipient_email)
    assert subscription.status == Subscription.Status.FUTURE
    assert subscription.term_start.astimezone(UTC).date() == date(2026, 4, 1)  # the site's zone: UTC here
