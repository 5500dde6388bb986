"""Storefront (MediaStore) endpoints of checkout: orders, the publisher's payment methods, payments, and the
customer's saved cards (payment details)."""

from django.shortcuts import get_object_or_404
from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import serializers

from accounts import selectors
from accounts.models import PaymentMethod
from billing import services
from billing.credit import credit_balance, credit_spent_on
from billing.gateways import PaymentError
from billing.models import Order
from gifts.models import NOTE_MAX_LENGTH, DeliveryMethod
from gifts.selectors import design_for_checkout
from giftshop import ratelimit
from giftshop.mediastore import (
    MediaStoreError,
    MediaStoreView,
    UnixTimeField,
    attempts_refused,
    envelope,
    errors,
    in_envelope,
    invalid_body,
    unix,
)
from giftshop.timezones import validate_time_zone
from offers.selectors import offer_get

# The publisher's payment methods (Cleeng: GET /payment-methods). The built-in gateway is the sandbox. The other two
# are Cleeng's pseudo-methods for an order with nothing to pay (fully discounted by a coupon, or a free offer): its
# SDK completes such an order only after choosing one of them.
PUBLISHER_PAYMENT_METHODS = [
    {"id": 1, "methodName": "card", "paymentGateway": "sandbox"},
    {"id": 2, "methodName": "manual", "paymentGateway": "coupon"},
    {"id": 3, "methodName": "manual", "paymentGateway": "free-offer"},
]
NOTHING_TO_PAY_METHODS = {2, 3}


class DeliveryDetailsOut(serializers.Serializer):
    recipientEmail = serializers.CharField(source="recipient_email")
    deliveryDate = serializers.SerializerMethodField()
    personalNote = serializers.CharField(source="personal_note")
    deliveryMethod = serializers.CharField(source="delivery_method")
    designId = serializers.SlugRelatedField(source="design", slug_field="slug", read_only=True)
    language = serializers.CharField(source="gift_language")

    def get_deliveryDate(self, obj) -> int | None:
        return unix(obj.scheduled_at)


def money():
    return serializers.DecimalField(max_digits=12, decimal_places=2, coerce_to_string=False)


class PriceBreakdownOut(serializers.Serializer):
    offerPrice = money()
    discountAmount = money()
    discountedPrice = money()
    taxValue = money()
    customerServiceFee = money()
    paymentMethodFee = money()


class OrderOut(serializers.Serializer):
    id = serializers.IntegerField()
    offerId = serializers.CharField(source="offer.long_id")
    customerId = serializers.IntegerField(source="customer_id")
    customer = serializers.SerializerMethodField()
    country = serializers.CharField(source="customer.country")
    currency = serializers.CharField()
    totalPrice = serializers.DecimalField(source="total_price", max_digits=12, decimal_places=2, coerce_to_string=False)
    priceBreakdown = serializers.SerializerMethodField()
    taxRate = serializers.SerializerMethodField()
    discount = serializers.SerializerMethodField()
    paymentMethodId = serializers.SerializerMethodField()
    requiredPaymentDetails = serializers.SerializerMethodField()
    buyAsAGift = serializers.BooleanField(source="buy_as_gift")
    deliveryDetails = DeliveryDetailsOut(source="*")
    expirationDate = serializers.SerializerMethodField()
    status = serializers.CharField()

    def get_customer(self, order) -> dict:
        return {"locale": order.customer.locale, "email": order.customer.email}

    def get_priceBreakdown(self, order) -> dict:
        zero = order.total_price - order.total_price
        return {
            "offerPrice": order.offer_price,
            "discountAmount": order.discount_amount,
            "discountedPrice": order.discounted_price,
            "taxValue": order.tax_value,
            "customerServiceFee": zero,
            "paymentMethodFee": zero,
        }

    def get_taxRate(self, order) -> float:
        return 0

    def get_discount(self, order) -> dict:
        """`periods`: how many billing periods the discount lasts (Cleeng's SDK says so beside the price): a coupon
        discounts this purchase only, renewals are at the offer's price."""
        return {
            "applied": bool(order.coupon_id),
            "type": "coupon" if order.coupon_id else "",
            "periodType": "",
            "periods": 1 if order.coupon_id else 0,
            "code": order.coupon.code if order.coupon_id else "",
        }

    def get_paymentMethodId(self, order) -> int | None:
        return int(order.payment_method_id) if order.payment_method_id.isdigit() else None

    def get_requiredPaymentDetails(self, order) -> bool:
        """Whether paying needs a card: Cleeng's SDK asks for payment details only when this is true, and completes
        a free order (a full discount), or one the customer's account credit pays in full (issue 16), by paying it
        with none."""
        return order.total_price > _credit_for(order)

    def get_expirationDate(self, order) -> int:
        return unix(order.expires_at)


