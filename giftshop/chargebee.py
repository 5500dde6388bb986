"""Plumbing of the merchant API (Chargebee API v2 contract): API-key auth, bracket-notation parameters, list
filters and pages, Chargebee-shaped errors, per-key rate limits and idempotency keys."""
# Messages here stay in English, untranslated: they are part of the Chargebee v2 wire contract its client reads.

import ast
import base64
import binascii
import hashlib
import json
import logging
import time
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.http import Http404, HttpResponse, JsonResponse
from django.utils import timezone, translation
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse
from redis.exceptions import RedisError
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.permissions import BasePermission
from rest_framework.response import Response
from rest_framework.views import APIView

from giftshop import validation
from giftshop.errors import ServiceError
from giftshop.models import ApiKey, IdempotencyRecord
from giftshop.parsers import JSONParser

logger = logging.getLogger("django.request")
IDEMPOTENCY_HEADER = "chargebee-idempotency-key"
REPLAYED_HEADER = "chargebee-idempotency-replayed"
IDEMPOTENCY_RETENTION = timedelta(hours=24)
# A key whose first request has not answered within this is taken to have died with its worker: a retry runs.
IDEMPOTENCY_IN_FLIGHT = timedelta(minutes=5)


class ChargebeeError(exceptions.APIException):
    """An error in Chargebee's shape. `type` is invalid_request, payment or operation_failed."""

    def __init__(self, message, *, api_error_code, status=400, type="invalid_request", param=None, error_code=None):
        super().__init__(message)
        self.status_code, self.message, self.api_error_code = status, message, api_error_code
        self.type, self.param, self.error_code = type, param, error_code or api_error_code

    def body(self):
        body = {
            "message": self.message,
            "type": self.type,
            "api_error_code": self.api_error_code,
            "error_code": self.error_code,
            "error_msg": self.message,
            "http_status_code": self.status_code,
        }
        if self.param:
            body["param"] = self.param
        if self.type is None:  # authentication and limit errors carry no type in Chargebee's answers
            del body["type"]
        return body


# --- response schemas: what the merchant API documents, and schemathesis holds every answer to --------------

STRING, INTEGER, BOOLEAN = {"type": "string"}, {"type": "integer"}, {"type": "boolean"}


def object_schema(name, /, *, required=(), **properties):
    """A Chargebee object (`"object": name`) with its properties typed. Other keys are allowed, as in Chargebee's
    own answers: they gain fields over time and clients ignore what they do not know."""
    return {
        "type": "object",
        "required": ["object", *required],
        "properties": {"object": {"type": "string", "enum": [name]}, **properties},
    }


def resource_schema(name, /, *, required=(), **properties):
    return object_schema(name, required=["id", *required], id=STRING, **properties)


ERROR_SCHEMA = {
    "type": "object",
    "required": ["message", "api_error_code", "error_code", "error_msg", "http_status_code"],
    "properties": {
        "message": STRING,
        "type": {"type": "string", "enum": ["invalid_request", "payment", "operation_failed"]},
        "api_error_code": STRING,
        "param": STRING,
        "error_code": STRING,
        "error_msg": STRING,
        "http_status_code": INTEGER,
    },
}
ERRORS = {
    code: OpenApiResponse(ERROR_SCHEMA, description=text)
    for code, text in {
        400: "param_wrong_value, or a payment error (type payment)",
        401: "api_authentication_failed",
        403: "read-only key",
        404: "resource_not_found",
        409: "invalid_state_for_request, or a request with this idempotency key still in progress",
        422: "unable_to_process_request: idempotency key reused with another request",
        429: "api_request_limit_exceeded (Retry-After)",
    }.items()
}


def answers(resources, *, optional=None, many=False):
    """An operation's documented answers: 200 with `{name: resource, …}` (with `many`, a page of them:
    `{"list": [{…}], "next_offset"}`), and the errors."""
    entry = {"type": "object", "required": list(resources), "properties": {**resources, **(optional or {})}}
    if many:
        entry = {
            "type": "object",
            "required": ["list"],
            "properties": {"list": {"type": "array", "items": entry}, "next_offset": STRING},
        }
    return {200: OpenApiResponse(entry), **ERRORS}


