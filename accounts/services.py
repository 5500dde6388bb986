"""Changes to customers' accounts: storefront refresh tokens, login and registration, profile edits and the emails
that let the owner of an address choose a password."""

import hashlib
import secrets
import uuid
from datetime import timedelta

from django.contrib.auth import authenticate
from django.contrib.auth.forms import _unicode_ci_compare
from django.contrib.auth.hashers import make_password
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts import tasks
from accounts.models import Customer, RefreshToken
from emails.services import email_queue
from giftshop import validation
from giftshop.errors import ServiceError

REFRESH_TOKEN_LIFETIME = timedelta(days=30)


def _digest(token):
    return hashlib.sha256(token.encode()).hexdigest()


def refresh_token_issue(*, customer, family=None, expires_at=None):
    """A new single-use refresh token (only its hash is stored): a login's first (a new family that lives
    REFRESH_TOKEN_LIFETIME), or the next of `family`, which keeps the family's end."""
    token = secrets.token_urlsafe(32)
    RefreshToken.objects.create(
        customer=customer,
        token_digest=_digest(token),
        family=family or uuid.uuid4(),
        session_stamp=customer.session_stamp(),
        expires_at=expires_at or timezone.now() + REFRESH_TOKEN_LIFETIME,
    )
    return token


def refresh_token_use(*, token):
    """Spends a refresh token: the customer it belongs to and the token that replaces it. Spending is one
    conditional UPDATE, so two concurrent uses of one token get one success. A token used a second time means one
    of its copies was stolen: its whole family is revoked (the thief's and the owner's next refresh both fail,
    and the owner logs in again). Tokens from before the customer's last password change are void."""
    now = timezone.now()
    refused = ServiceError(_("Invalid or already used refresh token."), code="invalid_refresh_token", status=401)
    with transaction.atomic():
        row = RefreshToken.objects.filter(token_digest=_digest(token or "")).select_related("customer").first()
        # No join in this filter: with one, Django writes `WHERE id IN (SELECT …)`, which PostgreSQL does not
        # re-check against the row a concurrent use just updated, so both uses would succeed.
        spent = RefreshToken.objects.filter(
            token_digest=_digest(token or ""), used_at__isnull=True, expires_at__gt=now
        ).update(used_at=now)
        if spent:
            customer = row.customer
            if customer.is_active and row.session_stamp == customer.session_stamp():
                return customer, refresh_token_issue(customer=customer, family=row.family, expires_at=row.expires_at)
    if row is not None and row.used_at is not None:
        # Reuse: outside the transaction above, so the revocation stays even though the request fails.
        RefreshToken.objects.filter(family=row.family).delete()
    raise refused


@transaction.atomic
def customer_password_set(*, customer, password, verified=False):
    """A new password (the account page, the emailed link): every storefront session of the customer ends (its
    tokens' session stamp no longer matches; its refresh tokens go) and other web sessions end through Django's
    session hash. `verified`: the emailed link that led here proved the mailbox."""
    customer.set_password(password)
    customer.save(update_fields=["password"])
    RefreshToken.objects.filter(customer=customer).delete()
    if verified:
        customer_address_proven(customer=customer)
    return customer


@transaction.atomic
def customer_for_gift_link(*, email, password, first_name="", last_name="", locale=""):
    """The account of a gift's recipient who chose a password on the page the gift email's link opened: its token
    was delivered to `email`, so it proves the mailbox. A new account, or the one made without a password for a
    gift (or a guest checkout), takes the password and is marked verified, and keeps `locale`, the language the page
    was read in (the gift's, from its link). An account that has a password is never changed here: its owner logs in
    (or asks for a password link) instead."""
    email = validation.email_address(email, field="email")
    # Locked, so two submissions at once cannot both find the account without a password.
    existing = Customer.objects.select_for_update().owning(email).first()
    if existing is not None and (existing.has_usable_password() or not existing.is_active):
        raise ServiceError(
            _("This email address already has an account: log in to redeem your gift."), code="USER0002", status=409
        )
    names = {
        "first_name": validation.single_line(first_name, field="first_name", max_length=150),
        "last_name": validation.single_line(last_name, field="last_name", max_length=150),
    }
    try:
        validate_password(password, user=existing or Customer(email=email, **names))
    except ValidationError as error:
        raise ServiceError(" ".join(error.messages), field="password") from None
    if existing is None:
        try:
            with transaction.atomic():
                existing = Customer.objects.create_user(email, **names, **({"locale": locale} if locale else {}))
        except IntegrityError:
            raise ServiceError(_("A customer with this email already exists."), code="USER0002", status=409) from None
    else:
        values = {**names, "locale": locale}
        changed = [name for name, value in values.items() if value]
        for name in changed:
            setattr(existing, name, values[name])
        if changed:
            existing.save(update_fields=changed)
    return customer_password_set(customer=existing, password=password, verified=True)


