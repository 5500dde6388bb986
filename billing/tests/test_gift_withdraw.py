"""Issue 16, "Change your mind": a gifter withdraws an unredeemed gift inside its offer's refund window (14 days by
default), from "My gifts" or the storefront API, and is refunded through the gateway once, however often they click;
the gift is cancelled by them (timeline, `gift_cancelled` and `gift_withdrawn` events and webhooks) and its
recipient's link says it was withdrawn. Outside the window, once redeemed, and for a list's or a merchant's gift it is
refused with the reason, and nothing changes."""

import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from accounts.tests.factories import CustomerFactory, PaymentMethodFactory
from billing import gift_sales
from billing import services as billing_services
from billing.models import Invoice, Payment
from billing.tests.test_stripe_checkout import come_back
from billing.tests.test_stripe_webhooks import paid_order
from emails.models import Email
from gifts import services as gift_services
from gifts.models import Gift, GiftStatus, GiftTimeline
from gifts.tests.merchant import gifter_with_card
from gifts.tests.test_merchant_races import ROUNDS, at_once
from gifts.verification import RedeemRefused, RefusalReason
from giftshop.errors import ServiceError
from giftshop.models import Event, WebhookDelivery, WebhookEndpoint
from giftshop.tests.mediastore import assert_error, client_for, data_of
from offers.tests.factories import OfferFactory

pytestmark = pytest.mark.django_db

BOUGHT = datetime(2031, 3, 2, 9, 0, tzinfo=UTC)
WITHDRAWN = "This gift was withdrawn by the person who gave it."


@pytest.fixture
def clock():
    with time_machine.travel(BOUGHT, tick=False) as traveller:
        yield traveller


def gifter():
    person = CustomerFactory(email=f"nia-{uuid.uuid4().hex[:6]}@example.com", time_zone="America/New_York")
    PaymentMethodFactory(customer=person, token=f"tok_sandbox_success_{uuid.uuid4().hex[:12]}")
    return person


def buy(person=None, *, offer=None, delivered=False, recipient="peter@example.com"):
    """A gift bought on the web checkout with the gifter's saved sandbox card, delivered in three days (or now)."""
    person = person or gifter()
    order = billing_services.checkout(
        customer=person,
        offer=offer or OfferFactory(price="12.50", currency="EUR"),
        checkout_key=uuid.uuid4().hex,
        as_gift=True,
        recipient_email=recipient,
        scheduled_at=None if delivered else timezone.now() + timedelta(days=3),
        payment_method=person.payment_methods.get(),
    )
    if delivered:
        gift_services.deliver_due_gifts(send=False)
    return Gift.objects.get(order=order)


def refunds(gift):
    return Payment.objects.filter(kind=Payment.Kind.REFUND, invoice_id=gift.invoice_id)


def nothing_changed(gift, status):
    gift.refresh_from_db()
    assert gift.status == status
    assert not refunds(gift).exists()
    assert not Event.objects.filter(gift=gift, event_type__in=["gift_cancelled", "gift_withdrawn"]).exists()


# --- the service ---------------------------------------------------------------------------------------------------


def test_a_gifter_withdraws_a_gift_inside_the_window_and_is_refunded_in_full(clock):
    gift = buy()
    clock.shift(timedelta(days=2))

    withdrawal = gift_sales.gift_withdraw(gift_id=gift.pk, gifter=gift.gifter)

    gift.refresh_from_db()
    assert gift.status == GiftStatus.CANCELLED and gift.cancelled_at == BOUGHT + timedelta(days=2)
    refund = refunds(gift).get()
    assert withdrawal.refund == refund
    assert (refund.status, refund.amount, refund.currency) == (Payment.Status.SUCCEEDED, Decimal("12.50"), "EUR")
    assert Invoice.objects.get(pk=gift.invoice_id).amount_refunded == Decimal("12.50")
    assert GiftTimeline.objects.get(gift=gift, status=GiftStatus.CANCELLED).actor == f"customer:{gift.gifter_id}"
    withdrawn = Event.objects.get(gift=gift, event_type="gift_withdrawn")
    assert withdrawn.content["gift"]["status"] == "cancelled"
    assert withdrawn.content["refund"] == {"amount": 1250, "currency_code": "EUR"}
    assert Event.objects.filter(gift=gift, event_type="gift_cancelled").count() == 1  # Chargebee's, as every cancel
    assert Email.objects.filter(gift=gift, kind=Email.Kind.GIFT_CANCELLED, to_email=gift.gifter.email).count() == 1


