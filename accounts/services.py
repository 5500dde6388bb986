import hashlib
import secrets
from datetime import timedelta

from django.contrib.auth import authenticate
from django.contrib.auth.forms import _unicode_ci_compare
from django.contrib.auth.hashers import make_password
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import ApiKey, Customer, PaymentMethod, RefreshToken
from accounts.renewals import subscriptions_renewal_switch_on
from billing.gateways import PaymentError, get_gateway
from giftshop import validation
from giftshop.errors import ServiceError

REFRESH_TOKEN_LIFETIME = timedelta(days=30)


def _digest(token):
    return hashlib.sha256(token.encode()).hexdigest()


def refresh_token_issue(*, customer):
    """A new single-use refresh token (only its hash is stored)."""
    token = secrets.token_urlsafe(32)
    RefreshToken.objects.create(
        customer=customer, token_digest=_digest(token), expires_at=timezone.now() + REFRESH_TOKEN_LIFETIME
    )
    return token


@transaction.atomic
def refresh_token_use(*, token):
    """Spends a refresh token: the customer it belongs to and the token that replaces it. Spending is one
    conditional UPDATE, so two concurrent uses of one token get one success."""
    now = timezone.now()
    row = RefreshToken.objects.filter(token_digest=_digest(token or "")).select_related("customer").first()
    # No join in this filter: with one, Django writes `WHERE id IN (SELECT …)`, which PostgreSQL does not re-check
    # against the row a concurrent use just updated, so both uses would succeed.
    spent = RefreshToken.objects.filter(
        token_digest=_digest(token or ""), used_at__isnull=True, expires_at__gt=now
    ).update(used_at=now)
    if not spent or not row.customer.is_active:
        raise ServiceError("Invalid or already used refresh token.", code="invalid_refresh_token", status=401)
    return row.customer, refresh_token_issue(customer=row.customer)


def customer_login(*, email, password):
    customer = authenticate(username=(email or "").strip().lower(), password=password or "")
    if customer is None:
        raise ServiceError("Wrong email or password.", code="USER0001", status=401)
    return customer


def customer_register(*, email, password, first_name="", last_name="", locale="en_US", country="", currency=""):
    email = validation.email_address(email, field="email")
    candidate = Customer(email=email, first_name=first_name, last_name=last_name)
    try:
        validate_password(password, user=candidate)
    except ValidationError as error:
        raise ServiceError(" ".join(error.messages), field="password") from None
    existing = Customer.objects.filter(email__iexact=email).first()
    if existing is not None and existing.has_usable_password():
        raise ServiceError("A customer with this email already exists.", code="USER0002")
    fields = {
        "first_name": validation.single_line(first_name, field="firstName", max_length=150),
        "last_name": validation.single_line(last_name, field="lastName", max_length=150),
        "locale": locale or "en_US",
        "country": (country or "").upper()[:2],
        "currency": (currency or "").upper()[:3],
    }
    if existing is not None:
        # Created without a password (a gift recipient, a guest gifter): whoever holds the mailbox claims it, so
        # registering sends a link to choose a password there instead of taking the account over.
        account_email_queue(customer=existing)
        raise ServiceError(
            "This email already has an account without a password: we have emailed you a link to choose one.",
            code="USER0002",
            field="email",
        )
    try:
        with transaction.atomic():
            return Customer.objects.create_user(email, password, **fields)
    except IntegrityError:
        raise ServiceError("A customer with this email already exists.", code="USER0002") from None


def account_email_queue(*, customer):
    """Emails the owner of an address about its account: a link to choose a password (a new one, if it has one)
    and the login page. At most one an hour per customer, so nobody can flood a mailbox through our forms."""
    from gifts.services import email_queue

    key = f"customer:{customer.pk}:set-password:{timezone.now():%Y%m%d%H}"
    return email_queue(kind="set_password", key=key, to=customer.email)


def password_link_request(*, email):
    """The password page's request. It is answered at once and alike for every address (SEC-9): a worker looks
    the address up and emails its account, if any, a link to choose a password."""
    from accounts.tasks import send_password_link

    transaction.on_commit(lambda: send_password_link.delay(email), robust=True)


