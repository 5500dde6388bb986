"""The account emails: one function per email, building its context when it is sent, and the password links the
other apps' emails offer. Registered in settings.EMAIL_KINDS; templates under templates/emails/."""

from django.conf import settings
from django.contrib.auth.tokens import default_token_generator
from django.db.models.functions import Lower
from django.urls import reverse
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from accounts.models import Customer
from accounts.tokens import address_confirmation_token, erasure_token
from emails import services as outbox
from giftshop.i18n import language_of


def set_password_url(customer):
    """For a customer without a password (a guest checkout): a link to choose one and see their account."""
    if customer.has_usable_password():
        return None
    return password_link(customer)


def password_link(customer):
    """A single-use link to choose a (new) password: Django's password reset token."""
    path = reverse(
        "accounts:password_reset_confirm",
        kwargs={
            "uidb64": urlsafe_base64_encode(force_bytes(customer.pk)),
            "token": default_token_generator.make_token(customer),
        },
    )
    return f"{settings.SITE_URL}{path}"


def set_password(email):
    """About the account of an address, asked for on the register or password pages: a link to choose a password
    (a new one, when the account has one) and the login page. Those pages answer alike for every address."""
    customer = Customer.objects.owning(email.to_email).get()
    return {
        "customer": customer,
        "has_password": customer.has_usable_password(),
        "set_password_url": password_link(customer),
        "login_url": f"{settings.SITE_URL}{reverse('accounts:login')}",
        "site_url": settings.SITE_URL,
    }


def confirm_address(email):
    """Welcomes a new account: a link that confirms its address (proving the mailbox), and the login page."""
    customer = Customer.objects.owning(email.to_email).get()
    uidb64 = urlsafe_base64_encode(force_bytes(customer.pk))
    path = reverse(
        "accounts:confirm_address",
        kwargs={"uidb64": uidb64, "token": address_confirmation_token.make_token(customer)},
    )
    return {
        "customer": customer,
        "confirm_url": f"{settings.SITE_URL}{path}",
        "login_url": f"{settings.SITE_URL}{reverse('accounts:login')}",
        "site_url": settings.SITE_URL,
    }


def erase_account(email):
    """The customer asked, from their account page, to erase it: a link to confirm (proving the mailbox), which
    works for three days (PASSWORD_RESET_TIMEOUT) and only until the account's password or address changes."""
    customer = Customer.objects.owning(email.to_email).get()
    uidb64 = urlsafe_base64_encode(force_bytes(customer.pk))
    path = reverse("accounts:erase_confirm", kwargs={"uidb64": uidb64, "token": erasure_token.make_token(customer)})
    return {"customer": customer, "confirm_url": f"{settings.SITE_URL}{path}", "site_url": settings.SITE_URL}


# --- the reader's language (settings.EMAIL_KINDS "language"; issue 17) ---


def customer_language(customer):
    """The language a customer reads our pages and emails in: the one stored on their account (Customer.locale, set
    from the account page, the language switcher or the storefront API)."""
    return language_of(customer.locale)


def account_language(address):
    """The language of the account at an address; "" when the address has none. While the outbox sends a batch, the
    accounts at all of its addresses are read at once (emails.services.batch_lookup)."""
    locales = outbox.batch_lookup("account_locales", _account_locales)
    if locales is not None:
        locale = locales.get((address or "").strip().lower())
        return language_of(locale) if locale else ""
    customer = Customer.objects.owning(address).only("locale").first()
    return customer_language(customer) if customer else ""


def _account_locales(addresses):
    # By the lowercased address, as the accounts' unique index reads them (never a duplicate registration's).
    accounts = Customer.objects.annotate(address=Lower("email")).filter(address__in=addresses, duplicate_of=None)
    return dict(accounts.values_list("address", "locale"))


def addressee_language(email):
    """Emails to a customer (the account emails, the gifter's): the language of the account at the address; the
    site's default when there is none."""
    return account_language(email.to_email) or settings.LANGUAGE_CODE
