"""Checkout over the storefront API: orders, their prices and delivery details, and paying them."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.core import mail
from django.utils import timezone

from accounts.models import Subscription, Transaction
from accounts.tests.factories import CustomerFactory, PaymentMethodFactory
from billing.models import Invoice, Order, Payment
from gifts.models import Gift, GiftStatus
from giftshop.tests.mediastore import assert_error, client_for, data_of
from offers.tests.factories import CouponFactory, OfferFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def offer():
    return OfferFactory(short_id="S123456789", country="US", price=Decimal("20.00"), period="month", title="Monthly")


@pytest.fixture
def customer():
    return CustomerFactory(email="gifter@example.com")


@pytest.fixture
def client(customer):
    return client_for(customer)


def create_order(client, offer_id, **fields):
    return client.post("/mediastore/orders", {"offerId": offer_id, **fields}, format="json")


@pytest.fixture
def order(client, offer):
    return data_of(create_order(client, offer.short_id))["order"]


def patch(client, order, change):
    return client.patch(f"/mediastore/orders/{order['id']}", change, format="json")


VISA = "tok_visa"


def pay(client, order, token=VISA, **fields):
    body = {"orderId": order["id"], **({"cardToken": token} if token else {}), **fields}
    return client.post("/mediastore/payments", body, format="json")


def make_gift_order(client, order, **details):
    delivery = {"recipientEmail": "friend@example.com", "personalNote": "Enjoy!", **details}
    return data_of(patch(client, order, {"buyAsAGift": True, "deliveryDetails": delivery}))["order"]


def nothing_was_fulfilled():
    return not (
        Gift.objects.exists()
        or Invoice.objects.exists()
        or Transaction.objects.exists()
        or Subscription.objects.exists()
    )


# --- creating and reading orders ---------------------------------------------------------------------------


def test_it_creates_a_priced_pending_order(customer, offer):
    with time_machine.travel(datetime(2026, 5, 1, 9, 0, tzinfo=UTC), tick=False):
        response = create_order(client_for(customer), "S123456789_US", customerId=customer.pk, paymentMethodId=1)
    order = data_of(response)["order"]
    assert order["offerId"] == "S123456789_US" and order["customerId"] == customer.pk
    assert (order["currency"], order["totalPrice"], order["status"], order["buyAsAGift"]) == (
        "USD",
        20.0,
        "pending",
        False,
    )
    assert order["priceBreakdown"] == {
        "offerPrice": 20.0,
        "discountAmount": 0.0,
        "discountedPrice": 20.0,
        "taxValue": 0.0,
        "customerServiceFee": 0.0,
        "paymentMethodFee": 0.0,
    }
    assert order["discount"]["applied"] is False
    assert order["paymentMethodId"] == 1
    assert order["expirationDate"] == int(datetime(2026, 5, 2, 9, 0, tzinfo=UTC).timestamp())
    assert order["deliveryDetails"] == {
        "recipientEmail": "",
        "deliveryDate": None,
        "personalNote": "",
        "deliveryMethod": "email",
        "designId": None,
        "language": "en",  # the buyer's stored language until one is chosen (issue 17)
    }


def test_a_customer_reads_their_own_order(client, order):
    assert data_of(client.get(f"/mediastore/orders/{order['id']}"))["order"] == order


def test_an_order_for_another_customer_id_is_refused(client, offer):
    other = CustomerFactory()
    assert_error(create_order(client, offer.short_id, customerId=other.pk), 422, "REQ0001")
    assert not Order.objects.exists()


@pytest.mark.parametrize(("offer_id", "status"), [("S000000001", 404), ("nonsense", 404)])
def test_an_order_for_an_unknown_offer_is_refused(client, offer_id, status):
    assert_error(create_order(client, offer_id), status)


def test_an_order_for_an_inactive_offer_is_refused(client):
    assert_error(create_order(client, OfferFactory(active=False).short_id), 422)


def test_an_order_with_an_unknown_payment_method_is_refused(client, offer):
    assert_error(create_order(client, offer.short_id, paymentMethodId=99), 422, "REQ0001")


def test_another_customers_order_is_not_found_and_stays_unchanged(offer):
    owner, intruder = client_for(CustomerFactory()), client_for(CustomerFactory())
    order = data_of(create_order(owner, offer.short_id))["order"]
    path = f"/mediastore/orders/{order['id']}"
    assert_error(intruder.get(path), 404)
    assert_error(intruder.patch(path, {"buyAsAGift": True}, format="json"), 404)
    assert_error(pay(intruder, order), 404)
    assert data_of(owner.get(path))["order"] == order
    assert not Payment.objects.exists()


# --- re-pricing ----------------------------------------------------------------------------------------------


def test_an_order_is_priced_again_when_the_coupon_changes(client, order):
    CouponFactory(code="QUARTER", discount_type="percent", percent_off=Decimal("25"))
    CouponFactory(code="MINUS350", discount_type="fixed", percent_off=None, amount_off=Decimal("3.50"), currency="USD")

    quarter = data_of(patch(client, order, {"couponCode": "quarter"}))["order"]
    assert quarter["totalPrice"] == 15.0
    assert quarter["priceBreakdown"]["discountAmount"] == 5.0 and quarter["priceBreakdown"]["discountedPrice"] == 15.0
    assert quarter["discount"]["applied"] is True and quarter["discount"]["code"] == "QUARTER"

    fixed = data_of(patch(client, order, {"couponCode": "MINUS350"}))["order"]
    assert fixed["totalPrice"] == 16.5 and fixed["priceBreakdown"]["discountAmount"] == 3.5

    removed = data_of(patch(client, order, {"couponCode": ""}))["order"]
    assert removed["totalPrice"] == 20.0 and removed["discount"]["applied"] is False


def test_a_coupon_can_be_given_when_the_order_is_created(client, offer):
    CouponFactory(code="TENOFF", percent_off=Decimal("10"))
    order = data_of(create_order(client, offer.short_id, couponCode="TENOFF"))["order"]
    assert order["totalPrice"] == 18.0 and order["discount"]["code"] == "TENOFF"


def test_a_fixed_coupon_never_takes_more_than_the_price(client, order):
    CouponFactory(code="BIG", discount_type="fixed", percent_off=None, amount_off=Decimal("50"), currency="USD")
    priced = data_of(patch(client, order, {"couponCode": "BIG"}))["order"]
    assert priced["totalPrice"] == 0.0 and priced["priceBreakdown"]["discountAmount"] == 20.0


@pytest.mark.parametrize(
    "coupon",
    [
        None,  # no such code
        {"active": False},
        {"valid_until": timezone.now() - timedelta(days=1)},
        {"max_redemptions": 0},
        {"offers": "another"},
    ],
)
def test_an_invalid_coupon_is_422_and_keeps_the_price(client, order, coupon):
    if coupon is not None:
        coupon = dict(coupon)
        applies_to = coupon.pop("offers", None)
        made = CouponFactory(code="NOPE", **coupon)
        if applies_to:
            made.offers.add(OfferFactory())
    body = assert_error(patch(client, order, {"couponCode": "NOPE", "buyAsAGift": True}), 422)
    assert body["responseData"] == {"field": "couponCode"}
    again = data_of(client.get(f"/mediastore/orders/{order['id']}"))["order"]
    assert again["totalPrice"] == 20.0 and again["discount"]["applied"] is False
    assert again["buyAsAGift"] is False  # a refused change changes nothing, not even its valid parts


def test_the_gift_flag_can_be_switched_on_and_off(client, order):
    assert data_of(patch(client, order, {"buyAsAGift": True}))["order"]["buyAsAGift"] is True
    assert data_of(patch(client, order, {"buyAsAGift": False}))["order"]["buyAsAGift"] is False
    assert Order.objects.get(pk=order["id"]).buy_as_gift is False


def test_a_weekly_offer_cannot_be_bought_as_a_gift(client):
    weekly = OfferFactory(period="week", giftable=False)
    assert_error(create_order(client, weekly.short_id, buyAsAGift=True), 422)
    assert not Order.objects.exists()
    order = data_of(create_order(client, weekly.short_id))["order"]
    body = assert_error(patch(client, order, {"buyAsAGift": True}), 422)
    assert body["responseData"] == {"field": "buyAsAGift"}
    assert Order.objects.get(pk=order["id"]).buy_as_gift is False


# --- delivery details --------------------------------------------------------------------------------------


def test_delivery_details_are_kept_on_the_order(client, order):
    when = int((timezone.now() + timedelta(days=3)).timestamp())
    updated = make_gift_order(client, order, recipientEmail="Friend@Example.com", deliveryDate=when)
    assert updated["deliveryDetails"] == {
        "recipientEmail": "friend@example.com",
        "deliveryDate": when,
        "personalNote": "Enjoy!",
        "deliveryMethod": "email",
        "designId": None,
        "language": "en",  # the buyer's stored language until one is chosen (issue 17)
    }
    # Any subset can be patched; the rest stays.
    again = data_of(patch(client, order, {"deliveryDetails": {"personalNote": "Happy birthday"}}))["order"]
    assert again["deliveryDetails"] == {
        "recipientEmail": "friend@example.com",
        "deliveryDate": when,
        "personalNote": "Happy birthday",
        "deliveryMethod": "email",
        "designId": None,
        "language": "en",  # the buyer's stored language until one is chosen (issue 17)
    }


@pytest.mark.parametrize(
    "email", ["not-an-email", "friend@", "a@b@example.com", "friend@example.com\r\nBcc: spy@example.com", "x" * 300]
)
def test_an_invalid_recipient_email_is_422(client, order, email):
    assert_error(patch(client, order, {"deliveryDetails": {"recipientEmail": email}}), 422)
    assert Order.objects.get(pk=order["id"]).recipient_email == ""


def test_a_personal_note_may_have_255_characters_but_not_256(client, order):
    assert_error(patch(client, order, {"deliveryDetails": {"personalNote": "x" * 256}}), 422)
    note = "é" * 254 + "!"
    assert (
        data_of(patch(client, order, {"deliveryDetails": {"personalNote": note}}))["order"]["deliveryDetails"][
            "personalNote"
        ]
        == note
    )


def test_a_personal_note_with_control_characters_is_422(client, order):
    assert_error(patch(client, order, {"deliveryDetails": {"personalNote": "hi\x00there"}}), 422)


@pytest.mark.parametrize("date", ["tomorrow", "2026-12-25", 1.5, True, -1, [1], {"at": 1}])
def test_a_delivery_date_that_is_not_unix_seconds_is_req0001(client, order, date):
    assert_error(patch(client, order, {"deliveryDetails": {"deliveryDate": date}}), 422, "REQ0001")
    assert Order.objects.get(pk=order["id"]).scheduled_at is None


def test_a_delivery_date_given_as_a_string_of_digits_is_accepted(client, order):
    # JSON clients sometimes send numbers as strings; Cleeng's own API accepts that too.
    when = int((timezone.now() + timedelta(days=2)).timestamp())
    updated = data_of(patch(client, order, {"deliveryDetails": {"deliveryDate": str(when)}}))["order"]
    assert updated["deliveryDetails"]["deliveryDate"] == when


# --- expiry --------------------------------------------------------------------------------------------------


def test_an_order_expires_24_hours_after_it_was_created(customer, offer):
    with time_machine.travel(datetime.now(UTC), tick=False) as traveller:
        order = data_of(create_order(client_for(customer), offer.short_id))["order"]
        traveller.shift(timedelta(hours=23, minutes=59))
        data_of(patch(client_for(customer), order, {"buyAsAGift": False}))
        traveller.shift(timedelta(minutes=1))
        client = client_for(customer)  # a fresh JWT: the first one expired long ago
        assert_error(patch(client, order, {"couponCode": ""}), 409)
        assert_error(pay(client, order), 409)
        assert data_of(client.get(f"/mediastore/orders/{order['id']}"))["order"]["status"] == "pending"
    assert nothing_was_fulfilled() and not Payment.objects.exists()


# --- payment -------------------------------------------------------------------------------------------------


def test_a_declined_payment_creates_nothing_and_the_order_can_be_paid_with_another_card(
    client, order, django_capture_on_commit_callbacks
):
    gift_order = make_gift_order(client, order)
    with django_capture_on_commit_callbacks(execute=True):
        declined = pay(client, gift_order, "tok_chargeDeclined")
    body = assert_error(declined, 422, "PAYMENT_DECLINED")
    assert body["responseData"] == {"reason": "card_declined"}
    assert nothing_was_fulfilled()
    assert Order.objects.get(pk=order["id"]).status == Order.Status.PENDING
    assert mail.outbox == []
    assert list(Payment.objects.values_list("status", flat=True)) == [Payment.Status.FAILED]

    with django_capture_on_commit_callbacks(execute=True):
        paid = data_of(pay(client, gift_order, "tok_visa"))
    assert paid["giftId"] == Gift.objects.get().pk
    assert Order.objects.get(pk=order["id"]).status == Order.Status.PAID


def test_a_card_with_insufficient_funds_is_declined(client, order):
    body = assert_error(pay(client, order, "tok_chargeDeclinedInsufficientFunds"), 422, "PAYMENT_DECLINED")
    assert body["responseData"] == {"reason": "insufficient_funds"}
    assert "insufficient funds" in body["errors"][0]
    assert nothing_was_fulfilled()
    assert Order.objects.get(pk=order["id"]).status == Order.Status.PENDING


def test_an_unknown_card_token_is_declined(client, order):
    assert_error(pay(client, order, "tok_made_up"), 422, "PAYMENT_DECLINED")
    assert nothing_was_fulfilled()


def test_a_paid_order_becomes_an_active_auto_renewing_subscription(
    client, customer, order, offer, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        paid = data_of(pay(client, order, paymentMethodId=1))
    assert paid["giftId"] is None
    assert paid["payment"]["status"] == "captured" and paid["payment"]["totalAmount"] == 20.0
    subscription = Subscription.objects.get(pk=paid["subscriptionId"])
    assert (subscription.customer, subscription.offer, subscription.status, subscription.auto_renew) == (
        customer,
        offer,
        Subscription.Status.ACTIVE,
        True,
    )
    assert subscription.origin == Subscription.Origin.PURCHASE
    transaction = Transaction.objects.get()
    assert transaction.transaction_id == paid["transactionId"]
    assert (transaction.target_type, transaction.target_id) == ("subscriptionId", str(subscription.pk))
    assert transaction.amount == Decimal("20.00") and transaction.customer == customer
    assert not Gift.objects.exists()
    assert [m.to for m in mail.outbox] == [["gifter@example.com"]]
    assert data_of(client.get(f"/mediastore/orders/{order['id']}"))["order"]["status"] == "paid"


def test_a_paid_gift_order_makes_an_invoice_a_transaction_a_scheduled_gift_and_a_receipt(
    client, customer, order, offer, django_capture_on_commit_callbacks
):
    CouponFactory(code="QUARTER", percent_off=Decimal("25"))
    data_of(patch(client, order, {"couponCode": "QUARTER"}))
    when = int((timezone.now() + timedelta(days=7)).timestamp())
    make_gift_order(client, order, deliveryDate=when, personalNote="Happy birthday!")

    with django_capture_on_commit_callbacks(execute=True):
        paid = data_of(pay(client, order))

    gift = Gift.objects.get(pk=paid["giftId"])
    assert (gift.status, gift.gifter, gift.offer, gift.recipient_email) == (
        GiftStatus.SCHEDULED,
        customer,
        offer,
        "friend@example.com",
    )
    assert int(gift.scheduled_at.timestamp()) == when and gift.personal_note == "Happy birthday!"
    assert gift.order_id == order["id"] and gift.sent_at is None
    invoice = Invoice.objects.get()
    assert (invoice.customer, invoice.is_gifted, invoice.total, invoice.discount) == (
        customer,
        True,
        Decimal("15.00"),
        Decimal("5.00"),
    )
    assert gift.invoice == invoice
    transaction = Transaction.objects.get()
    assert (transaction.target_type, transaction.target_id, transaction.amount) == (
        "giftId",
        str(gift.pk),
        Decimal("15.00"),
    )
    assert paid["subscriptionId"] is None and not Subscription.objects.exists()
    receipt = mail.outbox[-1]
    assert receipt.to == ["gifter@example.com"] and "receipt" in receipt.subject.lower()
    assert len(mail.outbox) == 1  # the recipient hears nothing before the delivery date
    gift_data = data_of(client.get(f"/mediastore/gifts/{gift.pk}"))
    assert gift_data["deliveryDetails"]["deliveryDate"] == when


def test_a_gift_order_without_a_recipient_cannot_be_paid(client, order):
    data_of(patch(client, order, {"buyAsAGift": True}))
    body = assert_error(pay(client, order), 422)
    assert body["responseData"] == {"field": "recipientEmail"}
    assert nothing_was_fulfilled() and not Payment.objects.exists()


def test_a_paid_order_cannot_be_paid_again_or_changed(client, order):
    data_of(pay(client, order))
    assert_error(pay(client, order), 409)
    assert_error(pay(client, order, "tok_mastercard"), 409)
    assert_error(patch(client, order, {"buyAsAGift": True}), 409)
    assert Payment.objects.count() == 1 and Transaction.objects.count() == 1 and Subscription.objects.count() == 1


def test_an_order_is_paid_with_a_saved_card(client, customer, order):
    card = PaymentMethodFactory(customer=customer, token="tok_mastercard", brand="Mastercard", last4="4444")
    paid = data_of(pay(client, order, token=None, paymentDetailId=card.pk))
    assert Transaction.objects.get().payment_method == card
    assert paid["payment"]["paymentMethod"] == "card"


def test_an_order_is_paid_with_the_default_card_when_none_is_given(customer, offer):
    PaymentMethodFactory(customer=customer, token="tok_visa")
    client = client_for(customer)
    order = data_of(create_order(client, offer.short_id))["order"]
    response = client.post("/mediastore/payments", {"orderId": order["id"]}, format="json")
    assert data_of(response)["subscriptionId"]


def test_an_order_cannot_be_paid_with_someone_elses_saved_card(client, order):
    theirs = PaymentMethodFactory(customer=CustomerFactory(), token="tok_visa")
    assert_error(pay(client, order, token=None, paymentDetailId=theirs.pk), 404)
    assert nothing_was_fulfilled() and not Payment.objects.exists()


def test_paying_without_any_card_is_422(client, order):
    response = client.post("/mediastore/payments", {"orderId": order["id"]}, format="json")
    assert_error(response, 422)
    assert nothing_was_fulfilled()
