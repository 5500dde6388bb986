"""Storefront (MediaStore) endpoints for customers: login, tokens, profile, ledger, holdings, access to an offer."""

from django.conf import settings
from django.http import Http404
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers

from accounts import selectors, services
from giftshop import ratelimit, validation
from giftshop.errors import ServiceError
from giftshop.mediastore import (
    MediaStoreError,
    MediaStoreView,
    PublicMediaStoreView,
    attempts_refused,
    envelope,
    errors,
    in_envelope,
    invalid_body,
    invalid_query,
    issue_jwt,
)
from offers.selectors import offer_get


class TokensOut(serializers.Serializer):
    jwt = serializers.CharField()
    refreshToken = serializers.CharField()
    customerToken = serializers.CharField()
    customerId = serializers.IntegerField()


def _tokens(customer):
    token = issue_jwt(customer)
    return {
        "jwt": token,
        "refreshToken": services.refresh_token_issue(customer=customer),
        "customerToken": token,
        "customerId": customer.pk,
    }


def _check_publisher(publisher_id):
    if str(publisher_id) != str(settings.GIFTSHOP_PUBLISHER_ID):
        raise MediaStoreError(_("Unknown publisherId."), code="REQ0001")


class LoginIn(serializers.Serializer):
    email = serializers.CharField()
    password = serializers.CharField(trim_whitespace=False)
    publisherId = serializers.CharField()


class LoginView(PublicMediaStoreView):
    @extend_schema(
        request=LoginIn,
        responses={200: in_envelope("Login", TokensOut), **errors(401, 422, 429)},
        tags=["auth"],
        auth=[],
    )
    def post(self, request):
        data = self.valid(LoginIn, request.data)
        _check_publisher(data["publisherId"])
        try:
            customer = ratelimit.login_attempt(
                request,
                data["email"],
                lambda: services.customer_login(email=data["email"], password=data["password"]),
                is_guess=lambda error: isinstance(error, ServiceError) and error.code == "USER0001",
            )
        except ratelimit.LimitExceeded as limited:
            raise attempts_refused(limited) from None
        return envelope(_tokens(customer))


class RefreshIn(serializers.Serializer):
    refreshToken = serializers.CharField()


class RefreshOut(serializers.Serializer):
    jwt = serializers.CharField()
    refreshToken = serializers.CharField()


class RefreshView(PublicMediaStoreView):
    @extend_schema(
        request=RefreshIn,
        responses={200: in_envelope("Refresh", RefreshOut), **errors(401, 422)},
        tags=["auth"],
        auth=[],
    )
    def post(self, request):
        data = self.valid(RefreshIn, request.data)
        customer, refresh_token = services.refresh_token_use(token=data["refreshToken"])
        return envelope({"jwt": issue_jwt(customer), "refreshToken": refresh_token})


class RegisterIn(serializers.Serializer):
    email = serializers.CharField()
    password = serializers.CharField(trim_whitespace=False)
    publisherId = serializers.CharField()
    locale = serializers.CharField(required=False, default="en_US", max_length=10)
    # Blank is allowed: Cleeng's SDK registers with what GET /locales answered, and the shop does not place
    # visitors by address.
    country = serializers.RegexField(r"^[A-Za-z]{2}$", required=False, default="", allow_blank=True)
    currency = serializers.RegexField(r"^[A-Za-z]{3}$", required=False, default="", allow_blank=True)
    firstName = serializers.CharField(required=False, default="", allow_blank=True)
    lastName = serializers.CharField(required=False, default="", allow_blank=True)


class CustomerOut(serializers.Serializer):
    id = serializers.IntegerField()
    email = serializers.EmailField()
    firstName = serializers.CharField(source="first_name")
    lastName = serializers.CharField(source="last_name")
    country = serializers.CharField()
    locale = serializers.CharField()
    currency = serializers.CharField()
    timeZone = serializers.CharField(source="time_zone")
    regDate = serializers.SerializerMethodField()

    def get_regDate(self, customer) -> int:
        return int(customer.date_joined.timestamp())


class CustomersView(PublicMediaStoreView):
    @extend_schema(
        request=RegisterIn,
        responses={200: in_envelope("Registration", TokensOut), **errors(422)},
        tags=["customers"],
        auth=[],
    )
    def post(self, request):
        data = self.valid(RegisterIn, request.data)
        _check_publisher(data["publisherId"])
        try:
            ratelimit.registration_attempt(request)
        except ratelimit.LimitExceeded as limited:
            raise attempts_refused(limited) from None
        customer = services.customer_register(
            email=data["email"],
            password=data["password"],
            first_name=data["firstName"],
            last_name=data["lastName"],
            locale=data["locale"],
            country=data["country"],
            currency=data["currency"],
        )
        return envelope(_tokens(customer))