def not_found(message="Sorry, we couldn't find that resource", param=None):
    return ChargebeeError(message, api_error_code="resource_not_found", status=404, param=param)


def wrong_value(message, param=None):
    return ChargebeeError(message, api_error_code="param_wrong_value", status=400, param=param)


def invalid_state(message):
    return ChargebeeError(message, api_error_code="invalid_state_for_request", status=409)


SERVICE_ERROR_CODES = {
    400: "param_wrong_value",
    404: "resource_not_found",
    409: "invalid_state_for_request",
    410: "invalid_state_for_request",
    422: "param_wrong_value",
}


def exception_handler(exc, context):
    if isinstance(exc, Http404):
        exc = not_found()
    elif isinstance(exc, ServiceError):
        status = 400 if exc.status == 422 else exc.status
        exc = ChargebeeError(
            exc.message,
            api_error_code=SERVICE_ERROR_CODES.get(exc.status, "param_wrong_value"),
            status=status,
            param=exc.field,
        )
    elif isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
        exc = ChargebeeError(
            str(exc.detail),
            api_error_code="api_authentication_failed",
            status=401,
            type=None,
        )
    elif isinstance(exc, exceptions.PermissionDenied):
        exc = ChargebeeError(str(exc.detail), api_error_code="api_authorization_failed", status=403, type=None)
    elif isinstance(exc, exceptions.MethodNotAllowed):
        exc = ChargebeeError(str(exc.detail), api_error_code="http_method_not_supported", status=405, type=None)
    elif isinstance(exc, exceptions.Throttled):
        exc_wait = exc.wait
        exc = ChargebeeError(
            "Sorry, access has been blocked temporarily due to request count exceeding acceptable limits.",
            api_error_code="api_request_limit_exceeded",
            status=429,
            type=None,
        )
        exc.wait = exc_wait
    elif isinstance(exc, exceptions.ParseError | exceptions.UnsupportedMediaType | exceptions.ValidationError):
        exc = wrong_value(str(getattr(exc, "detail", exc)))
    if not isinstance(exc, ChargebeeError):
        return None
    body = exc.body()
    headers = {"Retry-After": str(int(exc.wait))} if getattr(exc, "wait", None) else {}
    if exc.status_code == 401:
        headers["WWW-Authenticate"] = 'Basic realm="api"'
    return Response(body, status=exc.status_code, headers=headers)


def error_response(error):
    body = error.body()
    return JsonResponse(body, status=error.status_code)


@csrf_exempt  # a 404 in Chargebee's shape for any method, not Django's CSRF page (the API uses no cookies)
def unknown_path(request, *args, **kwargs):
    return error_response(not_found("Sorry, we couldn't find that resource"))