def password_link_send(*, email):
    customers = Customer.objects.filter(email__iexact=email, is_active=True)
    # The exact comparison is Django's defence against look-alike addresses matching case-insensitively.
    for customer in (c for c in customers if _unicode_ci_compare(email, c.email)):
        account_email_queue(customer=customer)


def customer_sign_up(*, email, password, first_name="", last_name=""):
    """The web page's registration. It answers the same whether or not the address has an account (SEC-9), so the
    address's owner learns the outcome by email: a new account is created and welcomed there; an existing one gets
    its owner a link to choose a password. Existing addresses hash the password too, so both take as long."""
    try:
        customer = customer_register(email=email, password=password, first_name=first_name, last_name=last_name)
    except ServiceError as error:
        if error.code != "USER0002":
            raise
        make_password(password)
        existing = Customer.objects.filter(email__iexact=validation.email_address(email, field="email")).first()
        if existing is not None and existing.has_usable_password():
            account_email_queue(customer=existing)
        return
    account_email_queue(customer=customer)


def customer_update(*, customer, **fields):
    allowed = {"first_name", "last_name", "locale", "country", "currency", "time_zone"}
    for name, value in fields.items():
        if name not in allowed:
            continue
        if name in ("first_name", "last_name"):
            value = validation.single_line(value, field=name, max_length=150)
        setattr(customer, name, value)
    try:
        customer.full_clean(exclude=["password", "email"])
    except ValidationError as error:
        raise ServiceError("; ".join(f"{k}: {' '.join(v)}" for k, v in error.message_dict.items())) from None
    customer.save(update_fields=[name for name in fields if name in allowed])
    return customer


@transaction.atomic
def payment_method_add(*, customer, card_number, exp_month, exp_year, make_default=True):
    """Tokenises a card through the gateway and keeps the token (never the number)."""
    today = timezone.now().date()
    if (int(exp_year), int(exp_month)) < (today.year, today.month):
        raise ServiceError("This card has expired.", code="expired_card", field="expMonth")
    try:
        card = get_gateway().tokenize(number=card_number, exp_month=exp_month, exp_year=exp_year)
    except PaymentError as error:
        raise ServiceError(error.message, code=error.code, field="cardNumber") from None
    return _card_save(customer=customer, card=card, make_default=make_default)


def _card_save(*, customer, card, make_default):
    """Keeps a tokenised card (the first one is the default) and lets the customer's gift subscriptions renew."""
    has_default = customer.payment_methods.filter(is_default=True).exists()
    if make_default and has_default:
        customer.payment_methods.filter(is_default=True).update(is_default=False)
    method = PaymentMethod.objects.create(
        customer=customer,
        gateway=get_gateway().name,
        token=card.token,
        brand=card.brand,
        last4=card.last4,
        exp_month=card.exp_month,
        exp_year=card.exp_year,
        is_default=make_default or not has_default,
    )
    subscriptions_renewal_switch_on(customer=customer)
    return method


@transaction.atomic
def payment_method_remove(*, payment_method):
    was_default = payment_method.is_default
    customer = payment_method.customer
    payment_method.delete()
    if was_default:
        successor = customer.payment_methods.order_by("-created_at").first()
        if successor:
            PaymentMethod.objects.filter(pk=successor.pk).update(is_default=True)


@transaction.atomic
def payment_method_from_token(*, customer, token):
    """Saves a card the client already tokenised with the gateway (sandbox: tok_visa, …)."""
    try:
        card = get_gateway().exchange(token)
    except PaymentError as error:
        raise ServiceError(error.message, code=error.code, field="token_id") from None
    return _card_save(customer=customer, card=card, make_default=False)


def api_key_create(*, name, kind="full"):
    """A new merchant API key: (ApiKey, the key itself). The key is not stored; show it once."""
    from giftshop.chargebee import key_digest

    raw = f"gs_{'live' if kind == 'full' else 'ro'}_{secrets.token_urlsafe(24)}"
    api_key = ApiKey.objects.create(name=name, kind=kind, prefix=raw[:12], key_digest=key_digest(raw))
    return api_key, raw
