"""Issue 16, "When the claim window ends": per offer, an unredeemed gift expires (nothing back, as before), or its
gifter is refunded through the gateway, or given account credit of what the gift cost. The expiry sweep expires it;
billing's settle sweep settles it once, however often it runs, and retries a refund the gateway failed. A gift of a
list gets back its share of the list's charge. The gifter's "gift expired" email says what they got back."""

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine

from accounts.tests.factories import CustomerFactory, PaymentMethodFactory
from billing import claim_window
from billing import services as billing_services
from billing.credit import credit_balance, credit_give
from billing.gateways import PaymentError, SandboxGateway
from billing.models import CreditEntry, Invoice, InvoiceLine, Payment
from emails.models import Email
from emails.services import render
from gifts import reminders
from gifts import services as gift_services
from gifts.models import Gift, GiftStatus
from gifts.tests.test_merchant_races import at_once
from giftshop.models import Event
from offers.models import ClaimWindowEnd
from offers.tests.factories import OfferFactory

pytestmark = pytest.mark.django_db

BOUGHT = datetime(2031, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
def clock():
    with time_machine.travel(BOUGHT, tick=False) as traveller:
        yield traveller


def buy(policy, *, price="12.50"):
    """A gift bought on the web checkout with the gifter's saved sandbox card, delivered at once."""
    person = CustomerFactory(email=f"nia-{uuid.uuid4().hex[:6]}@example.com")
    PaymentMethodFactory(customer=person, token=f"tok_sandbox_success_{uuid.uuid4().hex[:12]}")
    order = billing_services.checkout(
        customer=person,
        offer=OfferFactory(price=price, currency="EUR", claim_window_end=policy),
        checkout_key=uuid.uuid4().hex,
        as_gift=True,
        recipient_email="peter@example.com",
        payment_method=person.payment_methods.get(),
    )
    gift_services.deliver_due_gifts(send=False)
    return Gift.objects.get(order=order)


def expire(clock, *gifts):
    latest = max(gift.claim_expiry_date for gift in gifts)
    clock.move_to(latest + timedelta(minutes=1))
    assert gift_services.expire_due_gifts() == len(gifts)


def refunds(gift):
    return Payment.objects.filter(kind=Payment.Kind.REFUND, invoice_id=gift.invoice_id)


def test_it_gives_the_gifter_credit_of_what_the_gift_cost_once(clock):
    gift = buy(ClaimWindowEnd.CREDIT)
    expire(clock, gift)

    assert claim_window.settle_expired_gifts() == 1
    assert claim_window.settle_expired_gifts() == 0  # a re-run settles nothing twice

    entry = CreditEntry.objects.get()
    assert (entry.customer, entry.amount, entry.currency) == (gift.gifter, Decimal("12.50"), "EUR")
    assert (entry.reason, entry.key, entry.gift) == ("gift_unredeemed", f"gift:{gift.pk}:unredeemed", gift)
    assert credit_balance(customer=gift.gifter, currency="EUR") == Decimal("12.50")
    assert not refunds(gift).exists()
    credited = Event.objects.get(gift=gift, event_type="gift_credited")
    assert credited.content["credit"] == {"amount": 1250, "currency_code": "EUR"}


def test_it_refunds_the_gifter_through_the_gateway_once(clock):
    gift = buy(ClaimWindowEnd.REFUND)
    expire(clock, gift)

    claim_window.settle_expired_gifts()
    claim_window.settle_expired_gifts()
    claim_window.expired_gift_settle(gift_id=gift.pk)  # and a direct repeat

    refund = refunds(gift).get()
    assert (refund.status, refund.amount, refund.currency) == (Payment.Status.SUCCEEDED, Decimal("12.50"), "EUR")
    assert Invoice.objects.get(pk=gift.invoice_id).amount_refunded == Decimal("12.50")
    assert Event.objects.get(gift=gift, event_type="gift_refunded").content["refund"]["amount"] == 1250
    assert not CreditEntry.objects.exists()


def test_expire_gives_nothing_back_and_a_gift_still_claimable_is_left_alone(clock):
    expired = buy(ClaimWindowEnd.EXPIRE)
    waiting = buy(ClaimWindowEnd.REFUND)
    Gift.objects.filter(pk=waiting.pk).update(claim_expiry_date=BOUGHT + timedelta(days=3650))
    expire(clock, expired)

    assert claim_window.settle_expired_gifts() == 0

    waiting.refresh_from_db()
    assert waiting.status == GiftStatus.UNCLAIMED
    assert not Payment.objects.filter(kind=Payment.Kind.REFUND).exists()
    assert not CreditEntry.objects.exists()
    assert not Event.objects.filter(event_type__in=["gift_refunded", "gift_credited"]).exists()


def test_a_refund_the_gateway_failed_is_retried_by_a_later_sweep(clock, monkeypatch):
    gift = buy(ClaimWindowEnd.REFUND)
    expire(clock, gift)
    real_refund = SandboxGateway.refund

    def down(self, **kwargs):
        raise PaymentError("processing_error", "The gateway is down.")

    monkeypatch.setattr(SandboxGateway, "refund", down)
    claim_window.settle_expired_gifts()
    owed = refunds(gift).get()
    assert owed.status == Payment.Status.PENDING and owed.failure_code == "processing_error"

    monkeypatch.setattr(SandboxGateway, "refund", real_refund)
    claim_window.settle_expired_gifts()  # too soon: an attempt may be in flight
    assert refunds(gift).get().status == Payment.Status.PENDING
    clock.shift(timedelta(minutes=5))
    claim_window.settle_expired_gifts()

    refund = refunds(gift).get()
    assert (refund.status, refund.amount) == (Payment.Status.SUCCEEDED, Decimal("12.50"))
    assert Event.objects.filter(gift=gift, event_type="gift_refunded").count() == 1


def as_one_of_a_list(gift, quantity=5):
    """The gift as one of a list of `quantity` bought together: the list's invoice, no order of its own."""
    InvoiceLine.objects.filter(invoice_id=gift.invoice_id, entity_type="plan").update(
        quantity=quantity, unit_amount=Decimal("12.50") / quantity
    )
    Gift.objects.filter(pk=gift.pk).update(order=None)


@pytest.mark.parametrize("policy", [ClaimWindowEnd.REFUND, ClaimWindowEnd.CREDIT])
def test_a_gift_of_a_list_gets_back_its_share_of_the_lists_charge(clock, policy):
    gift = buy(policy)
    as_one_of_a_list(gift)
    expire(clock, gift)

    claim_window.settle_expired_gifts()
    claim_window.settle_expired_gifts()

    if policy == ClaimWindowEnd.REFUND:
        refund = refunds(gift).get()
        charge = Payment.objects.get(invoice_id=gift.invoice_id, kind=Payment.Kind.CHARGE)
        assert (refund.amount, refund.idempotency_key) == (Decimal("2.50"), f"refund:{charge.pk}:gift:{gift.pk}")
        assert refund.status == Payment.Status.SUCCEEDED
    else:
        assert CreditEntry.objects.get().amount == Decimal("2.50")


def expired_notice(gift):
    reminders.send_reminders()
    email = Email.objects.get(gift=gift, kind=Email.Kind.GIFT_EXPIRED)
    return render(email)


@pytest.mark.parametrize(
    ("policy", "said"),
    [
        (ClaimWindowEnd.CREDIT, "We have added €12.50 of account credit to your account"),
        (ClaimWindowEnd.REFUND, "We have refunded €12.50 to the card you paid with."),
    ],
)
def test_the_gifters_expired_email_says_what_they_got_back(clock, policy, said):
    gift = buy(policy)
    expire(clock, gift)
    claim_window.settle_expired_gifts()

    message = expired_notice(gift)

    assert said in message.body
    assert "<strong>€12.50</strong>" in message.alternatives[0][0]


def test_the_expired_email_of_an_expire_offer_promises_nothing(clock):
    gift = buy(ClaimWindowEnd.EXPIRE)
    expire(clock, gift)
    claim_window.settle_expired_gifts()

    text = expired_notice(gift).body

    assert "expired on" in text
    assert "refunded" not in text and "account credit" not in text


@pytest.mark.django_db(transaction=True)
def test_two_sweeps_at_once_settle_each_gift_once():
    with time_machine.travel(BOUGHT, tick=False) as clock:
        refunded, credited = buy(ClaimWindowEnd.REFUND), buy(ClaimWindowEnd.CREDIT)
        expire(clock, refunded, credited)

        at_once([claim_window.settle_expired_gifts, claim_window.settle_expired_gifts])

    assert refunds(refunded).get().status == Payment.Status.SUCCEEDED
    assert CreditEntry.objects.get().amount == Decimal("12.50")
    assert Event.objects.filter(event_type__in=["gift_refunded", "gift_credited"]).count() == 2


def test_a_gift_paid_with_account_credit_gets_the_credit_back_under_refund(clock):
    gifter = CustomerFactory(email=f"ola-{uuid.uuid4().hex[:6]}@example.com")
    credit_give(customer=gifter, amount=Decimal("12.50"), currency="EUR", reason="gift_unredeemed", key="test:given")
    order = billing_services.checkout(
        customer=gifter,
        offer=OfferFactory(price="12.50", currency="EUR", claim_window_end=ClaimWindowEnd.REFUND),
        checkout_key=uuid.uuid4().hex,
        as_gift=True,
        recipient_email="peter@example.com",
    )
    gift_services.deliver_due_gifts(send=False)
    gift = Gift.objects.get(order=order)
    assert credit_balance(customer=gifter, currency="EUR") == Decimal("0.00")
    expire(clock, gift)

    claim_window.settle_expired_gifts()

    assert credit_balance(customer=gifter, currency="EUR") == Decimal("12.50")
    assert CreditEntry.objects.get(reason="refunded").amount == Decimal("12.50")
    assert "We have added €12.50 of account credit" in expired_notice(gift).body