def test_the_gifter_is_emailed_the_refund_of_what_they_asked_for(clock, django_capture_on_commit_callbacks):
    gift = buy(delivered=True)
    with django_capture_on_commit_callbacks(execute=True):
        gift_sales.gift_withdraw(gift_id=gift.pk, gifter=gift.gifter)

    (notice,) = [message for message in mail.outbox if message.subject == "Your gift has been cancelled"]
    assert notice.to == [gift.gifter.email]
    assert "has been cancelled, as you asked, so its code no longer works" in notice.body
    assert "€12.50" in notice.body and "did not expect" not in notice.body and gift.code not in notice.body


def test_the_window_is_the_offers_days_from_the_purchase_up_to_its_last_second(clock):
    inside, outside = buy(), buy()

    clock.move_to(BOUGHT + timedelta(days=14) - timedelta(seconds=1))
    gift_sales.gift_withdraw(gift_id=inside.pk, gifter=inside.gifter)
    clock.move_to(BOUGHT + timedelta(days=14))
    with pytest.raises(ServiceError) as refused:
        gift_sales.gift_withdraw(gift_id=outside.pk, gifter=outside.gifter)

    inside.refresh_from_db()
    assert inside.status == GiftStatus.CANCELLED
    assert (refused.value.status, refused.value.code) == (409, "gift_not_withdrawable")
    assert refused.value.message == (
        "Gifts can be withdrawn for 14 days after purchase; this one could be until Sun 16 Mar, 05:00 New York time."
    )
    nothing_changed(outside, GiftStatus.SCHEDULED)


def test_an_offers_own_window_counts_and_zero_days_means_never(clock):
    week = buy(offer=OfferFactory(refund_window_days=7))
    never = buy(offer=OfferFactory(refund_window_days=0))
    clock.shift(timedelta(days=7, seconds=1))

    for gift, reason in [
        (
            week,
            "Gifts can be withdrawn for 7 days after purchase; this one could be until Sun 9 Mar, 05:00 New York time.",
        ),
        (never, "Gifts of this offer cannot be withdrawn once bought."),
    ]:
        with pytest.raises(ServiceError) as refused:
            gift_sales.gift_withdraw(gift_id=gift.pk, gifter=gift.gifter)
        assert refused.value.message == reason
        nothing_changed(gift, GiftStatus.SCHEDULED)


def test_a_redeemed_gift_cannot_be_withdrawn(clock):
    gift = buy(delivered=True)
    gift_services.gift_redeem(customer=CustomerFactory(email="peter@example.com"), code=gift.code)

    with pytest.raises(ServiceError) as refused:
        gift_sales.gift_withdraw(gift_id=gift.pk, gifter=gift.gifter)

    assert refused.value.message == "The gift has already been redeemed, so it can no longer be withdrawn."
    nothing_changed(gift, GiftStatus.CLAIMED)


def test_a_delivered_unredeemed_gift_can_be_withdrawn_and_its_link_then_says_so(client, clock):
    gift = buy(delivered=True)
    gift_sales.gift_withdraw(gift_id=gift.pk, gifter=gift.gifter)

    page = client.get(reverse("gifts:redeem"), {"giftCode": gift.code, "t": gift.link_token})

    assert page.status_code == 409
    assert WITHDRAWN in page.content.decode() and "has been cancelled" not in page.content.decode()