def _credit_for(order):
    """How much account credit paying the order would use (services.order_pay spends it: orders of one item)."""
    if order.fulfilment or order.quantity != 1 or order.status != order.Status.PENDING:
        return 0
    return min(credit_balance(customer=order.customer, currency=order.currency), order.total_price)


def _order_out(order):
    return {"order": OrderOut(order).data}


class OrderCreateIn(serializers.Serializer):
    offerId = serializers.CharField()
    customerId = serializers.IntegerField(required=False)
    paymentMethodId = serializers.IntegerField(required=False)
    buyAsAGift = serializers.BooleanField(required=False, default=False)
    couponCode = serializers.CharField(required=False, allow_blank=True, max_length=50)


class DeliveryDetailsIn(serializers.Serializer):
    recipientEmail = serializers.CharField(required=False, allow_blank=True, max_length=254)
    deliveryDate = UnixTimeField(required=False, allow_null=True)
    timeZone = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=64,
        validators=[validate_time_zone],
        help_text="The IANA time zone the delivery date was chosen in (e.g. America/Los_Angeles): the gifter's "
        "pages and emails show the delivery time there. Optional: without it, the customer's own zone.",
    )
    personalNote = serializers.CharField(
        required=False, allow_blank=True, trim_whitespace=False, max_length=NOTE_MAX_LENGTH
    )
    deliveryMethod = serializers.ChoiceField(
        choices=DeliveryMethod.values,
        required=False,
        help_text="email (default): the recipient is emailed at deliveryDate; handover: the gifter gives it in "
        "person, so no recipientEmail is needed and the gift is unclaimed (redeemable) once paid.",
    )
    designId = serializers.CharField(
        required=False,
        allow_blank=True,
        allow_null=True,
        max_length=40,
        help_text="An active gift design, by id or slug (e.g. birthday); empty: the plain one.",
    )
    language = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=35,
        help_text="The language the recipient reads the gift in (its emails, redeem page and certificate): one of "
        "the site's, as a language code or locale (de, de-DE, de_DE). Default: the customer's locale.",
    )


class OrderPatchIn(serializers.Serializer):
    buyAsAGift = serializers.BooleanField(required=False)
    couponCode = serializers.CharField(required=False, allow_blank=True, allow_null=True, max_length=50)
    paymentMethodId = serializers.IntegerField(required=False)
    deliveryDetails = DeliveryDetailsIn(required=False)


def _check_payment_method(method_id):
    """A publisher's payment method id; 0 is Cleeng's "none chosen yet" (its SDK sends it with every new order)."""
    if method_id and method_id not in {m["id"] for m in PUBLISHER_PAYMENT_METHODS}:
        raise invalid_body(_("Unknown paymentMethodId."))


def order_for_customer(customer, order_id):
    """The access rule for orders: the customer's own, else 404."""
    return get_object_or_404(
        Order.objects.select_related("offer", "customer", "coupon", "design"), pk=order_id, customer=customer
    )


