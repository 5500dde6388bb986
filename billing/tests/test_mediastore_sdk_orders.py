"""What Cleeng's own front end (@cleeng/mediastore-sdk 5.26.0) sends and reads when it sells an offer (issue 13):
`paymentMethodId: 0` on every new order ("none chosen yet"), and `requiredPaymentDetails`, which decides whether it
asks for a card (and the gift's recipient) or completes the order with `POST /payments {orderId}` alone."""

from decimal import Decimal

import pytest

from accounts.models import Transaction
from accounts.tests.factories import CustomerFactory
from billing import services
from billing.models import Order, Payment
from billing.tests.test_mediastore_orders import VISA, create_order, make_gift_order, patch, pay
from gifts.models import Gift
from giftshop.tests.mediastore import assert_error, client_for, data_of
from offers.tests.factories import CouponFactory, OfferFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def offer():
    return OfferFactory(short_id="S100000012", price=Decimal("49.99"), period="year", title="Yearly")


@pytest.fixture
def customer():
    return CustomerFactory(email="gifter@example.com")


@pytest.fixture
def client(customer):
    return client_for(customer)


def test_the_sdks_new_order_with_payment_method_0_is_accepted_as_none_chosen(client, customer, offer):
    # The SDK's exact body.
    body = {"offerId": offer.short_id, "customerId": customer.pk, "paymentMethodId": 0, "buyAsAGift": False}
    order = data_of(client.post("/mediastore/orders", body, format="json"))["order"]
    assert order["paymentMethodId"] is None and order["requiredPaymentDetails"] is True
    assert Order.objects.get(pk=order["id"]).payment_method_id == ""
    changed = data_of(patch(client, order, {"paymentMethodId": 0, "buyAsAGift": True}))["order"]
    assert changed["paymentMethodId"] is None and changed["buyAsAGift"] is True


def test_an_unknown_payment_method_is_still_refused(client, offer):
    assert_error(create_order(client, offer.short_id, paymentMethodId=99), 422, "REQ0001")
    assert_error(create_order(client, offer.short_id, paymentMethodId=-1), 422, "REQ0001")


def test_every_order_says_whether_it_needs_payment_details(client, offer):
    order = data_of(create_order(client, offer.short_id))["order"]
    assert order["requiredPaymentDetails"] is True
    CouponFactory(code="ALLFREE", discount_type="percent", percent_off=Decimal("100"))
    free = data_of(patch(client, order, {"couponCode": "ALLFREE"}))["order"]
    assert free["totalPrice"] == 0 and free["requiredPaymentDetails"] is False
    assert data_of(client.get(f"/mediastore/orders/{order['id']}"))["order"]["requiredPaymentDetails"] is False


def test_a_free_gift_order_is_completed_with_no_card_as_the_sdk_does(client, customer, offer):
    CouponFactory(code="ALLFREE", discount_type="percent", percent_off=Decimal("100"))
    order = data_of(create_order(client, offer.short_id, couponCode="ALLFREE", buyAsAGift=True))["order"]
    make_gift_order(client, order)
    response = client.post("/mediastore/payments", {"orderId": order["id"], "captchaValue": ""}, format="json")
    assert response.status_code == 200, response.content
    gift = Gift.objects.get()
    assert gift.recipient_email == "friend@example.com" and gift.gifter == customer
    payment = Payment.objects.get()
    assert payment.amount == 0 and payment.status == Payment.Status.SUCCEEDED
    assert payment.reference == f"free-{payment.pk}"  # no gateway saw it
    # Refunding it (a cancelled gift) books a refund of 0 without asking a gateway.
    refund = services.refund(payment=payment, reason="test")
    assert refund.status == Payment.Status.SUCCEEDED and refund.amount == 0
    assert Transaction.objects.filter(kind=Transaction.Kind.REFUND).count() == 1


def test_an_order_with_something_to_pay_still_needs_a_card(client, offer):
    order = data_of(create_order(client, offer.short_id, paymentMethodId=0))["order"]
    assert_error(client.post("/mediastore/payments", {"orderId": order["id"]}, format="json"), 422)
    assert data_of(pay(client, order, VISA))  # and pays with one


def test_the_sdks_pseudo_method_for_nothing_to_pay_completes_a_free_order_only(client, customer, offer):
    methods = data_of(client.get("/mediastore/payment-methods"))["paymentMethods"]
    coupon = next(m for m in methods if m["paymentGateway"] == "coupon")
    assert any(m["paymentGateway"] == "free-offer" for m in methods)
    CouponFactory(code="ALLFREE", discount_type="percent", percent_off=Decimal("100"))
    # The SDK's steps: the order, the coupon, then the "coupon" method (it stops with "No payment method found"
    # without one), then POST /payments with the order id alone.
    order = data_of(create_order(client, offer.short_id, paymentMethodId=0))["order"]
    discount = data_of(patch(client, order, {"couponCode": "ALLFREE"}))["order"]["discount"]
    assert discount["applied"] and discount["periods"] == 1  # this purchase only: renewals pay the offer's price
    assert data_of(patch(client, order, {"paymentMethodId": coupon["id"]}))["order"]["paymentMethodId"] == coupon["id"]
    response = client.post("/mediastore/payments", {"orderId": order["id"], "captchaValue": ""}, format="json")
    assert data_of(response)["subscriptionId"]
    assert Payment.objects.get().amount == 0

    paid = data_of(create_order(client, OfferFactory().short_id))["order"]
    refused = pay(client, paid, VISA, paymentMethodId=coupon["id"])
    assert_error(refused, 422, "REQ0001")
    assert Payment.objects.count() == 1