class MerchantErrorMiddleware:
    """Requests under /api/v2/ run in English, whatever Accept-Language or language cookie they carry (the
    Chargebee contract's messages are read by a program, not a person), and their unhandled errors answer in
    Chargebee's shape (Django still logs them)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if not request.path.startswith("/api/v2/"):
            return self.get_response(request)
        with translation.override("en"):
            response = self.get_response(request)
        response.headers["Content-Language"] = "en"  # LocaleMiddleware, outside, would name the visitor's
        return response

    def process_exception(self, request, exception):
        if not request.path.startswith("/api/v2/"):
            return None
        logger.exception("merchant API error on %s", request.path)
        return error_response(
            ChargebeeError(
                "Sorry, something went wrong when trying to process the request.",
                api_error_code="internal_error",
                status=500,
                type=None,
            )
        )


# --- authentication ----------------------------------------------------------------------------------------


def key_digest(raw_key):
    return hashlib.sha256(raw_key.encode()).hexdigest()


def api_key_from_request(request):
    """The active ApiKey named by `Authorization: Basic <key>:` (or None)."""
    header = request.META.get("HTTP_AUTHORIZATION", "")
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic" or not encoded:
        return None
    try:
        username = base64.b64decode(encoded.strip(), validate=True).decode().partition(":")[0]
    except (binascii.Error, UnicodeDecodeError):
        return None
    if not username:
        return None
    return ApiKey.objects.filter(key_digest=key_digest(username), revoked_at__isnull=True).first()


class ApiKeyAuthentication(BaseAuthentication):
    def authenticate(self, request):
        api_key = api_key_from_request(request)
        if api_key is None:
            raise exceptions.AuthenticationFailed(
                "Sorry, authentication failed. Invalid api key"
                if request.META.get("HTTP_AUTHORIZATION")
                else "Sorry, authentication failed. Provide your API key as the HTTP Basic username."
            )
        now = timezone.now()
        if api_key.last_used_at is None or now - api_key.last_used_at > timedelta(minutes=1):
            ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
        return None, api_key

    def authenticate_header(self, request):
        return 'Basic realm="api"'


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = ApiKeyAuthentication
    name = "apiKey"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "basic", "description": "The API key as username, empty password."}


class WritesNeedFullKey(BasePermission):
    message = "Sorry, this operation is not allowed with a read-only API key."

    def has_permission(self, request, view):
        if request.auth is None:
            return False
        return request.method in ("GET", "HEAD", "OPTIONS") or request.auth.kind == "full"


def rate_limit(api_key):
    """Fixed one-minute window per key, counted atomically in the cache (Redis in production). It fails open: the
    limit protects capacity, not a secret, so a cache outage must not refuse (or 500) the merchant's requests."""
    limit = settings.MERCHANT_API_RATE_LIMIT
    now = int(time.time())
    key = f"merchant-rate:{api_key.pk}:{now // 60}"
    try:
        cache.add(key, 0, timeout=61)
        try:
            count = cache.incr(key)
        except ValueError:
            count = 1
    except RedisError as error:
        logger.warning("merchant API rate limit not applied (API key %s), cache unavailable: %r", api_key.pk, error)
        return
    if count > limit:
        raise exceptions.Throttled(wait=60 - now % 60)


# --- parameters --------------------------------------------------------------------------------------------


def _parse_key(key):
    head, _, rest = key.partition("[")
    parts = [head]
    while rest:
        part, _, rest = rest.partition("]")
        parts.append(part)
        rest = rest[1:] if rest.startswith("[") else ""
    return parts


def _listify(node):
    if isinstance(node, dict):
        node = {k: _listify(v) for k, v in node.items()}
        if node and all(isinstance(k, str) and k.isdecimal() for k in node):
            return [node[k] for k in sorted(node, key=int)]
    return node


MAX_INDEX_DIGITS = 4  # coupon_ids[0…9999]: far more than any list of a request


def parse_params(items):
    """`gifter[customer_id]=1&addons[id][0]=x&coupon_ids[0]=c` → {"gifter": {...}, "addons": {"id": ["x"]},
    "coupon_ids": ["c"]}. Empty strings become None (Chargebee: empty means unset)."""
    tree = {}
    for key, value in items:
        parts = _parse_key(key)
        node = tree
        if any(part.isdecimal() and len(part) > MAX_INDEX_DIGITS for part in parts):
            raise wrong_value(f"{key[:60]} has an index beyond {10**MAX_INDEX_DIGITS - 1}.", param=key[:60])
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise wrong_value(f"{key} is malformed.", param=key)
        if isinstance(node.get(parts[-1]), dict):  # `gifter=x` besides `gifter[customer_id]=1`
            raise wrong_value(f"{key} is malformed.", param=key)
        node[parts[-1]] = None if value == "" else value
    return _listify(tree)


def scalar(params, name):
    """A top-level parameter that is one value: `email=x`, not `email[is]=x` or `email[0]=x`."""
    value = params.get(name)
    if isinstance(value, dict | list):
        raise wrong_value(f"{name} should be a single value.", param=name)
    return value


def group(params, name, *, lists=False):
    """The params of a bracket group such as gifter[…], each a single value (with `lists`, as in addons[id][0], a
    list of them). Any other shape, e.g. `gifter=x` or `gifter[email][0]=x`, is a 400 here rather than a type error
    further on."""
    params_group = params.get(name)
    if params_group is not None and not isinstance(params_group, dict):
        raise wrong_value(f"Use {name}[…] parameters.", param=name)
    for key, value in (params_group or {}).items():
        values = value if lists and isinstance(value, list) else [value]
        if any(isinstance(v, dict | list) for v in values):
            raise wrong_value(f"{name}[{key}] should be a single value.", param=f"{name}[{key}]")
    return params_group or {}