def customer_login(*, email, password):
    customer = authenticate(username=(email or "").strip().lower(), password=password or "")
    if customer is None:
        raise ServiceError(_("Wrong email or password."), code="USER0001", status=401)
    return customer


def _registration_clean(*, email, password, first_name="", last_name=""):
    """A registration's address, names and password, checked (the password against the others too)."""
    email = validation.email_address(email, field="email")
    fields = {
        "first_name": validation.single_line(first_name, field="firstName", max_length=150),
        "last_name": validation.single_line(last_name, field="lastName", max_length=150),
    }
    try:
        validate_password(password, user=Customer(email=email, **fields))
    except ValidationError as error:
        raise ServiceError(" ".join(error.messages), field="password") from None
    return email, fields


def _account_created(email, password, **fields):
    """A new account of `email` (with its password), or None when the address already has one."""
    try:
        with transaction.atomic():
            return Customer.objects.create_user(email, password, **fields)
    except IntegrityError:  # registered a moment ago by a concurrent request
        return None


@transaction.atomic
def customer_register(*, email, password, first_name="", last_name="", locale="en_US", country="", currency=""):
    """The storefront's registration, which answers with tokens whether or not the address has an account (SEC-9):
    a new address gets its account, emailed a link to confirm the address; a taken one gets a duplicate (its own
    password and sessions; see Customer.duplicate_of) and its account's owner is emailed about it. Both paths hash
    the password, insert one customer and queue one email, so both take as long."""
    email, fields = _registration_clean(email=email, password=password, first_name=first_name, last_name=last_name)
    fields.update(locale=locale or "en_US", country=(country or "").upper()[:2], currency=(currency or "").upper()[:3])
    owner = Customer.objects.owning(email).first()
    customer = None if owner else _account_created(email, password, **fields)
    if customer is not None:
        confirm_address_email_queue(customer=customer)
        return customer
    owner = owner or Customer.objects.owning(email).get()
    duplicate = Customer.objects.create_user(email, password, duplicate_of=owner, **fields)
    account_email_queue(customer=owner)
    return duplicate


def customer_sign_up(*, email, password, first_name="", last_name="", locale="en_US"):
    """The web page's registration. It answers the same whether or not the address has an account (SEC-9), so the
    address's owner learns the outcome by email: a new account is created and emailed a link to confirm the
    address; an existing one gets its owner a link to choose a password. Existing addresses hash the password too,
    so both take as long."""
    email, fields = _registration_clean(email=email, password=password, first_name=first_name, last_name=last_name)
    owner = Customer.objects.owning(email).first()
    # A new account reads in the language it registered in (the page's; issue 17), its welcome email included.
    customer = None if owner else _account_created(email, password, locale=locale, **fields)
    if customer is not None:
        confirm_address_email_queue(customer=customer)
        return
    make_password(password)
    account_email_queue(customer=owner or Customer.objects.owning(email).get())


def confirm_address_email_queue(*, customer):
    """Welcomes a new account with a link that proves its mailbox (and the login page)."""
    return email_queue(kind="confirm_address", key=f"customer:{customer.pk}:confirm-address", to=customer.email)


@transaction.atomic
def customer_address_proven(*, customer, now=None):
    """The owner of the customer's address proved the mailbox (an emailed link): the account is verified, and any
    duplicate registration of its address (someone who registered it again on the storefront) ends, sessions and
    all. Returns whether this proved it for the first time."""
    if customer.duplicate_of_id is not None:
        return False  # a duplicate's holder who proves the mailbox has an account to log into instead
    first = Customer.objects.filter(pk=customer.pk, email_verified_at=None).update(
        email_verified_at=now or timezone.now()
    )
    customer.refresh_from_db(fields=["email_verified_at"])
    customer.duplicates.filter(is_active=True).update(is_active=False)
    RefreshToken.objects.filter(customer__duplicate_of=customer).delete()
    return bool(first)


def account_email_queue(*, customer):
    """Emails the owner of an address about its account: a link to choose a password (a new one, if it has one)
    and the login page. At most one an hour per customer, so nobody can flood a mailbox through our forms."""
    key = f"customer:{customer.pk}:set-password:{timezone.now():%Y%m%d%H}"
    return email_queue(kind="set_password", key=key, to=customer.email)


def password_link_request(*, email):
    """The password page's request. It is answered at once and alike for every address (SEC-9): a worker looks
    the address up and emails its account, if any, a link to choose a password."""
    transaction.on_commit(lambda: tasks.send_password_link.delay(email), robust=True)


def password_link_send(*, email):
    customers = Customer.objects.owning(email).filter(is_active=True)
    # The exact comparison is Django's defence against look-alike addresses matching case-insensitively.
    for customer in (c for c in customers if _unicode_ci_compare(email, c.email)):
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
