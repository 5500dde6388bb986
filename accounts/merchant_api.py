"""Merchant API (Chargebee v2 contract) endpoints of customers, their payment sources and subscriptions."""

from django.db.models import Prefetch
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.response import Response

from accounts import services
from accounts.models import Customer, PaymentMethod, Subscription
from accounts.resources import (
    CUSTOMER_SCHEMA,
    PAYMENT_SOURCE_SCHEMA,
    SUBSCRIPTION_SCHEMA,
    customer_resource,
    payment_source_resource,
    subscription_resource,
)
from gifts.merchant_api import IDEMPOTENCY
from gifts.models import Gift
from giftshop import validation
from giftshop.chargebee import (
    PAGE_PARAMETERS,
    ChargebeeError,
    MerchantView,
    answers,
    apply_filters,
    boolean,
    group,
    integer,
    listing,
    not_found,
    paginate,
    scalar,
    wrong_value,
)
from giftshop.errors import ServiceError

CUSTOMER = {"customer": CUSTOMER_SCHEMA}
PAYMENT_SOURCE = {"payment_source": PAYMENT_SOURCE_SCHEMA}
SUBSCRIPTION = {"subscription": SUBSCRIPTION_SCHEMA, "customer": CUSTOMER_SCHEMA}
FORM = {"application/x-www-form-urlencoded": OpenApiTypes.OBJECT}


def _customers():
    return Customer.objects.prefetch_related("payment_methods")


def customer_get(customer_id, param="id"):
    customer = _customers().filter(pk=int(customer_id)).first() if str(customer_id).isdecimal() else None
    if customer is None:
        raise not_found(f"Customer {customer_id} not found", param=param)
    return customer


class CustomersView(MerchantView):
    @extend_schema(tags=["customers"], parameters=[IDEMPOTENCY], request=FORM, responses=answers(CUSTOMER))
    def post(self, request):
        params = self.params(request)
        email = validation.email_address(scalar(params, "email"), field="email")
        if Customer.objects.filter(email__iexact=email).exists():
            raise ChargebeeError(
                f"A customer with email {email} already exists.",
                api_error_code="duplicate_entry",
                status=400,
                param="email",
            )
        customer = Customer.objects.create_user(
            email,
            first_name=validation.single_line(scalar(params, "first_name"), field="first_name", max_length=150),
            last_name=validation.single_line(scalar(params, "last_name"), field="last_name", max_length=150),
            locale=validation.single_line(scalar(params, "locale"), field="locale", max_length=10) or "en_US",
            currency=_currency(scalar(params, "preferred_currency_code")),
        )
        return Response({"customer": customer_resource(customer_get(customer.pk))})

    @extend_schema(
        operation_id="customers_list",
        tags=["customers"],
        parameters=[
            *PAGE_PARAMETERS,
            OpenApiParameter("email[is]", str),
            OpenApiParameter("email[starts_with]", str),
            OpenApiParameter("id[is]", str),
            OpenApiParameter("id[in]", str),
        ],
        responses=answers(CUSTOMER, many=True),
    )
    def get(self, request):
        params = self.params(request)
        rows, next_offset = paginate(apply_filters(_customers(), params, {"email": "email", "id": "pk"}), params)
        return Response(listing([{"customer": customer_resource(c)} for c in rows], next_offset))


def _currency(value):
    currency = (value or "").strip().upper()
    if currency and not (len(currency) == 3 and currency.isascii() and currency.isalpha()):
        raise wrong_value("preferred_currency_code should be a three-letter ISO 4217 code.", "preferred_currency_code")
    return currency


class CustomerView(MerchantView):
    @extend_schema(tags=["customers"], responses=answers(CUSTOMER))
    def get(self, request, customer_id):
        return Response({"customer": customer_resource(customer_get(customer_id))})


def _add_card(customer, make_default, action):
    try:
        method = action()
    except ServiceError as error:
        raise ChargebeeError(
            error.message,
            api_error_code="payment_method_verification_failed",
            type="payment",
            status=400,
            param=error.field,
        ) from None
    if make_default:
        PaymentMethod.objects.filter(customer=customer).exclude(pk=method.pk).update(is_default=False)
        PaymentMethod.objects.filter(pk=method.pk).update(is_default=True)
    return Response(
        {
            "customer": customer_resource(customer_get(customer.pk)),
            "payment_source": payment_source_resource(PaymentMethod.objects.get(pk=method.pk)),
        }
    )