def test_an_admin_cancelled_gift_still_says_cancelled_not_withdrawn(client, clock):
    gift = buy(delivered=True)
    gift_sales.gift_cancel(gift_id=gift.pk, actor="admin:support@example.com")

    page = client.get(reverse("gifts:redeem"), {"giftCode": gift.code, "t": gift.link_token}).content.decode()

    assert "This gift has been cancelled." in page and WITHDRAWN not in page


def test_a_typed_code_and_the_storefront_say_withdrawn_under_the_contracts_cancelled(client, clock):
    gift = buy(delivered=True)
    gift_sales.gift_withdraw(gift_id=gift.pk, gifter=gift.gifter)
    recipient = client_for(CustomerFactory(email="peter@example.com"))

    verified = data_of(recipient.get(f"/mediastore/gifts/verification/{gift.code}"))
    redeemed = assert_error(recipient.post(f"/mediastore/gifts/redeem/{gift.code}"), 409)

    assert (verified["redeemable"], verified["redeemRefusalReason"]) == (False, RefusalReason.CANCELLED)
    assert redeemed["responseData"]["redeemRefusalReason"] == RefusalReason.CANCELLED
    assert redeemed["errors"] == [WITHDRAWN]
    client.post(reverse("gifts:redeem"), {"code": gift.code})  # Verify, then the page it redirects to
    assert WITHDRAWN in client.get(reverse("gifts:redeem"), {"giftCode": gift.code}).content.decode()


def test_a_list_gift_and_a_merchant_gift_are_refused_with_their_reasons(clock):
    bought = gift_sales.gift_purchase(
        gifter=gifter_with_card(),
        offer=OfferFactory(),
        receiver=None,
        recipient_email="friend@example.com",
        idempotency_key=uuid.uuid4().hex,
    )
    merchant = bought.gift
    listed = buy()
    Gift.objects.filter(pk=listed.pk).update(order=None)  # a list's gift has the list's invoice and no order

    for gift, reason in [
        (merchant, "This gift was sold through the merchant's own system: ask them to cancel it."),
        (listed, "This gift is one of a list bought together: contact us to withdraw it."),
    ]:
        with pytest.raises(ServiceError) as refused:
            gift_sales.gift_withdraw(gift_id=gift.pk, gifter=gift.gifter)
        assert refused.value.message == reason
        nothing_changed(gift, gift.status)


def test_only_its_gifter_can_withdraw_a_gift(clock):
    gift = buy()

    with pytest.raises(ServiceError) as refused:
        gift_sales.gift_withdraw(gift_id=gift.pk, gifter=CustomerFactory())

    assert refused.value.status == 404
    nothing_changed(gift, GiftStatus.SCHEDULED)


def test_the_webhooks_receive_gift_cancelled_and_gift_withdrawn(clock):
    everything = WebhookEndpoint.objects.create(url="https://hooks.example.com/all", secret="s")
    only_withdrawals = WebhookEndpoint.objects.create(
        url="https://hooks.example.com/w", secret="s", event_types=["gift_withdrawn"]
    )
    gift = buy()

    gift_sales.gift_withdraw(gift_id=gift.pk, gifter=gift.gifter)

    def received(endpoint):
        deliveries = WebhookDelivery.objects.filter(endpoint=endpoint, event__gift=gift)
        return sorted(deliveries.values_list("event__event_type", flat=True))

    assert received(everything) == ["gift_cancelled", "gift_scheduled", "gift_withdrawn"]
    assert received(only_withdrawals) == ["gift_withdrawn"]


# --- "My gifts" ----------------------------------------------------------------------------------------------------


def test_my_gifts_shows_until_when_a_gift_can_be_withdrawn_in_the_gifters_zone(client, clock):
    gift = buy()
    client.force_login(gift.gifter)

    page = client.get(reverse("gifts:gifts")).content.decode()

    assert "You can withdraw it until" in page and "Sun 16 Mar, 05:00 New York time" in page
    assert reverse("billing:gift_withdraw", args=[gift.pk]) in page
    clock.shift(timedelta(days=14))
    client.force_login(gift.gifter)  # a new session: the first one ended with the fortnight
    page = client.get(reverse("gifts:gifts")).content.decode()
    assert "You can withdraw it until" not in page and reverse("billing:gift_withdraw", args=[gift.pk]) not in page