class CustomerPatchIn(serializers.Serializer):
    firstName = serializers.CharField(required=False, allow_blank=True, max_length=150)
    lastName = serializers.CharField(required=False, allow_blank=True, max_length=150)
    locale = serializers.CharField(required=False, max_length=10)
    country = serializers.RegexField(r"^[A-Z]{2}$", required=False)
    currency = serializers.RegexField(r"^[A-Z]{3}$", required=False)
    timeZone = serializers.CharField(required=False, allow_blank=True, max_length=64)


FIELD_NAMES = {"firstName": "first_name", "lastName": "last_name", "timeZone": "time_zone"}


class CustomerView(MediaStoreView):
    @extend_schema(responses={200: in_envelope("Customer", CustomerOut), **errors(401, 404)}, tags=["customers"])
    def get(self, request, customer_id):
        return envelope(CustomerOut(selectors.customer_self(request.user, customer_id)).data)

    @extend_schema(
        request=CustomerPatchIn,
        responses={200: in_envelope("CustomerUpdated", CustomerOut), **errors(401, 404, 422)},
        tags=["customers"],
    )
    def patch(self, request, customer_id):
        customer = selectors.customer_self(request.user, customer_id)
        data = self.valid(CustomerPatchIn, request.data)
        customer = services.customer_update(
            customer=customer, **{FIELD_NAMES.get(key, key): value for key, value in data.items()}
        )
        return envelope(CustomerOut(customer).data)


class TransactionOut(serializers.Serializer):
    transactionId = serializers.CharField(source="transaction_id")
    transactionDate = serializers.SerializerMethodField()
    offerId = serializers.CharField(source="offer.long_id")
    offerTitle = serializers.CharField(source="offer.title")
    offerType = serializers.SerializerMethodField()
    paymentMethod = serializers.SerializerMethodField()
    amount = serializers.DecimalField(max_digits=12, decimal_places=2, coerce_to_string=False)
    currency = serializers.CharField()
    transactionType = serializers.CharField(source="kind")
    targetType = serializers.CharField(source="target_type")
    targetId = serializers.CharField(source="target_id")

    def get_transactionDate(self, tx) -> int:
        return int(tx.occurred_at.timestamp())

    def get_offerType(self, tx) -> str:
        return "S"

    def get_paymentMethod(self, tx) -> str:
        return "card"


def _page(request, default_limit=25):
    try:
        limit = int(request.query_params.get("limit", default_limit))
        offset = int(request.query_params.get("offset", 0))
    except ValueError:
        raise invalid_query(_("limit and offset must be whole numbers.")) from None
    if not 1 <= limit <= 100 or not 0 <= offset <= validation.MAX_ROW_ID:
        raise invalid_query(_("limit must be between 1 and 100 and offset a whole number from 0."))
    return limit, offset


PAGE_PARAMS = [OpenApiParameter("limit", int, description="1 to 100"), OpenApiParameter("offset", int)]


class TransactionsView(MediaStoreView):
    @extend_schema(
        parameters=PAGE_PARAMS,
        tags=["customers"],
        responses={200: in_envelope("Transactions", serializers.DictField()), **errors(401, 404, 422)},
    )
    def get(self, request, customer_id):
        customer = selectors.customer_self(request.user, customer_id)
        limit, offset = _page(request)
        rows, total = selectors.transaction_page(customer=customer, limit=limit, offset=offset)
        return envelope({"items": TransactionOut(rows, many=True).data, "totalCount": total})


class SubscriptionOut(serializers.Serializer):
    subscriptionId = serializers.IntegerField(source="pk")
    offerId = serializers.CharField(source="offer.long_id")
    offerTitle = serializers.CharField(source="offer.title")
    status = serializers.CharField()
    startedAt = serializers.SerializerMethodField()
    expiresAt = serializers.SerializerMethodField()
    nextPaymentAt = serializers.SerializerMethodField()
    autoRenew = serializers.BooleanField(source="auto_renew")
    period = serializers.CharField(source="offer.period")
    totalPrice = serializers.DecimalField(source="offer.price", max_digits=12, decimal_places=2, coerce_to_string=False)
    currency = serializers.CharField(source="offer.currency")
    origin = serializers.CharField()

    def get_startedAt(self, sub) -> int:
        return int(sub.term_start.timestamp())

    def get_expiresAt(self, sub) -> int:
        return int(sub.term_end.timestamp())

    def get_nextPaymentAt(self, sub) -> int | None:
        return int(sub.term_end.timestamp()) if sub.auto_renew and sub.status == "active" else None