PAGE_PARAMETERS = [
    OpenApiParameter("limit", {"type": "integer", "minimum": 1, "maximum": 100}, description="1 to 100, default 10"),
    OpenApiParameter("offset", str, description="next_offset of the previous page"),
]


def empty_means_unset(result, generator, request, public):
    """drf-spectacular hook: every query parameter may be sent empty, which `parse_params` reads as not sent."""
    for operations in result.get("paths", {}).values():
        for operation in operations.values():
            for parameter in operation.get("parameters", []):
                if parameter.get("in") == "query":
                    parameter["allowEmptyValue"] = True
    return result


def boolean(value, param):
    if value is None or isinstance(value, bool):
        return value
    lowered = str(value).strip().lower()
    if lowered in ("true", "1"):
        return True
    if lowered in ("false", "0"):
        return False
    raise wrong_value(f"{param} should be true or false.", param=param)


def timestamp(value, param):
    if value is None:
        return None
    try:
        seconds = int(str(value).strip())
    except ValueError:
        raise wrong_value(f"{param} should be a Unix timestamp in seconds.", param=param) from None
    if not 0 <= seconds <= 4_102_444_800:
        raise wrong_value(f"{param} is out of range.", param=param)
    return datetime.fromtimestamp(seconds, tz=UTC)


def integer(value, param, *, minimum=None, maximum=None, default=None):
    if value is None:
        return default
    try:
        number = int(str(value).strip())
    except ValueError:
        raise wrong_value(f"{param} should be a whole number.", param=param) from None
    if (minimum is not None and number < minimum) or (maximum is not None and number > maximum):
        raise wrong_value(f"{param} should be between {minimum} and {maximum}.", param=param)
    return number


def value_list(raw, param):
    """A filter's list: `[a,b]`, a JSON list or a Python-repr list."""
    text = str(raw).strip()
    for loader in (json.loads, ast.literal_eval):
        try:
            parsed = loader(text)
        except (ValueError, SyntaxError):
            continue
        if isinstance(parsed, list | tuple):
            return [str(item) for item in parsed]
    if text.startswith("[") and text.endswith("]"):
        return [part.strip().strip("'\"") for part in text[1:-1].split(",") if part.strip()]
    raise wrong_value(f"{param} should be a list like [a,b].", param=param)


FILTER_OPS = {
    "is": "exact",
    "is_not": "exact",
    "in": "in",
    "not_in": "in",
    "starts_with": "istartswith",
}


def apply_filters(queryset, params, fields):
    """Applies Chargebee filters such as `status[is]` or `gift_receiver[email][starts_with]`. `fields` maps a
    filter path (e.g. "gift_receiver.email") to the ORM field it filters."""
    for path, field in fields.items():
        node = params
        for part in path.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        if node is None:
            continue
        if not isinstance(node, dict):
            raise wrong_value(f"Use an operator, e.g. {path.replace('.', '[')}[is].", param=path)
        for op, raw in node.items():
            if op not in FILTER_OPS:
                raise wrong_value(f"Unsupported filter operator {op} for {path}.", param=path)
            if raw is None:
                continue
            value = value_list(raw, path) if op in ("in", "not_in") else str(raw)
            if "\x00" in str(value):  # PostgreSQL refuses NUL in text: a 500 otherwise
                raise wrong_value(f"{path} is not valid.", param=path)
            lookup = {f"{field}__{FILTER_OPS[op]}": value}
            try:  # a value the field cannot hold (a word for a numeric id) fails here, when the lookup is built
                queryset = queryset.exclude(**lookup) if op in ("is_not", "not_in") else queryset.filter(**lookup)
            except (ValueError, ValidationError):
                raise wrong_value(f"{path} is not valid.", param=path) from None
    return queryset