def test_the_confirmation_page_states_the_amount_and_the_deadline_and_changes_nothing(client, clock):
    gift = buy()
    client.force_login(gift.gifter)

    page = client.get(reverse("billing:gift_withdraw", args=[gift.pk]))

    body = page.content.decode()
    assert page.status_code == 200
    assert "€12.50" in body and "Sun 16 Mar, 05:00 New York time" in body and "Withdraw and refund" in body
    nothing_changed(gift, GiftStatus.SCHEDULED)


def test_withdrawing_from_my_gifts_twice_refunds_once(client, clock):
    gift = buy()
    client.force_login(gift.gifter)
    url = reverse("billing:gift_withdraw", args=[gift.pk])

    first, second = client.post(url), client.post(url)  # a double click

    assert first.status_code == second.status_code == 302 and first.url == reverse("gifts:gifts")
    assert refunds(gift).count() == 1 and refunds(gift).get().status == Payment.Status.SUCCEEDED
    assert Event.objects.filter(gift=gift, event_type="gift_withdrawn").count() == 1
    assert GiftTimeline.objects.filter(gift=gift, status=GiftStatus.CANCELLED).count() == 1
    page = client.get(reverse("gifts:gifts")).content.decode()
    assert "is withdrawn" in page and "€12.50 is refunded to the card you paid with." in page


def test_a_refused_withdrawal_answers_409_with_the_reason(client, clock):
    gift = buy()
    clock.shift(timedelta(days=15))
    client.force_login(gift.gifter)

    response = client.post(reverse("billing:gift_withdraw", args=[gift.pk]))

    assert response.status_code == 409
    assert "Gifts can be withdrawn for 14 days after purchase" in response.content.decode()
    nothing_changed(gift, GiftStatus.SCHEDULED)


def test_someone_elses_gift_or_a_made_up_id_is_not_found(client, clock):
    gift = buy()
    client.force_login(CustomerFactory())

    assert client.post(reverse("billing:gift_withdraw", args=[gift.pk])).status_code == 404
    assert client.post(reverse("billing:gift_withdraw", args=[gift.pk + 1000])).status_code == 404
    assert client.post(f"/account/gifts/{'9' * 30}/withdraw/").status_code == 404
    nothing_changed(gift, GiftStatus.SCHEDULED)


# --- the storefront API --------------------------------------------------------------------------------------------


def test_the_storefront_action_withdraws_and_answers_the_refund_and_a_repeat_answers_the_same(clock):
    gift = buy()
    api = client_for(gift.gifter)
    shown = data_of(api.get(f"/mediastore/gifts/{gift.pk}"))
    assert shown["withdrawableUntil"] == int((BOUGHT + timedelta(days=14)).timestamp())

    first = data_of(api.post(f"/mediastore/gifts/{gift.pk}/withdraw"))
    again = data_of(api.post(f"/mediastore/gifts/{gift.pk}/withdraw"))

    assert first == again
    assert first["refund"] == {"amount": 12.5, "currency": "EUR", "status": "succeeded"}
    assert (first["gift"]["id"], first["gift"]["status"], first["gift"]["withdrawableUntil"]) == (
        gift.pk, "cancelled", None
    )  # fmt: skip
    assert refunds(gift).count() == 1


def test_the_storefront_action_refuses_with_409_and_hides_other_gifters_gifts(clock):
    redeemed = buy(delivered=True)
    gift_services.gift_redeem(customer=CustomerFactory(email="peter@example.com"), code=redeemed.code)
    api = client_for(redeemed.gifter)

    refused = assert_error(api.post(f"/mediastore/gifts/{redeemed.pk}/withdraw"), 409)
    assert refused["errors"] == ["The gift has already been redeemed, so it can no longer be withdrawn."]
    assert data_of(api.get(f"/mediastore/gifts/{redeemed.pk}"))["withdrawableUntil"] is None
    other = buy()
    assert_error(api.post(f"/mediastore/gifts/{other.pk}/withdraw"), 404)
    assert_error(client_for(CustomerFactory()).post(f"/mediastore/gifts/{other.pk}/withdraw"), 404)
    assert_error(api.get(f"/mediastore/gifts/{other.pk}/withdraw"), 405)
    nothing_changed(redeemed, GiftStatus.CLAIMED)
    nothing_changed(other, GiftStatus.SCHEDULED)