class CreateCardView(MerchantView):
    @extend_schema(
        tags=["payment_sources"],
        parameters=[IDEMPOTENCY],
        request=FORM,
        responses=answers({**CUSTOMER, **PAYMENT_SOURCE}),
        description="Adds a card (sandbox test numbers) to a customer.",
    )
    def post(self, request):
        params = self.params(request)
        customer = customer_get(params.get("customer_id"), param="customer_id")
        card = group(params, "card")
        if not card.get("number"):
            raise wrong_value("card[number] cannot be blank", param="card[number]")
        exp_month = integer(card.get("expiry_month"), "card[expiry_month]", minimum=1, maximum=12, default=12)
        exp_year = integer(card.get("expiry_year"), "card[expiry_year]", minimum=2000, maximum=2100, default=2030)
        replace = boolean(scalar(params, "replace_primary_payment_source"), "replace_primary_payment_source")
        has_default = customer.payment_methods.filter(is_default=True).exists()
        return _add_card(
            customer,
            replace or not has_default,
            lambda: services.payment_method_add(
                customer=customer,
                card_number=card.get("number"),
                exp_month=exp_month,
                exp_year=exp_year,
                make_default=False,
            ),
        )


class CreateUsingTokenView(MerchantView):
    @extend_schema(
        tags=["payment_sources"],
        parameters=[IDEMPOTENCY],
        request=FORM,
        responses=answers({**CUSTOMER, **PAYMENT_SOURCE}),
        description="Adds a card from a gateway token (sandbox: tok_visa, tok_chargeDeclined, …).",
    )
    def post(self, request):
        params = self.params(request)
        customer = customer_get(params.get("customer_id"), param="customer_id")
        token = scalar(params, "token_id") or scalar(params, "reference_id")
        if not token:
            raise wrong_value("token_id cannot be blank", param="token_id")
        replace = boolean(scalar(params, "replace_primary_payment_source"), "replace_primary_payment_source")
        has_default = customer.payment_methods.filter(is_default=True).exists()
        return _add_card(
            customer,
            replace or not has_default,
            lambda: services.payment_method_from_token(customer=customer, token=token),
        )


class PaymentSourcesView(MerchantView):
    @extend_schema(
        operation_id="payment_sources_list",
        tags=["payment_sources"],
        parameters=[
            *PAGE_PARAMETERS,
            OpenApiParameter("customer_id[is]", str),
        ],
        responses=answers(PAYMENT_SOURCE, many=True),
    )
    def get(self, request):
        params = self.params(request)
        methods = apply_filters(PaymentMethod.objects.all(), params, {"customer_id": "customer_id"})
        rows, next_offset = paginate(methods, params)
        return Response(listing([{"payment_source": payment_source_resource(m)} for m in rows], next_offset))


class PaymentSourceView(MerchantView):
    @extend_schema(tags=["payment_sources"], responses=answers(PAYMENT_SOURCE))
    def get(self, request, source_id):
        pk = str(source_id).removeprefix("pm_")
        method = PaymentMethod.objects.filter(pk=int(pk)).first() if pk.isdecimal() else None
        if method is None:
            raise not_found(f"Payment source {source_id} not found", param="id")
        return Response({"payment_source": payment_source_resource(method)})


def _subscriptions():
    # Each entry carries its customer (with the default card): select and prefetch them so a page costs the same.
    return Subscription.objects.select_related("offer", "customer").prefetch_related(
        Prefetch("gifts", queryset=Gift.objects.only("pk", "subscription_id")), "customer__payment_methods"
    )


class SubscriptionsView(MerchantView):
    @extend_schema(
        operation_id="subscriptions_list",
        tags=["subscriptions"],
        parameters=[
            *PAGE_PARAMETERS,
            OpenApiParameter("customer_id[is]", str),
            OpenApiParameter("status[is]", str),
            OpenApiParameter("status[in]", str),
            OpenApiParameter("plan_id[is]", str),
        ],
        responses=answers(SUBSCRIPTION, many=True),
    )
    def get(self, request):
        params = self.params(request)
        subs = apply_filters(
            _subscriptions(), params, {"customer_id": "customer_id", "status": "status", "plan_id": "offer__short_id"}
        )
        rows, next_offset = paginate(subs, params)
        return Response(
            listing(
                [{"subscription": subscription_resource(s), "customer": customer_resource(s.customer)} for s in rows],
                next_offset,
            )
        )


class SubscriptionView(MerchantView):
    @extend_schema(tags=["subscriptions"], responses=answers(SUBSCRIPTION))
    def get(self, request, subscription_id):
        sub = _subscriptions().filter(pk=int(subscription_id)).first() if str(subscription_id).isdecimal() else None
        if sub is None:
            raise not_found(f"Subscription {subscription_id} not found", param="id")
        return Response(
            {"subscription": subscription_resource(sub), "customer": customer_resource(customer_get(sub.customer_id))}
        )
