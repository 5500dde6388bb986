"""The customer's pages: registration (Django's auth views do the rest, see urls.py) and the account with its
subscriptions and transactions (the saved cards' pages are billing's). Every change goes through a service."""

import contextlib
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import admin, messages
from django.contrib.auth import logout
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.serializers.json import DjangoJSONEncoder
from django.http import HttpResponseRedirect, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views import i18n as i18n_views
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts import erasure, selectors, services
from accounts.forms import DetailsForm, LoginForm, RegisterForm, add_service_error
from accounts.models import Transaction
from accounts.personal_data import export as personal_data_export
from accounts.tokens import address_confirmation_token, erasure_token
from giftshop import ratelimit
from giftshop.errors import ServiceError
from giftshop.i18n import language_of, locale_for
from giftshop.money import money
from giftshop.pages import PAGE_SIZE, local_time, page_number, pager

MINUS = "\u2212"  # the typographic minus, as the checkout shows a discount


def _safe_next(request):
    """The requested ?next= when it stays on this site, checked as Django's LoginView checks it; else ""."""
    url = request.POST.get("next") or request.GET.get("next") or ""
    safe = url_has_allowed_host_and_scheme(url, allowed_hosts={request.get_host()}, require_https=request.is_secure())
    return url if safe else ""


class LoginView(auth_views.LoginView):
    """Django's login view (it checks ?next= stays on this site); a login refused by the attempt limits answers
    429 with Retry-After."""

    authentication_form = LoginForm

    def form_invalid(self, form):
        return _refused_as_429(super().form_invalid(form), form)


def _refused_as_429(response, form):
    if form is not None and form.retry_after:
        response.status_code = 429
        response["Retry-After"] = str(form.retry_after)
    return response


def admin_login(request):
    """Django admin's own login page (admin.site.login, with AdminLoginForm: the same attempt limits as /login/);
    a login refused by the limits answers 429 with Retry-After, as /login/ does."""
    response = admin.site.login(request)
    return _refused_as_429(response, (getattr(response, "context_data", None) or {}).get("form"))


def register(request):
    """The answer never says whether the address has an account (SEC-9): the mailbox's owner learns it by email."""
    next_url = _safe_next(request)
    form = RegisterForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            ratelimit.registration_attempt(request)
            services.customer_sign_up(
                email=data["email"],
                password=data["password1"],
                first_name=data["first_name"],
                last_name=data["last_name"],
                locale=locale_for(translation.get_language()),
            )
        except ratelimit.LimitExceeded as limited:
            form.add_error(None, str(limited))
            response = render(request, "registration/register.html", {"form": form, "next": next_url}, status=429)
            response["Retry-After"] = str(limited.retry_after)
            return response
        except ServiceError as error:
            add_service_error(form, error, default_field="email")
        else:
            done = reverse("accounts:register_done")
            return HttpResponseRedirect(f"{done}?{urlencode({'next': next_url})}" if next_url else done)
    return render(request, "registration/register.html", {"form": form, "next": next_url})


def confirm_address(request, uidb64, token):
    """The welcome email's link: proves the new account's mailbox. A link used again, or for an address already
    confirmed, says so; a wrong or expired one says how to get another."""
    customer = selectors.customer_for_link(uidb64)
    confirmed = customer is not None and address_confirmation_token.check_token(customer, token)
    if confirmed:
        services.customer_address_proven(customer=customer)
    already = not confirmed and customer is not None and customer.email_verified_at is not None
    status = 200 if confirmed or already else 400
    context = {"confirmed": confirmed, "already": already}
    return render(request, "registration/address_confirmed.html", context, status=status)


@login_required
@require_GET
def personal_data(request):
    """The customer's own data as a JSON download (accounts/personal_data.py)."""
    return personal_data_response(request.user)


def personal_data_response(customer):
    """`customer`'s personal data copy, as a JSON file to save."""
    response = JsonResponse(
        personal_data_export(customer), encoder=DjangoJSONEncoder, json_dumps_params={"indent": 2, "sort_keys": False}
    )
    name = f"giftshop-data-{customer.pk}-{timezone.now():%Y%m%d}.json"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


@login_required
@require_POST
def erase_request(request):
    """The account page's "Erase my account": nothing is erased yet; an emailed link confirms it (the mailbox's
    owner, not just whoever holds a signed-in browser)."""
    erasure.erasure_request(customer=request.user)
    messages.success(
        request, _("We have emailed you a link to confirm that your account should be erased. It works for three days.")
    )
    return redirect("accounts:account")


