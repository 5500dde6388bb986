"""Merchant API (Chargebee v2 contract) endpoints of customers and their subscriptions (their payment sources are
billing's)."""
# Messages here stay in English, untranslated: they are part of the Chargebee v2 wire contract its client reads.

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.response import Response

from accounts.models import Customer, Subscription
from accounts.resources import (
    CUSTOMER_SCHEMA,
    SUBSCRIPTION_SCHEMA,
    customer_resource,
    subscription_resource,
)
from giftshop import validation
from giftshop.chargebee import (
    IDEMPOTENCY_PARAMETER,
    PAGE_PARAMETERS,
    ChargebeeError,
    MerchantView,
    answers,
    get_or_not_found,
    page_answer,
    scalar,
    wrong_value,
)

CUSTOMER = {"customer": CUSTOMER_SCHEMA}
SUBSCRIPTION = {"subscription": SUBSCRIPTION_SCHEMA, "customer": CUSTOMER_SCHEMA}
FORM = {"application/x-www-form-urlencoded": OpenApiTypes.OBJECT}


def _customers():
    return Customer.objects.prefetch_related("payment_methods")


def customer_get(customer_id, param="id"):
    return get_or_not_found(_customers(), customer_id, "Customer", param=param)


class CustomersView(MerchantView):
    @extend_schema(tags=["customers"], parameters=[IDEMPOTENCY_PARAMETER], request=FORM, responses=answers(CUSTOMER))
    def post(self, request):
        params = self.params(request)
        email = validation.email_address(scalar(params, "email"), field="email")
        if Customer.objects.owning(email).exists():
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
        filters = {"email": "email", "id": "pk"}
        return page_answer(_customers(), params, lambda c: {"customer": customer_resource(c)}, filters=filters)


def _currency(value):
    currency = (value or "").strip().upper()
    if currency and not (len(currency) == 3 and currency.isascii() and currency.isalpha()):
        raise wrong_value("preferred_currency_code should be a three-letter ISO 4217 code.", "preferred_currency_code")
    return currency


class CustomerView(MerchantView):
    @extend_schema(tags=["customers"], responses=answers(CUSTOMER))
    def get(self, request, customer_id):
        return Response({"customer": customer_resource(customer_get(customer_id))})


def _subscriptions():
    # Each entry carries its customer (with the default card): select and prefetch them so a page costs the same.
    return Subscription.objects.select_related("offer", "customer").prefetch_related(
        "gifts", "customer__payment_methods"
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
        return page_answer(
            _subscriptions(),
            params,
            lambda s: {"subscription": subscription_resource(s), "customer": customer_resource(s.customer)},
            filters={"customer_id": "customer_id", "status": "status", "plan_id": "offer__short_id"},
        )


class SubscriptionView(MerchantView):
    @extend_schema(tags=["subscriptions"], responses=answers(SUBSCRIPTION))
    def get(self, request, subscription_id):
        sub = get_or_not_found(_subscriptions(), subscription_id, "Subscription")
        return Response(
            {"subscription": subscription_resource(sub), "customer": customer_resource(customer_get(sub.customer_id))}
        )