class OrdersView(MediaStoreView):
    @extend_schema(
        request=OrderCreateIn,
        tags=["orders"],
        responses={200: in_envelope("OrderCreated", serializers.DictField()), **errors(401, 404, 422)},
    )
    def post(self, request):
        data = self.valid(OrderCreateIn, request.data)
        if data.get("customerId") not in (None, request.user.pk):
            raise MediaStoreError(_("customerId must be the logged-in customer's."), code="REQ0001")
        _check_payment_method(data.get("paymentMethodId"))
        order = services.order_create(
            customer=request.user,
            offer=offer_get(data["offerId"]),
            buy_as_gift=data["buyAsAGift"],
            coupon_code=data.get("couponCode") or None,
            payment_method_id=str(data.get("paymentMethodId") or ""),
        )
        return envelope(_order_out(order))


class OrderView(MediaStoreView):
    @extend_schema(tags=["orders"], responses={200: in_envelope("Order", serializers.DictField()), **errors(401, 404)})
    def get(self, request, order_id):
        return envelope(_order_out(order_for_customer(request.user, order_id)))

    @extend_schema(
        request=OrderPatchIn,
        tags=["orders"],
        responses={200: in_envelope("OrderUpdated", serializers.DictField()), **errors(401, 404, 409, 422)},
    )
    def patch(self, request, order_id):
        order = order_for_customer(request.user, order_id)
        data = self.valid(OrderPatchIn, request.data)
        _check_payment_method(data.get("paymentMethodId"))
        changes = {}
        if "buyAsAGift" in data:
            changes["buy_as_gift"] = data["buyAsAGift"]
        if "couponCode" in data:
            changes["coupon_code"] = data["couponCode"] or None
        if "paymentMethodId" in data:
            changes["payment_method_id"] = data["paymentMethodId"] or ""  # 0: none chosen
        details = data.get("deliveryDetails") or {}
        for wire, name in (
            ("recipientEmail", "recipient_email"),
            ("deliveryDate", "scheduled_at"),
            ("personalNote", "personal_note"),
            ("timeZone", "time_zone"),
        ):
            if wire in details:
                changes[name] = details[wire]
        if "deliveryMethod" in details:
            changes["delivery_method"] = details["deliveryMethod"]
        if "designId" in details:
            changes["design"] = design_for_checkout(details["designId"], field="deliveryDetails.designId")
        if "language" in details:
            changes["gift_language"] = services.gift_language_clean(
                details["language"], field="deliveryDetails.language"
            )
        order = services.order_update(order=order, **changes)
        return envelope(_order_out(order_for_customer(request.user, order.pk)))


class PaymentMethodsView(MediaStoreView):
    @extend_schema(
        tags=["payments"], responses={200: in_envelope("PaymentMethods", serializers.DictField()), **errors(401)}
    )
    def get(self, request):
        return envelope({"paymentMethods": PUBLISHER_PAYMENT_METHODS})


class PaymentIn(serializers.Serializer):
    orderId = serializers.IntegerField()
    paymentMethodId = serializers.IntegerField(required=False)
    paymentDetailId = serializers.IntegerField(required=False, help_text="A saved card (payment-details).")
    cardToken = serializers.CharField(required=False, max_length=100, help_text="A sandbox test token.")