@require_http_methods(["GET", "POST"])
def erase_confirm(request, uidb64, token):
    """The emailed link: GET says what erasing does and asks once more; POST erases and signs out. A wrong, used or
    expired link erases nothing (400)."""
    customer = selectors.customer_for_link(uidb64)
    if customer is None or not erasure_token.check_token(customer, token):
        return render(request, "accounts/erase_confirm.html", {"valid": False}, status=400)
    if request.method == "POST":
        # Asked before erasing: afterwards the session no longer finds its (inactive) user, and would keep its id.
        signed_in = request.user.is_authenticated and request.user.pk == customer.pk
        erasure.customer_erase(customer=customer, requested_by="customer")
        if signed_in:
            logout(request)
        return render(request, "accounts/erased.html")
    return render(request, "accounts/erase_confirm.html", {"valid": True, "customer": customer})


def register_done(request):
    return render(request, "registration/register_done.html", {"next": _safe_next(request)})


@login_required
def account(request):
    customer = request.user
    initial = {
        "first_name": customer.first_name,
        "last_name": customer.last_name,
        "time_zone": customer.time_zone,
        "language": language_of(customer.locale),
    }
    form = DetailsForm(request.POST or None, initial=initial, current_zone=customer.time_zone)
    if request.method == "POST" and form.is_valid():
        details = dict(form.cleaned_data)
        language = details.pop("language") or language_of(customer.locale)
        try:
            services.customer_update(customer=customer, locale=locale_for(language, customer.locale), **details)
        except ServiceError as error:
            add_service_error(form, error)
        else:
            with translation.override(language):  # said in the language just chosen
                messages.success(request, _("Your details are saved."))
            return _language_remembered(redirect("accounts:account"), language)
    return render(request, "accounts/account.html", {"form": form, "zone": customer.zone().key})


def _language_remembered(response, language):
    """The language cookie, as Django's set_language writes it: this browser's explicit choice outranks the stored
    language (settings.LANGUAGES), so a choice saved here must not be overruled by an older one made with the
    switcher."""
    response.set_cookie(
        settings.LANGUAGE_COOKIE_NAME,
        language,
        max_age=settings.LANGUAGE_COOKIE_AGE,
        path=settings.LANGUAGE_COOKIE_PATH,
        domain=settings.LANGUAGE_COOKIE_DOMAIN,
        secure=settings.LANGUAGE_COOKIE_SECURE,
        httponly=settings.LANGUAGE_COOKIE_HTTPONLY,
        samesite=settings.LANGUAGE_COOKIE_SAMESITE,
    )
    return response


@require_POST
def set_language(request):
    """The language switcher on every page (Django's set_language: the cookie, then back to the page); a signed-in
    customer's choice is also stored on their account, so their emails and other devices follow it."""
    response = i18n_views.set_language(request)
    language = request.POST.get("language", "")
    if request.user.is_authenticated and language in dict(settings.LANGUAGES):
        customer = request.user
        # A row that no longer validates (a legacy value) keeps its locale: the cookie still holds the choice.
        with contextlib.suppress(ServiceError):
            services.customer_update(customer=customer, locale=locale_for(language, customer.locale))
    return response


@login_required
def subscriptions(request):
    zone, page = request.user.zone(), page_number(request)
    rows, total = selectors.subscription_page(customer=request.user, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE)
    items = [
        {"subscription": s, "start": local_time(s.term_start, zone), "end": local_time(s.term_end, zone)} for s in rows
    ]
    return render(request, "accounts/subscriptions.html", {"items": items, "zone": zone.key, **pager(page, total)})


def _transaction_item(row, zone):
    """A ledger row as the customer reads it: a refund is stored as a positive amount of kind "refund", and shows
    as money going back to the card (a minus), not as another payment."""
    is_gift = row.target_type == Transaction.TargetType.GIFT and row.target_id.isdigit()
    is_refund = row.kind == Transaction.Kind.REFUND
    return {
        "transaction": row,
        "date": local_time(row.occurred_at, zone),
        "gift_id": int(row.target_id) if is_gift else None,
        "amount": f"{MINUS if is_refund else ''}{money(row.amount, row.currency)}",
        # Translators: followed by the card, e.g. "Visa •••• 4242".
        "card_term": _("Refunded to") if is_refund else _("Paid with"),
    }


@login_required
def transactions(request):
    zone, page = request.user.zone(), page_number(request)
    rows, total = selectors.transaction_page(customer=request.user, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE)
    items = [_transaction_item(row, zone) for row in rows]
    return render(request, "accounts/transactions.html", {"items": items, "zone": zone.key, **pager(page, total)})