class SubscriptionsView(MediaStoreView):
    @extend_schema(
        parameters=PAGE_PARAMS,
        tags=["customers"],
        responses={200: in_envelope("Subscriptions", serializers.DictField()), **errors(401, 404, 422)},
    )
    def get(self, request, customer_id):
        customer = selectors.customer_self(request.user, customer_id)
        limit, offset = _page(request)
        rows, total = selectors.subscription_page(customer=customer, limit=limit, offset=offset)
        return envelope({"items": SubscriptionOut(rows, many=True).data, "totalCount": total})


class HeldOfferOut(serializers.Serializer):
    offerId = serializers.CharField(source="offer.long_id")
    offerTitle = serializers.CharField(source="offer.title")
    offerType = serializers.SerializerMethodField()
    status = serializers.CharField()
    expiresAt = serializers.SerializerMethodField()
    subscriptionId = serializers.IntegerField(source="pk")

    def get_offerType(self, sub) -> str:
        return "S"

    def get_expiresAt(self, sub) -> int:
        return int(sub.term_end.timestamp())


class CustomerOffersView(MediaStoreView):
    @extend_schema(
        tags=["customers"], responses={200: in_envelope("CustomerOffers", serializers.DictField()), **errors(401, 404)}
    )
    def get(self, request, customer_id):
        customer = selectors.customer_self(request.user, customer_id)
        rows = selectors.subscriptions_with_access(customer=customer)
        return envelope({"items": HeldOfferOut(rows, many=True).data})


class CustomerOfferOut(serializers.Serializer):
    offerId = serializers.CharField(source="offer.long_id")
    offerTitle = serializers.CharField(source="offer.title")
    period = serializers.CharField(source="offer.period")
    offerPrice = serializers.DecimalField(source="offer.price", max_digits=12, decimal_places=2, coerce_to_string=False)
    customerPriceInclTax = serializers.DecimalField(
        source="offer.price", max_digits=12, decimal_places=2, coerce_to_string=False
    )
    customerCurrency = serializers.CharField(source="offer.currency")
    accessGranted = serializers.BooleanField(source="access_granted")
    giftable = serializers.BooleanField(source="offer.giftable")


class OfferForCustomerView(MediaStoreView):
    @extend_schema(
        responses={200: in_envelope("OfferForCustomer", CustomerOfferOut), **errors(401, 404)}, tags=["offers"]
    )
    def get(self, request, offer_id, email):
        if email.strip().lower() != request.user.email:
            raise Http404(_("Customer not found."))
        offer = offer_get(offer_id)
        granted = selectors.customer_has_access(request.user, offer)
        return envelope(CustomerOfferOut({"offer": offer, "access_granted": granted}).data)


# --- what Cleeng's own front end (@cleeng/mediastore-sdk) asks for besides ---------------------------------


class LocalesView(PublicMediaStoreView):
    @extend_schema(tags=["customers"], auth=[], responses={200: in_envelope("Locales", serializers.DictField())})
    def get(self, request):
        """Cleeng answers the visitor's country, currency and locale (placed by IP address), and its SDK registers
        new customers with them. The shop places nobody: its default locale, no country, no currency."""
        return envelope({"country": "", "currency": "", "locale": "en_US"})


class PasswordResetIn(serializers.Serializer):
    customerEmail = serializers.EmailField(max_length=254)
    publisherId = serializers.CharField()
    resetUrl = serializers.CharField(required=False, allow_blank=True, allow_null=True)


class PasswordResetView(PublicMediaStoreView):
    @extend_schema(
        request=PasswordResetIn,
        tags=["customers"],
        auth=[],
        responses={200: in_envelope("PasswordReset", serializers.DictField()), **errors(422)},
    )
    def put(self, request):
        """The same answer for every address (SEC-9): the owner of an account, if any, is emailed a link to the
        shop's own password page (`resetUrl` is not followed: a link to anywhere else would be a phishing aid)."""
        data = self.valid(PasswordResetIn, request.data)
        _check_publisher(data["publisherId"])
        services.password_link_request(email=data["customerEmail"].strip())
        return envelope({"success": True})


