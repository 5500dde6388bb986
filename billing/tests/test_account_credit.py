"""Issue 16, account credit: a customer's balance per currency is spent before the card on a purchase (web checkout
and the storefront API) and on a renewal; when it covers the total no gateway charge happens, otherwise the card pays
the rest. A spend happens once per order or renewal term (a retry never spends twice), a declined card spends
nothing, two checkouts at once cannot overspend, and a refund gives the credit part back. The account page and the
checkout show it."""

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.urls import reverse

from accounts.models import Subscription, Transaction
from accounts.tests.factories import CustomerFactory, PaymentMethodFactory, SubscriptionFactory
from billing import gift_sales
from billing import services as billing_services
from billing.credit import credit_balance, credit_balances, credit_give, credit_spent_on
from billing.gateways import SandboxGateway
from billing.models import CreditEntry, Invoice, Order, Payment
from billing.renewals import renew_due_subscriptions
from billing.services import OrderError
from emails.models import Email
from emails.services import render
from gifts.models import Gift
from gifts.tests.test_merchant_races import at_once
from giftshop.tests.mediastore import client_for, data_of
from offers.tests.factories import OfferFactory

NOW = datetime(2031, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
def clock(db):
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@pytest.fixture
def gateway_calls(monkeypatch):
    """The sandbox gateway's charges, counted (they still go through)."""
    calls = []
    real = SandboxGateway.charge

    def counted(self, **kwargs):
        calls.append(kwargs["amount"])
        return real(self, **kwargs)

    monkeypatch.setattr(SandboxGateway, "charge", counted)
    return calls


def person(*, card=True, credit=None, currency="EUR"):
    customer = CustomerFactory(email=f"ada-{uuid.uuid4().hex[:6]}@example.com")
    if card:
        PaymentMethodFactory(customer=customer, token=f"tok_sandbox_success_{uuid.uuid4().hex[:12]}")
    if credit:
        credit_give(
            customer=customer,
            amount=Decimal(credit),
            currency=currency,
            reason=CreditEntry.Reason.GIFT_UNREDEEMED,
            key=f"test:{uuid.uuid4().hex}",
        )
    return customer


def offer(price="12.50"):
    return OfferFactory(price=price, currency="EUR")


def buy(customer, *, the_offer=None, with_card=True, as_gift=True):
    order = billing_services.checkout(
        customer=customer,
        offer=the_offer or offer(),
        checkout_key=uuid.uuid4().hex,
        as_gift=as_gift,
        recipient_email="peter@example.com" if as_gift else "",
        payment_method=customer.payment_methods.first() if with_card else None,
    )
    order.refresh_from_db()
    return order


def balance(customer):
    return credit_balance(customer=customer, currency="EUR")


# --- the balance ----------------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_balance_is_the_sum_per_currency_and_a_key_gives_once():
    customer = person(card=False, credit="10.00")
    credit_give(customer=customer, amount=Decimal("5"), currency="USD", reason="gift_unredeemed", key="k1")
    credit_give(customer=customer, amount=Decimal("5"), currency="USD", reason="gift_unredeemed", key="k1")

    assert balance(customer) == Decimal("10.00")
    assert credit_balances(customer=customer) == {"EUR": Decimal("10.00"), "USD": Decimal("5.00")}
    assert balance(CustomerFactory()) == Decimal("0.00")


# --- spent on a purchase --------------------------------------------------------------------------------------------


def test_credit_that_covers_the_order_pays_it_with_no_gateway_charge(clock, gateway_calls):
    customer = person(card=False, credit="20.00")

    order = buy(customer, with_card=False)

    assert order.status == Order.Status.PAID and gateway_calls == []
    payment = order.payments.get()
    assert (payment.amount, payment.status, payment.payment_method_label) == (
        Decimal("0.00"),
        Payment.Status.SUCCEEDED,
        "account credit",
    )
    spent = CreditEntry.objects.get(reason="spent")
    assert (spent.amount, spent.key, spent.order, spent.invoice) == (
        Decimal("-12.50"),
        f"order:{order.pk}:credit",
        order,
        order.invoice,
    )
    assert balance(customer) == Decimal("7.50")
    assert Invoice.objects.get(order=order).total == Decimal("12.50")
    assert Gift.objects.filter(order=order).exists()


def test_credit_that_covers_part_is_spent_first_and_the_card_pays_the_rest(clock, gateway_calls):
    customer = person(credit="5.00")

    order = buy(customer)

    assert gateway_calls == [Decimal("7.50")]
    assert order.payments.get().amount == Decimal("7.50")
    assert balance(customer) == Decimal("0.00")
    assert credit_spent_on(invoice=order.invoice) == Decimal("5.00")


def test_a_declined_card_spends_no_credit_and_a_retry_spends_it_once(clock):
    customer = person(card=False, credit="5.00")
    declining = PaymentMethodFactory(
        customer=customer, token=f"tok_sandbox_card_declined_{uuid.uuid4().hex[:8]}", is_default=False
    )
    order = billing_services.order_create(customer=customer, offer=offer())

    with pytest.raises(billing_services.PaymentError):
        billing_services.order_pay(order=order, payment_method=declining)
    assert balance(customer) == Decimal("5.00") and not CreditEntry.objects.filter(reason="spent").exists()

    card = PaymentMethodFactory(
        customer=customer, token=f"tok_sandbox_success_{uuid.uuid4().hex[:8]}", is_default=False
    )
    billing_services.order_pay(order=order, payment_method=card)
    with pytest.raises(OrderError) as again:
        billing_services.order_pay(order=order, payment_method=card)

    assert again.value.code == "order_paid"
    assert balance(customer) == Decimal("0.00")
    assert CreditEntry.objects.filter(reason="spent").count() == 1


def test_a_bulk_lists_order_does_not_spend_credit(clock, gateway_calls):
    customer = person(credit="50.00")
    order = billing_services.order_create(customer=customer, offer=offer(), buy_as_gift=True)
    Order.objects.filter(pk=order.pk).update(quantity=2, offer_price=Decimal("25.00"), total_price=Decimal("25.00"))
    order.refresh_from_db()

    billing_services.order_pay(
        order=order,
        payment_method=customer.payment_methods.get(),
        fulfil=lambda **kwargs: (Transaction.TargetType.GIFT, 0),
    )

    assert gateway_calls == [Decimal("25.00")] and balance(customer) == Decimal("50.00")


def test_a_refund_of_a_purchase_paid_partly_by_credit_gives_the_credit_back(clock):
    customer = person(credit="5.00")
    order = buy(customer)
    gift = Gift.objects.get(order=order)

    withdrawal = gift_sales.gift_withdraw(gift_id=gift.pk, gifter=customer)
    gift_sales.gift_withdraw(gift_id=gift.pk, gifter=customer)  # a double click

    assert (withdrawal.refund.amount, withdrawal.refund.status) == (Decimal("7.50"), Payment.Status.SUCCEEDED)
    back = CreditEntry.objects.get(reason="refunded")
    assert (back.amount, back.order) == (Decimal("5.00"), order)
    assert balance(customer) == Decimal("5.00")
    assert Invoice.objects.get(order=order).amount_refunded == Decimal("12.50")


def test_a_refund_of_a_purchase_paid_all_by_credit_gives_it_all_back(clock, gateway_calls):
    customer = person(card=False, credit="12.50")
    order = buy(customer, with_card=False)

    gift_sales.gift_withdraw(gift_id=Gift.objects.get(order=order).pk, gifter=customer)

    assert gateway_calls == [] and balance(customer) == Decimal("12.50")


@pytest.mark.django_db(transaction=True)
def test_two_checkouts_at_once_never_spend_more_than_the_balance():
    for _ in range(5):
        customer = person(card=False, credit="12.50")
        orders = [billing_services.order_create(customer=customer, offer=offer()) for _ in range(2)]

        outcomes = at_once([lambda order=order: billing_services.order_pay(order=order) for order in orders])

        paid = [outcome for outcome in outcomes if not isinstance(outcome, Exception)]
        refused = [outcome for outcome in outcomes if isinstance(outcome, Exception)]
        assert len(paid) == 1, outcomes
        assert [error.code for error in refused] == ["credit_changed"]
        assert balance(customer) == Decimal("0.00")
        assert CreditEntry.objects.filter(customer=customer, reason="spent").count() == 1


@pytest.mark.django_db(transaction=True)
def test_two_checkouts_at_once_with_a_card_spend_the_credit_once_and_charge_the_rest():
    customer = person(credit="10.00")
    card = customer.payment_methods.get()
    orders = [billing_services.order_create(customer=customer, offer=offer()) for _ in range(2)]

    outcomes = at_once(
        [lambda order=order: billing_services.order_pay(order=order, payment_method=card) for order in orders]
    )

    assert not [outcome for outcome in outcomes if isinstance(outcome, Exception)], outcomes
    charged = sorted(outcome.payment.amount for outcome in outcomes)
    assert charged == [Decimal("2.50"), Decimal("12.50")]
    assert balance(customer) == Decimal("0.00")


# --- the storefront API ---------------------------------------------------------------------------------------------


def test_the_storefront_api_pays_an_order_with_credit_and_says_so(clock, gateway_calls):
    customer = person(card=False, credit="30.00")
    client = client_for(customer)
    the_offer = OfferFactory(short_id="S123456789", country="US", price=Decimal("20.00"), currency="EUR")
    order = data_of(client.post("/mediastore/orders", {"offerId": the_offer.short_id}, format="json"))["order"]
    assert order["requiredPaymentDetails"] is False

    paid = data_of(client.post("/mediastore/payments", {"orderId": order["id"], "paymentMethodId": 3}, format="json"))

    assert float(paid["payment"]["totalAmount"]) == 0
    assert float(paid["payment"]["accountCreditAmount"]) == 20
    assert gateway_calls == [] and balance(customer) == Decimal("10.00")


def test_the_storefront_api_charges_the_card_what_credit_does_not_cover(clock, gateway_calls):
    customer = person(card=False, credit="5.00")
    client = client_for(customer)
    the_offer = OfferFactory(short_id="S223456789", country="US", price=Decimal("20.00"), currency="EUR")
    order = data_of(client.post("/mediastore/orders", {"offerId": the_offer.short_id}, format="json"))["order"]
    assert order["requiredPaymentDetails"] is True

    data_of(client.post("/mediastore/payments", {"orderId": order["id"], "cardToken": "tok_visa"}, format="json"))

    assert gateway_calls == [Decimal("15.00")] and balance(customer) == Decimal("0.00")


# --- a renewal ------------------------------------------------------------------------------------------------------


def due_subscription(customer, price="9.99"):
    return SubscriptionFactory(
        customer=customer,
        offer=OfferFactory(period="month", price=Decimal(price), currency="EUR"),
        term_start=NOW - timedelta(days=30),
        term_end=NOW - timedelta(minutes=1),
        auto_renew=True,
    )


def test_a_renewal_is_paid_by_credit_with_no_card_and_no_gateway_charge(clock, gateway_calls):
    customer = person(card=False, credit="10.00")
    subscription = due_subscription(customer)

    renew_due_subscriptions()
    renew_due_subscriptions()

    subscription.refresh_from_db()
    assert subscription.status == Subscription.Status.ACTIVE and subscription.term_end > NOW
    assert gateway_calls == []
    spent = CreditEntry.objects.get(reason="spent")
    assert spent.amount == Decimal("-9.99") and spent.invoice.total == Decimal("9.99")
    assert balance(customer) == Decimal("0.01")


def test_a_renewal_spends_credit_first_and_charges_the_card_the_rest(clock, gateway_calls):
    customer = person(credit="4.00")
    subscription = due_subscription(customer)

    renew_due_subscriptions()

    subscription.refresh_from_db()
    assert subscription.term_end > NOW and gateway_calls == [Decimal("5.99")]
    assert balance(customer) == Decimal("0.00")


def test_a_declined_renewal_spends_no_credit(clock):
    customer = person(card=False, credit="4.00")
    PaymentMethodFactory(customer=customer, token=f"tok_sandbox_card_declined_{uuid.uuid4().hex[:8]}")
    due_subscription(customer)

    renew_due_subscriptions()

    assert balance(customer) == Decimal("4.00")
    assert not CreditEntry.objects.filter(reason="spent").exists()


def test_without_a_card_and_too_little_credit_the_subscription_ends_as_before(clock):
    customer = person(card=False, credit="4.00")
    subscription = due_subscription(customer)

    renew_due_subscriptions()

    subscription.refresh_from_db()
    assert subscription.status == Subscription.Status.EXPIRED and balance(customer) == Decimal("4.00")


# --- the pages ------------------------------------------------------------------------------------------------------


def test_the_account_page_shows_the_balance(clock, client):
    customer = person(credit="7.50")
    client.force_login(customer)

    page = client.get(reverse("accounts:account")).content.decode()

    assert "Account credit: <strong>€7.50</strong>" in page


def test_the_checkout_says_how_much_credit_will_be_used_and_pays_with_it(clock, client, gateway_calls):
    customer = person(card=False, credit="20.00")
    the_offer = offer()
    client.force_login(customer)
    url = reverse("billing:checkout", args=[the_offer.long_id])

    page = client.get(url).content.decode()
    assert "€12.50 of account credit will be used: no card is needed." in page

    key = page.split('name="checkout_key" value="', 1)[1].split('"', 1)[0]
    response = client.post(url, {"checkout_key": key, "action": "pay", "shown_total": "12.50", "saved_card": ""})

    assert response.status_code == 302, response.content.decode()[:2000]
    assert gateway_calls == [] and balance(customer) == Decimal("7.50")


def test_the_receipt_says_how_much_credit_paid(clock):
    customer = person(credit="5.00")

    order = buy(customer, as_gift=False)

    receipt = render(Email.objects.get(order=order, kind="order_receipt"))
    assert "Paid: €12.50 (€5.00 of it with account credit)" in receipt.body