# --- Stripe --------------------------------------------------------------------------------------------------------


def test_a_stripe_paid_gift_is_refunded_through_stripe_refunds_once(client, fake_stripe):
    offer = OfferFactory(title="Premium yearly", period="year", price="99.99", currency="EUR", tags=["premium"])
    order, paid = paid_order(client, offer, fake_stripe)
    come_back(client, order, paid["id"])
    gift = Gift.objects.get(order=order)

    gift_sales.gift_withdraw(gift_id=gift.pk, gifter=gift.gifter)
    gift_sales.gift_withdraw(gift_id=gift.pk, gifter=gift.gifter)  # a repeat

    refund = refunds(gift).get()
    assert refund.status == Payment.Status.SUCCEEDED and refund.reference.startswith("re_")
    at_stripe = [r for r in fake_stripe.refunds.values() if r["payment_intent"] == paid["id"]]
    assert [(r["amount"], r["status"]) for r in at_stripe] == [(9999, "succeeded")]


def test_a_failed_stripe_refund_stays_owed_and_a_repeat_completes_it(client, fake_stripe):
    offer = OfferFactory(title="Premium yearly", period="year", price="99.99", currency="EUR", tags=["premium"])
    order, paid = paid_order(client, offer, fake_stripe)
    come_back(client, order, paid["id"])
    gift = Gift.objects.get(order=order)

    fake_stripe.down = True
    withdrawal = gift_sales.gift_withdraw(gift_id=gift.pk, gifter=gift.gifter)
    assert withdrawal.gift.status == GiftStatus.CANCELLED and withdrawal.refund.status == Payment.Status.PENDING
    fake_stripe.down = False
    again = gift_sales.gift_withdraw(gift_id=gift.pk, gifter=gift.gifter)

    assert again.refund.pk == withdrawal.refund.pk and again.refund.status == Payment.Status.SUCCEEDED
    assert Invoice.objects.get(pk=gift.invoice_id).amount_refunded == Decimal("99.99")
    assert len([r for r in fake_stripe.refunds.values() if r["payment_intent"] == paid["id"]]) == 1


# --- the race ------------------------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_withdraw_and_redeem_at_the_same_moment_exactly_one_wins_every_round():
    outcomes = Counter()
    for round_number in range(ROUNDS):
        gift = buy(recipient=f"peter{round_number}@example.com", delivered=True)
        recipient = CustomerFactory(email=f"peter{round_number}@example.com")

        redeemed, withdrawn = at_once(
            [
                lambda gift=gift, recipient=recipient: gift_services.gift_redeem(customer=recipient, code=gift.code),
                lambda gift=gift: gift_sales.gift_withdraw(gift_id=gift.pk, gifter=gift.gifter),
            ]
        )

        gift.refresh_from_db()
        refund = refunds(gift).first()
        if gift.status == GiftStatus.CLAIMED:
            assert isinstance(withdrawn, ServiceError) and withdrawn.status == 409, withdrawn
            assert refund is None and gift.subscription.customer == recipient
        else:
            assert gift.status == GiftStatus.CANCELLED
            assert isinstance(redeemed, RedeemRefused) and redeemed.code == RefusalReason.CANCELLED, redeemed
            assert refund.status == Payment.Status.SUCCEEDED and not recipient.subscriptions.exists()
        assert GiftTimeline.objects.filter(gift=gift, status__in=["claimed", "cancelled"]).count() == 1
        outcomes[gift.status] += 1
    assert sum(outcomes.values()) == ROUNDS