class PaymentsView(MediaStoreView):
    @extend_schema(
        request=PaymentIn,
        tags=["payments"],
        responses={200: in_envelope("Payment", serializers.DictField()), **errors(401, 404, 409, 422)},
    )
    def post(self, request):
        data = self.valid(PaymentIn, request.data)
        _check_payment_method(data.get("paymentMethodId"))
        order = order_for_customer(request.user, data["orderId"])
        if data.get("paymentMethodId") in NOTHING_TO_PAY_METHODS and order.total_price > _credit_for(order):
            raise invalid_body(_("This payment method only completes an order with nothing to pay."))
        method = None
        if data.get("paymentDetailId") is not None:
            method = get_object_or_404(PaymentMethod, pk=data["paymentDetailId"], customer=request.user)
        try:
            result = ratelimit.attempt(
                "card-token",
                ratelimit.identities(request),
                lambda: services.order_pay(order=order, payment_method=method, card_token=data.get("cardToken")),
                is_guess=lambda error: getattr(error, "code", None) == services.FOREIGN_CARD_TOKEN,
                typed=False,
            )
        except ratelimit.LimitExceeded as limited:
            raise attempts_refused(limited) from None
        except PaymentError as error:
            raise MediaStoreError(error.message, code="PAYMENT_DECLINED", details={"reason": error.code}) from None
        payment = result.payment
        return envelope(
            {
                "payment": {
                    "id": payment.pk,
                    "orderId": order.pk,
                    "status": "captured",
                    "paymentGateway": payment.gateway,
                    "paymentMethod": "card",
                    "externalPaymentId": payment.reference,
                    "totalAmount": payment.amount,
                    "currency": payment.currency,
                    "paymentOperation": "initial-payment",
                    # Issue 16: what account credit paid before the card (totalAmount is the card's part).
                    "accountCreditAmount": credit_spent_on(order=order),
                },
                "transactionId": result.transaction.transaction_id,
                "giftId": result.gift.pk if result.gift else None,
                "subscriptionId": result.subscription.pk if result.subscription else None,
            }
        )


class PaymentDetailOut(serializers.Serializer):
    id = serializers.IntegerField()
    paymentGateway = serializers.CharField(source="gateway")
    paymentMethod = serializers.SerializerMethodField()
    paymentMethodSpecificParams = serializers.SerializerMethodField()
    active = serializers.BooleanField(source="is_default")

    def get_paymentMethod(self, pm) -> str:
        return "card"

    def get_paymentMethodSpecificParams(self, pm) -> dict:
        return {
            "variant": pm.brand.lower(),
            "lastCardFourDigits": pm.last4,
            "cardExpirationDate": f"{pm.exp_month:02d}/{pm.exp_year}",
        }


class PaymentDetailIn(serializers.Serializer):
    cardNumber = serializers.CharField(max_length=30)
    expMonth = serializers.IntegerField(min_value=1, max_value=12)
    expYear = serializers.IntegerField(min_value=2000, max_value=2100)


class PaymentDetailsView(MediaStoreView):
    @extend_schema(
        tags=["payments"], responses={200: in_envelope("PaymentDetails", serializers.DictField()), **errors(401, 404)}
    )
    def get(self, request, customer_id):
        customer = selectors.customer_self(request.user, customer_id)
        return envelope({"paymentDetails": PaymentDetailOut(customer.payment_methods.all(), many=True).data})

    @extend_schema(
        request=PaymentDetailIn,
        tags=["payments"],
        responses={201: in_envelope("PaymentDetailAdded", PaymentDetailOut), **errors(401, 404, 422)},
    )
    def post(self, request, customer_id):
        customer = selectors.customer_self(request.user, customer_id)
        data = self.valid(PaymentDetailIn, request.data)
        method = services.payment_method_add(
            customer=customer, card_number=data["cardNumber"], exp_month=data["expMonth"], exp_year=data["expYear"]
        )
        return envelope(PaymentDetailOut(method).data, 201)


@extend_schema_view(
    get=extend_schema(operation_id="customers_payment_details_cleeng_retrieve"),
    post=extend_schema(operation_id="customers_payment_details_cleeng_create"),
)
class CleengPaymentDetailsView(PaymentDetailsView):
    """The same, at Cleeng's own spelling of the path (customers/{id}/payment_details), which its SDK calls."""


class PaymentDetailView(MediaStoreView):
    @extend_schema(
        tags=["payments"],
        responses={200: in_envelope("PaymentDetailRemoved", serializers.DictField()), **errors(401, 404)},
    )
    def delete(self, request, payment_detail_id):
        method = get_object_or_404(PaymentMethod, pk=payment_detail_id, customer=request.user)
        services.payment_method_remove(payment_method=method)
        return envelope({})
