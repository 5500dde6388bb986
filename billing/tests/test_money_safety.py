"""Money is never taken for nothing and discounts never overrun (issue 11, items 6, 7, 8, 14): a failure after a
successful charge refunds it in the same flow; a coupon applies once per purchase and its redemptions are taken
atomically before the charge; an add-on in another currency is refused; an order's price is checked again at
payment; the money constraints hold exactly on SQLite too."""

import os
import subprocess
import sys
import threading
from decimal import Decimal

import pytest
from django.conf import settings
from django.db import connection
from rest_framework.test import APIClient

from accounts.tests.factories import CustomerFactory
from billing.models import Invoice, Order, Payment
from billing.services import OrderError, order_create, order_pay
from gifts.models import Gift
from gifts.tests.merchant import MerchantClient, assert_error, gift_params, gifter_with_card
from giftshop.mediastore import issue_jwt
from offers.models import Coupon
from offers.tests.factories import AddonFactory, CouponFactory, OfferFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def invoices_cannot_be_written():
    """A real database failure after the charge: PostgreSQL refuses every new invoice (no code of ours is faked)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE FUNCTION refuse_invoice() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'disk full'; END $$ "
            "LANGUAGE plpgsql; CREATE TRIGGER refuse_invoice BEFORE INSERT ON billing_invoice "
            "FOR EACH ROW EXECUTE FUNCTION refuse_invoice();"
        )
    yield
    with connection.cursor() as cursor:
        cursor.execute("DROP TRIGGER refuse_invoice ON billing_invoice; DROP FUNCTION refuse_invoice();")


def charges(status=Payment.Status.SUCCEEDED):
    return Payment.objects.filter(kind=Payment.Kind.CHARGE, status=status)


def refunds():
    return Payment.objects.filter(kind=Payment.Kind.REFUND, status=Payment.Status.SUCCEEDED)


def test_a_failure_after_a_merchant_gifts_charge_refunds_it_and_gives_the_coupon_back(invoices_cannot_be_written):
    offer, coupon = OfferFactory(price="10.00"), CouponFactory(max_redemptions=1)
    api = MerchantClient(raise_request_exception=False)
    params = gift_params(gifter_with_card(), offer, **{"coupon_ids[0]": coupon.code})

    response = api.post("gifts", params, idempotency_key="after-charge")

    assert_error(response, 500, "internal_error")
    assert charges().count() == 1 and refunds().count() == 1
    assert refunds().get().amount == charges().get().amount == Decimal("9.00")
    assert not Gift.objects.exists() and not Invoice.objects.exists()
    coupon.refresh_from_db()
    assert coupon.redemptions == 0


def test_a_failure_after_a_storefront_payment_refunds_it(invoices_cannot_be_written):
    customer, offer = CustomerFactory(), OfferFactory(price="10.00")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {issue_jwt(customer)}")
    body = {"offerId": offer.long_id, "customerId": customer.pk, "paymentMethodId": 1, "buyAsAGift": False}
    order = client.post("/mediastore/orders", body, format="json").json()["responseData"]["order"]
    client.raise_request_exception = False

    response = client.post("/mediastore/payments", {"orderId": order["id"], "cardToken": "tok_visa"}, format="json")

    assert response.status_code == 500
    assert charges().count() == 1 and refunds().count() == 1
    assert Order.objects.get(pk=order["id"]).status == Order.Status.PENDING


def test_after_a_refunded_failure_the_same_request_charges_anew_and_completes(invoices_cannot_be_written):
    api = MerchantClient(raise_request_exception=False)
    params = gift_params(gifter_with_card(), OfferFactory())
    assert api.post("gifts", params, idempotency_key="again").status_code == 500
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE billing_invoice DISABLE TRIGGER refuse_invoice")
    retried = api.post("gifts", params, idempotency_key="again")
    assert retried.status_code == 200
    assert Gift.objects.count() == 1 and charges().count() == 2 and refunds().count() == 1


def test_a_coupon_listed_twice_applies_once_so_the_purchase_is_refused_before_any_charge():
    coupon, api = CouponFactory(percent_off="50"), MerchantClient()
    params = gift_params(gifter_with_card(), OfferFactory(), **{f"coupon_ids[{i}]": coupon.code for i in range(3)})
    response = api.post("gifts", params)
    assert_error(response, 400, "param_wrong_value", param="coupon_ids[1]")
    assert not Payment.objects.exists()


def test_an_addon_in_another_currency_is_refused_before_any_charge():
    offer = OfferFactory(currency="USD")
    addon = AddonFactory(price="1000", currency="JPY")
    params = gift_params(gifter_with_card(), offer, **{"addons[id][0]": addon.code, "addons[quantity][0]": 1})
    response = MerchantClient().post("gifts", params)
    body = assert_error(response, 400, "param_wrong_value", param="addons[id]")
    assert "JPY" in body["message"] and "USD" in body["message"]
    assert not Payment.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_six_concurrent_payments_of_a_single_use_coupon_give_one_discount_and_charge_the_others_nothing():
    coupon = CouponFactory(percent_off="50", max_redemptions=1)
    offer = OfferFactory(price="10.00")
    orders = [order_create(customer=CustomerFactory(), offer=offer, coupon_code=coupon.code) for _ in range(6)]
    barrier, outcomes = threading.Barrier(6), []

    def pay(order):
        barrier.wait()
        try:
            order_pay(order=order, card_token="tok_visa")
            outcomes.append("paid")
        except OrderError as error:
            outcomes.append(error.code)
        finally:
            connection.close()

    threads = [threading.Thread(target=pay, args=(order,)) for order in orders]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(outcomes) == ["coupon_used_up"] * 5 + ["paid"]
    assert Coupon.objects.get(pk=coupon.pk).redemptions == 1
    assert list(Payment.objects.values_list("amount", flat=True)) == [Decimal("5.00")]  # nobody else was charged


def test_a_declined_card_gives_the_coupon_back():
    coupon = CouponFactory(max_redemptions=1)
    order = order_create(customer=CustomerFactory(), offer=OfferFactory(), coupon_code=coupon.code)
    with pytest.raises(Exception, match="declined"):
        order_pay(order=order, card_token="tok_chargeDeclined")
    assert Coupon.objects.get(pk=coupon.pk).redemptions == 0
    order_pay(order=order, card_token="tok_visa")
    assert Coupon.objects.get(pk=coupon.pk).redemptions == 1


def test_a_price_change_since_the_order_is_shown_before_any_charge():
    customer, offer = CustomerFactory(), OfferFactory(price="10.00")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {issue_jwt(customer)}")
    body = {"offerId": offer.long_id, "customerId": customer.pk, "paymentMethodId": 1, "buyAsAGift": False}
    order = client.post("/mediastore/orders", body, format="json").json()["responseData"]["order"]
    offer.price = Decimal("12.00")
    offer.save(update_fields=["price"])

    refused = client.post("/mediastore/payments", {"orderId": order["id"], "cardToken": "tok_visa"}, format="json")

    assert refused.status_code == 409
    assert refused.json()["errors"] == [
        "The price has changed: the total is now $12.00. Check the new total and pay again."
    ]
    assert not Payment.objects.exists()
    shown = client.get(f"/mediastore/orders/{order['id']}").json()["responseData"]["order"]
    assert shown["totalPrice"] == 12.0
    paid = client.post("/mediastore/payments", {"orderId": order["id"], "cardToken": "tok_visa"}, format="json")
    assert paid.status_code == 200 and Payment.objects.get().amount == Decimal("12.00")


SQLITE_ORDER = """
import django; django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0)
from decimal import Decimal
from accounts.models import Customer
from billing.services import order_create, order_pay
from offers.models import Coupon, Offer
offer = Offer.objects.create(title="Premium", period="3months", price=Decimal("27.99"), currency="USD", giftable=True)
coupon = Coupon.objects.create(code="HALF", name="Half", discount_type="percent", percent_off=Decimal("50"))
customer = Customer.objects.create_user("sqlite@example.com")
order = order_create(customer=customer, offer=offer, coupon_code="HALF")
result = order_pay(order=order, card_token="tok_visa")
print(result.invoice.total, order.total_price)
"""


def test_the_money_constraints_hold_exactly_on_sqlite(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    env.update(GIFTSHOP_DATA_DIR=str(tmp_path), EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend")
    result = subprocess.run(
        [sys.executable, "-c", SQLITE_ORDER],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["13.99", "13.99"]  # 27.99 - 14.00 is 13.989999999999998 in floats


def test_the_web_checkout_shows_a_changed_price_before_charging_it(client):
    import re

    offer = OfferFactory(price="10.00")
    client.force_login(CustomerFactory())
    page = client.get(f"/checkout/{offer.long_id}/").content.decode()
    form = {
        "checkout_key": re.search(r'name="checkout_key" value="([^"]+)"', page).group(1),
        "shown_total": re.search(r'name="shown_total" value="([^"]+)"', page).group(1),
        "card_number": "4242 4242 4242 4242",
        "exp_month": "12",
        "exp_year": "2030",
        "cvc": "123",
        "action": "pay",
    }
    assert form["shown_total"] == "10.00"
    offer.price = Decimal("12.00")
    offer.save(update_fields=["price"])

    refused = client.post(f"/checkout/{offer.long_id}/", form)

    assert refused.status_code == 200
    assert "The price has changed: the total is now $12.00." in refused.content.decode()
    assert "Pay $12.00" in refused.content.decode()
    assert not Payment.objects.exists()
    form["shown_total"] = re.search(r'name="shown_total" value="([^"]+)"', refused.content.decode()).group(1)
    assert client.post(f"/checkout/{offer.long_id}/", form).status_code == 302
    assert Payment.objects.get().amount == Decimal("12.00")