def paginate(queryset, params):
    """A page in descending id order: (rows, next_offset or None). The offset is opaque to clients."""
    limit = integer(params.get("limit"), "limit", minimum=1, maximum=100, default=10)
    offset = params.get("offset")
    if offset:
        try:
            last_id = int(json.loads(base64.urlsafe_b64decode(offset.encode()).decode())["after"])
        except (ValueError, KeyError, TypeError, binascii.Error, UnicodeDecodeError):
            raise wrong_value("offset is not valid.", param="offset") from None
        queryset = queryset.filter(pk__lt=last_id)
    rows = list(queryset.order_by("-pk")[: limit + 1])
    if len(rows) <= limit:
        return rows, None
    rows = rows[:limit]
    token = base64.urlsafe_b64encode(json.dumps({"after": rows[-1].pk}).encode()).decode()
    return rows, token


def listing(items, next_offset):
    body = {"list": items}
    if next_offset:
        body["next_offset"] = next_offset
    return body


def page_answer(queryset, params, entry, *, filters=None):
    """A list call's answer: `queryset` narrowed by the Chargebee `filters` (read as `apply_filters` reads them), one
    page of it, each row as `entry(row)`, e.g. `{"plan": …}`."""
    rows, next_offset = paginate(apply_filters(queryset, params, filters or {}), params)
    return Response(listing([entry(row) for row in rows], next_offset))


def get_or_not_found(queryset, object_id, what, *, param="id", prefix="", **lookup):
    """The row of `queryset` that `object_id` names, or the 404 "<what> <object_id> not found". The id is the row's
    number, after `prefix` (as in "ev_12"), and anything else is not found without a query; `lookup` finds the row
    by other fields instead."""
    if not lookup:
        number = validation.row_id(object_id, prefix=prefix)
        lookup = {"pk": number} if number else None
    row = queryset.filter(**lookup).first() if lookup else None
    if row is None:
        raise not_found(f"{what} {object_id} not found", param=param)
    return row


# --- the base view and idempotency -------------------------------------------------------------------------


IDEMPOTENCY_PARAMETER = OpenApiParameter(
    IDEMPOTENCY_HEADER,
    str,
    OpenApiParameter.HEADER,
    required=False,
    description="Up to 100 characters. A repeat with the same request replays the stored response with header "
    "chargebee-idempotency-replayed: true; with another request it is 422. Kept for 24 hours.",
)


class FormParamsParser(FormParser):
    media_type = "application/x-www-form-urlencoded"


class MerchantView(APIView):
    authentication_classes = [ApiKeyAuthentication]
    permission_classes = [WritesNeedFullKey]
    parser_classes = [FormParamsParser, MultiPartParser, JSONParser]

    def get_exception_handler(self):
        return exception_handler

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        rate_limit(request.auth)

    def params(self, request):
        source = request.data if request.method == "POST" else request.query_params
        if hasattr(source, "lists"):
            items = [(key, value) for key, values in source.lists() for value in values]
        else:  # JSON body: already nested
            if not isinstance(source, dict):
                raise wrong_value("The request body must be a JSON object.")
            return source
        return parse_params(items)

    def dispatch(self, request, *args, **kwargs):
        key = request.headers.get(IDEMPOTENCY_HEADER)
        if request.method != "POST" or key is None:
            return super().dispatch(request, *args, **kwargs)
        return idempotent_dispatch(self, request, key, super().dispatch, args, kwargs)


def _file_digest(upload):
    digest = hashlib.sha256(upload.read()).hexdigest()
    upload.seek(0)  # the view reads it next
    return digest


def _fingerprint(request):
    """What the request asks for: its method, path and parameters. Parameters are ordered by name only — a stable
    sort, so a name given twice keeps its values' order (the last one wins: `a=1&a=2` is not `a=2&a=1`) — and a
    multipart body counts by its fields and files, not by its random boundary."""
    body = request.body
    if request.content_type == "application/x-www-form-urlencoded":
        pairs = parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
        body = json.dumps(sorted(pairs, key=lambda pair: pair[0])).encode()
    elif request.content_type == "multipart/form-data":
        files = [
            [name, upload.name, _file_digest(upload)] for name, uploads in request.FILES.lists() for upload in uploads
        ]
        body = json.dumps([sorted(request.POST.lists(), key=lambda pair: pair[0]), files]).encode()
    return hashlib.sha256(b"\n".join([request.method.encode(), request.path.encode(), body])).hexdigest()


