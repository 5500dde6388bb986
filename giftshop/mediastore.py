"""Plumbing of the storefront API (Cleeng's MediaStore contract): the `{responseData, errors}` envelope, its
error codes, Unix times, customer JWTs, and the base view every storefront endpoint uses."""

import datetime as dt

import jwt
from django.conf import settings
from django.contrib.auth import get_user_model
from django.http import Http404, JsonResponse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import OpenApiResponse, inline_serializer
from rest_framework import exceptions, serializers, status
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from giftshop.errors import ServiceError

JWT_LIFETIME = dt.timedelta(minutes=15)
JWT_ALGORITHM = "HS256"


class MediaStoreError(exceptions.APIException):
    """An error answered in the envelope; `code` is one of the well-known codes (REQ0001, AUTH0001, …)."""

    def __init__(self, message, *, code=None, status_code=status.HTTP_422_UNPROCESSABLE_ENTITY, details=None):
        super().__init__(message)
        self.status_code, self.code, self.message, self.details = status_code, code, message, details


def attempts_refused(limited):
    """The answer to an attempt refused by giftshop.ratelimit (LimitExceeded): 429, or 503 while the counters
    cannot be reached, with Retry-After."""
    error = MediaStoreError(str(limited), status_code=limited.status)
    error.wait = limited.retry_after
    return error


def invalid_body(message):
    return MediaStoreError(message, code="REQ0001")


def invalid_query(message):
    return MediaStoreError(message, code="REQ0002")


# --- times on the wire -------------------------------------------------------------------------------------


def unix(when):
    return int(when.timestamp()) if when else None


def from_unix(seconds):
    return dt.datetime.fromtimestamp(seconds, tz=dt.UTC) if seconds is not None else None


class UnixTimeField(serializers.IntegerField):
    """Unix seconds on the wire; an aware UTC datetime inside."""

    MAX = 4_102_444_800  # 2100-01-01

    def to_internal_value(self, data):
        if isinstance(data, bool) or (isinstance(data, str) and not data.strip().isdecimal()):
            self.fail("invalid")
        seconds = super().to_internal_value(data)
        if not 0 <= seconds <= self.MAX:
            raise serializers.ValidationError(_("Must be Unix seconds between 1970 and 2100."))
        return from_unix(seconds)


# --- customer tokens ---------------------------------------------------------------------------------------


def _jwt_key():
    # A key derived for this purpose only, so a JWT can never double as another signed value.
    return f"mediastore-jwt:{settings.SECRET_KEY}"


def issue_jwt(customer, *, now=None):
    now = now or dt.datetime.now(dt.UTC)
    payload = {
        "customerId": customer.pk,
        "publisherId": int(settings.GIFTSHOP_PUBLISHER_ID)
        if settings.GIFTSHOP_PUBLISHER_ID.isdigit()
        else settings.GIFTSHOP_PUBLISHER_ID,
        "iat": int(now.timestamp()),
        "exp": int((now + JWT_LIFETIME).timestamp()),
        "sv": customer.session_stamp(),  # a password change since makes this token invalid
    }
    return jwt.encode(payload, _jwt_key(), algorithm=JWT_ALGORITHM)


class JWTAuthentication(BaseAuthentication):
    """`Authorization: Bearer <jwt>`; missing, invalid and expired tokens each get their own code."""

    def authenticate(self, request):
        header = get_authorization_header(request).split()
        if not header:
            return None
        if len(header) != 2 or header[0].lower() != b"bearer":
            raise MediaStoreError(_("Invalid JWT token."), code="AUTH0002", status_code=401)
        try:
            payload = jwt.decode(
                header[1].decode(), _jwt_key(), algorithms=[JWT_ALGORITHM], options={"require": ["exp", "customerId"]}
            )
        except jwt.ExpiredSignatureError:
            raise MediaStoreError(_("JWT token has expired."), code="AUTH0003", status_code=401) from None
        except (jwt.InvalidTokenError, UnicodeDecodeError):
            raise MediaStoreError(_("Invalid JWT token."), code="AUTH0002", status_code=401) from None
        if str(payload.get("publisherId")) != str(settings.GIFTSHOP_PUBLISHER_ID):
            raise MediaStoreError(_("Invalid JWT token."), code="AUTH0002", status_code=401)
        customers = get_user_model().objects
        try:  # get(), not first(): no ORDER BY email on every authenticated request
            customer = customers.get(pk=payload["customerId"], is_active=True)
        except (customers.model.DoesNotExist, ValueError, TypeError):
            raise MediaStoreError(_("Invalid JWT token."), code="AUTH0002", status_code=401) from None
        if payload.get("sv") != customer.session_stamp():  # the password changed since it was issued
            raise MediaStoreError(_("Invalid JWT token."), code="AUTH0002", status_code=401)
        return customer, payload

    def authenticate_header(self, request):
        return 'Bearer realm="mediastore"'