# The shop asks one thing of its customers, as its web pages do by registering and buying: its terms.
TERMS_CONSENT = {"name": "terms", "version": "1", "required": True, "label": "I accept the Terms and Conditions."}


class PublisherConsentsView(PublicMediaStoreView):
    @extend_schema(
        tags=["customers"],
        auth=[],
        responses={200: in_envelope("PublisherConsents", serializers.DictField()), **errors(404)},
    )
    def get(self, request, publisher_id):
        """The consents a customer gives when registering through a storefront: the shop's terms."""
        if str(publisher_id) != str(settings.GIFTSHOP_PUBLISHER_ID):
            raise Http404(_("Publisher not found."))
        return envelope({"consents": [TERMS_CONSENT]})


class ConsentIn(serializers.Serializer):
    name = serializers.ChoiceField(choices=[TERMS_CONSENT["name"]])
    version = serializers.CharField(required=False, max_length=20)
    state = serializers.ChoiceField(choices=["accepted", "declined"])


class ConsentsIn(serializers.Serializer):
    consents = serializers.ListField(child=ConsentIn(), max_length=10)


class CustomerConsentsView(MediaStoreView):
    @extend_schema(
        tags=["customers"], responses={200: in_envelope("Consents", serializers.DictField()), **errors(401, 404)}
    )
    def get(self, request, customer_id):
        """An account is held under the shop's terms: they are accepted, in their only version. (Cleeng's SDK
        also asks again and again while this list is empty.)"""
        customer = selectors.customer_self(request.user, customer_id)
        consent = {
            **TERMS_CONSENT,
            "customerId": str(customer.pk),
            "state": "accepted",
            "newestVersion": TERMS_CONSENT["version"],
            "needsUpdate": False,
            "date": int(customer.date_joined.timestamp()),
        }
        return envelope({"consents": [consent]})

    @extend_schema(
        request=ConsentsIn,
        tags=["customers"],
        responses={200: in_envelope("ConsentsUpdated", serializers.DictField()), **errors(401, 404, 422)},
    )
    def put(self, request, customer_id):
        """The SDK sends the consents right after registering. Nothing is stored: an account is held under the
        terms, so they cannot be declined."""
        selectors.customer_self(request.user, customer_id)
        consents = self.valid(ConsentsIn, request.data)["consents"]
        if any(consent["state"] != "accepted" for consent in consents):
            raise invalid_body(_("The terms are required to hold an account."))
        return envelope({})


class CaptureStatusView(MediaStoreView):
    @extend_schema(
        tags=["customers"], responses={200: in_envelope("CaptureStatus", serializers.DictField()), **errors(401, 404)}
    )
    def get(self, request, customer_id):
        """Cleeng's Capture (extra questions after registering) is not a feature of the shop: never shown."""
        selectors.customer_self(request.user, customer_id)
        return envelope({"isCaptureEnabled": False, "shouldCaptureBeDisplayed": False, "settings": []})


class SwitchAvailabilityView(MediaStoreView):
    @extend_schema(
        tags=["customers"],
        responses={200: in_envelope("SwitchAvailability", serializers.DictField()), **errors(401, 404)},
    )
    def get(self, request, customer_id, offer_id):
        """Moving a subscription to another plan (upgrade, downgrade) is not a feature of the shop: none available."""
        selectors.customer_self(request.user, customer_id)
        offer_get(offer_id)
        return envelope({"available": [], "unavailable": []})


class SwitchesView(MediaStoreView):
    @extend_schema(tags=["customers"], responses={200: in_envelope("Switches", serializers.ListField()), **errors(401)})
    def get(self, request):
        """The customer's plan switches in progress: never any."""
        return envelope([])


class CaptureIn(serializers.Serializer):
    firstName = serializers.CharField(required=False, allow_blank=True, allow_null=True, max_length=150)
    lastName = serializers.CharField(required=False, allow_blank=True, allow_null=True, max_length=150)


class CaptureView(MediaStoreView):
    @extend_schema(
        request=CaptureIn,
        tags=["customers"],
        responses={200: in_envelope("CaptureUpdated", serializers.DictField()), **errors(401, 404, 422)},
    )
    def put(self, request, customer_id):
        """Cleeng's SDK saves a profile's names here too (its capture answers). The names are kept; the other
        answers (address, phone, birth date, …) are not: the shop collects none."""
        customer = selectors.customer_self(request.user, customer_id)
        data = self.valid(CaptureIn, request.data)
        names = {FIELD_NAMES[key]: value for key, value in data.items() if value is not None}
        services.customer_update(customer=customer, **names)
        return envelope({})