def idempotent_dispatch(view, request, key, dispatch, args, kwargs):
    """Runs a POST at most once per (API key, idempotency key): an exact repeat replays the stored status and
    body with `chargebee-idempotency-replayed: true`; the key with another request is 422; a duplicate that
    arrives while the first is still running is 409. Only successful answers (and payment refusals) are kept, so
    a request that failed validation can be retried with the same key; one that crashed can be retried as it was."""
    if not key or len(key) > 100 or any(not (32 < ord(ch) < 127) for ch in key):
        return error_response(
            wrong_value(f"{IDEMPOTENCY_HEADER} must be 1 to 100 printable ASCII characters.", param=IDEMPOTENCY_HEADER)
        )
    api_key = api_key_from_request(request)
    if api_key is None:
        return dispatch(request, *args, **kwargs)  # answers 401
    fingerprint = _fingerprint(request)
    now = timezone.now()
    try:
        with transaction.atomic():
            record = IdempotencyRecord.objects.create(
                api_key=api_key,
                key=key,
                method=request.method,
                path=request.path[:300],
                fingerprint=fingerprint,
                created_at=now,
            )
    except IntegrityError:
        record = IdempotencyRecord.objects.filter(api_key=api_key, key=key).first()
        if record is None:  # reaped or released meanwhile: run as new
            return idempotent_dispatch(view, request, key, dispatch, args, kwargs)
        if record.fingerprint != fingerprint:
            return error_response(
                ChargebeeError(
                    "This idempotency key was already used with a different request.",
                    api_error_code="unable_to_process_request",
                    status=422,
                    type="invalid_request",
                    param=IDEMPOTENCY_HEADER,
                )
            )
        if record.status_code is None:
            # The first attempt died with its worker (or crashed): one retry takes it over, keeping the record and so
            # the gateway key derived from it (no second charge). Conditional, so two retries cannot both take it.
            taken = now - record.created_at >= IDEMPOTENCY_IN_FLIGHT and (
                IdempotencyRecord.objects.filter(
                    pk=record.pk, status_code__isnull=True, created_at=record.created_at
                ).update(created_at=now)
            )
            if not taken:
                return error_response(
                    ChargebeeError(
                        "A request with this idempotency key is still being processed; retry shortly.",
                        api_error_code="request_in_progress",
                        status=409,
                        type="invalid_request",
                    )
                )
        else:
            response = HttpResponse(bytes(record.body), status=record.status_code, content_type=record.content_type)
            response[REPLAYED_HEADER] = "true"
            return response
    request.idempotency_record = record
    try:
        response = dispatch(request, *args, **kwargs)
        if hasattr(response, "render"):
            response.render()
    except BaseException:
        # Kept, not deleted, and open to a retry at once: a crash after the charge must not let the retry charge again.
        IdempotencyRecord.objects.filter(pk=record.pk, status_code__isnull=True).update(
            created_at=timezone.now() - IDEMPOTENCY_IN_FLIGHT
        )
        raise
    keep = 200 <= response.status_code < 300 or _is_payment_error(response)
    if keep:
        IdempotencyRecord.objects.filter(pk=record.pk).update(
            status_code=response.status_code,
            content_type=response.get("Content-Type", "application/json"),
            body=response.content,
        )
    else:
        IdempotencyRecord.objects.filter(pk=record.pk, status_code__isnull=True).delete()
    return response


def idempotency_record_of(request):
    """The idempotency record of the POST being answered, or None when it came without an idempotency key. A view
    derives the keys of its own retried calls (a payment's, say) from its id: a retry that takes over a crashed
    attempt keeps the record, and so makes the same calls."""
    return getattr(request, "idempotency_record", None)


def _is_payment_error(response):
    data = getattr(response, "data", None)
    return isinstance(data, dict) and data.get("type") == "payment"


def idempotency_reap(*, now=None, batch_size=1000):
    """Deletes idempotency records older than the retention window, in batches. Returns how many."""
    cutoff = (now or timezone.now()) - IDEMPOTENCY_RETENTION
    deleted = 0
    while True:
        ids = list(IdempotencyRecord.objects.filter(created_at__lt=cutoff).values_list("pk", flat=True)[:batch_size])
        if not ids:
            return deleted
        deleted += IdempotencyRecord.objects.filter(pk__in=ids).delete()[0]