class JWTScheme(OpenApiAuthenticationExtension):
    target_class = JWTAuthentication
    name = "customerJWT"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}


class CustomerRequired(IsAuthenticated):
    message = gettext_lazy("Missing JWT token.")


# --- the envelope ------------------------------------------------------------------------------------------


def envelope(data, status_code=200, headers=None):
    return Response({"responseData": data, "errors": []}, status=status_code, headers=headers)


def exception_handler(exc, context):
    """Every storefront error, DRF's own included, in the envelope."""
    if isinstance(exc, Http404):
        exc = MediaStoreError(str(exc) or _("Not found."), status_code=404)
    if isinstance(exc, ServiceError):
        exc = MediaStoreError(
            exc.message,
            code=exc.code if exc.code.isupper() else None,
            status_code=exc.status,
            details={"field": exc.field} if exc.field else None,
        )
    if isinstance(exc, exceptions.NotAuthenticated):
        exc = MediaStoreError(_("Missing JWT token."), code="AUTH0001", status_code=401)
    elif isinstance(exc, exceptions.ParseError):
        exc = invalid_body(_("Invalid request body: %(detail)s") % {"detail": exc.detail})
    elif isinstance(exc, exceptions.ValidationError):
        exc = invalid_body(_flatten(exc.detail))
    if not isinstance(exc, exceptions.APIException):
        return None  # a real bug: Django's 500 handling and logging
    body = {"responseData": {}, "errors": [exc.message if isinstance(exc, MediaStoreError) else str(exc.detail)]}
    if getattr(exc, "code", None):
        body["code"] = exc.code
    if isinstance(exc, MediaStoreError) and exc.details:
        body["responseData"] = exc.details
    headers = {}
    if getattr(exc, "wait", None):
        headers["Retry-After"] = str(int(exc.wait))
    if isinstance(exc, exceptions.NotAuthenticated) or getattr(exc, "status_code", None) == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="mediastore"'
    return Response(body, status=exc.status_code, headers=headers)


def _flatten(detail, prefix=""):
    if isinstance(detail, dict):
        return "; ".join(_flatten(value, f"{prefix}{key}.") for key, value in detail.items())
    if isinstance(detail, list):
        return "; ".join(_flatten(item, prefix) for item in detail)
    return f"{prefix.rstrip('.')}: {detail}" if prefix else str(detail)


class MediaStoreView(APIView):
    """Base of every storefront endpoint: customer JWT, the envelope, JSON only."""

    authentication_classes = [JWTAuthentication]
    permission_classes = [CustomerRequired]

    def get_exception_handler(self):
        return exception_handler

    def valid(self, serializer_class, data):
        """The validated data of `serializer_class`, or REQ0001 naming what is wrong."""
        serializer = serializer_class(data=data if data is not None else {})
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data


class PublicMediaStoreView(MediaStoreView):
    # No authentication at all: a client that still sends its expired JWT must be able to log in or refresh.
    authentication_classes = []
    permission_classes = [AllowAny]


# --- schema helpers ----------------------------------------------------------------------------------------

ERROR_ENVELOPE = inline_serializer(
    "MediaStoreError",
    {
        "responseData": serializers.DictField(),
        "errors": serializers.ListField(child=serializers.CharField()),
        "code": serializers.CharField(required=False),
    },
)


def in_envelope(name, serializer):
    if isinstance(serializer, type):
        serializer = serializer()  # a field must be an instance: a class would be dropped from the schema silently
    return inline_serializer(
        name, {"responseData": serializer, "errors": serializers.ListField(child=serializers.CharField())}
    )


def errors(*codes):
    descriptions = {
        400: "Malformed input",
        401: "Missing (AUTH0001), invalid (AUTH0002) or expired (AUTH0003) JWT",
        404: "Not found (or not yours)",
        409: "Refused in the current state",
        410: "Expired",
        422: "Invalid body (REQ0001) or query (REQ0002)",
        429: "Too many attempts",
        503: "Gift codes cannot be checked just now (the attempt counters are unreachable); retry after Retry-After",
    }
    return {code: OpenApiResponse(ERROR_ENVELOPE, description=descriptions[code]) for code in codes}


@csrf_exempt  # a 404 in the envelope for any method, not Django's CSRF page (the API uses no cookies)
def not_found(request, *args, **kwargs):
    """Unknown storefront paths answer in the envelope too."""
    return JsonResponse({"responseData": {}, "errors": [_("Not found.")]}, status=404)
