"""The customer's pages: registration (Django's auth views do the rest, see urls.py) and the account with its
subscriptions, transactions, gifts and cards. Every change goes through a service."""

from urllib.parse import urlencode

from django.contrib import admin, messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.dateformat import format as format_date
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from accounts import selectors, services
from accounts.forms import CardForm, DetailsForm, GiftEditForm, LoginForm, RegisterForm, add_service_error
from accounts.models import Transaction
from gifts.models import GiftStatus
from gifts.selectors import UNDELIVERABLE, gift_for_gifter, last_delivery_status
from gifts.services import gift_edit_refusal, gift_update_delivery
from giftshop.errors import ServiceError

PAGE_SIZE = 25
WHEN = "j M Y, H:i"
GIFT_STATUS_WORDS = {
    GiftStatus.UNCLAIMED: "Sent",
    GiftStatus.CLAIMED: "Redeemed",
    GiftStatus.EXPIRED: "Expired",
    GiftStatus.CANCELLED: "Cancelled",
}


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
            services.customer_sign_up(
                email=data["email"],
                password=data["password1"],
                first_name=data["first_name"],
                last_name=data["last_name"],
            )
        except ServiceError as error:
            add_service_error(form, error, default_field="email")
        else:
            done = reverse("accounts:register_done")
            return HttpResponseRedirect(f"{done}?{urlencode({'next': next_url})}" if next_url else done)
    return render(request, "registration/register.html", {"form": form, "next": next_url})


def register_done(request):
    return render(request, "registration/register_done.html", {"next": _safe_next(request)})


def _local(when, zone):
    return format_date(timezone.localtime(when, zone), WHEN) if when else ""


def _page(request):
    try:
        return max(int(request.GET.get("page", 1)), 1)
    except ValueError:
        return 1


def _pager(page, total):
    return {"previous_page": page - 1 or None, "next_page": page + 1 if page * PAGE_SIZE < total else None}


@login_required
def account(request):
    customer = request.user
    initial = {"first_name": customer.first_name, "last_name": customer.last_name, "time_zone": customer.time_zone}
    form = DetailsForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            services.customer_update(customer=customer, **form.cleaned_data)
        except ServiceError as error:
            add_service_error(form, error)
        else:
            messages.success(request, "Your details are saved.")
            return redirect("accounts:account")
    return render(request, "accounts/account.html", {"form": form, "zone": customer.zone().key})


@login_required
def subscriptions(request):
    zone, page = request.user.zone(), _page(request)
    rows, total = selectors.subscription_page(customer=request.user, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE)
    items = [{"subscription": s, "start": _local(s.term_start, zone), "end": _local(s.term_end, zone)} for s in rows]
    return render(request, "accounts/subscriptions.html", {"items": items, "zone": zone.key, **_pager(page, total)})


def _transaction_item(row, zone):
    is_gift = row.target_type == Transaction.TargetType.GIFT and row.target_id.isdigit()
    return {
        "transaction": row,
        "date": _local(row.occurred_at, zone),
        "gift_id": int(row.target_id) if is_gift else None,
    }


@login_required
def transactions(request):
    zone, page = request.user.zone(), _page(request)
    rows, total = selectors.transaction_page(customer=request.user, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE)
    items = [_transaction_item(row, zone) for row in rows]
    return render(request, "accounts/transactions.html", {"items": items, "zone": zone.key, **_pager(page, total)})


def _gift_item(gift, zone, now):
    """`gift` is annotated with last_delivery_status (gifts.selectors)."""
    bounced = gift.status == GiftStatus.UNCLAIMED and gift.last_delivery_status in UNDELIVERABLE
    if gift.status == GiftStatus.SCHEDULED:
        status = f"Scheduled for {_local(gift.scheduled_at, zone)}"
    else:
        status = "Bounced" if bounced else GIFT_STATUS_WORDS[gift.status]
    return {
        "gift": gift,
        "status": status,
        "delivery": _local(gift.sent_at or gift.scheduled_at, zone),
        "refusal": gift_edit_refusal(gift, now),
        "bounced": bounced,
        # A bounced delivery can be resent to a corrected address; an expired gift's page says what can be done.
        "correctable": bounced or gift.status == GiftStatus.EXPIRED,
    }


@login_required
def gifts(request):
    zone, page, now = request.user.zone(), _page(request), timezone.now()
    given = (
        request.user.gifts_given.select_related("offer")
        .annotate(last_delivery_status=last_delivery_status())
        .order_by("-created_at", "-pk")
    )
    rows = given[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
    items = [_gift_item(gift, zone, now) for gift in rows]
    return render(request, "accounts/gifts.html", {"items": items, "zone": zone.key, **_pager(page, given.count())})


def _gift_initial(gift, zone):
    local = timezone.localtime(gift.scheduled_at, zone)
    return {
        "recipient_email": gift.recipient_email,
        "recipient_email_again": gift.recipient_email,
        "delivery_date": local.date(),
        "delivery_time": local.time().replace(second=0, microsecond=0),
        "personal_note": gift.personal_note,
    }


@login_required
def gift_edit(request, gift_id):
    gift, zone = gift_for_gifter(request.user, gift_id), request.user.zone()
    form = GiftEditForm(request.POST or None, initial=_gift_initial(gift, zone), zone_name=zone.key)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            gift_update_delivery(
                gift=gift,
                recipient_email=data["recipient_email"],
                delivery_date=data["delivery_at"],
                personal_note=data["personal_note"],
            )
        except ServiceError as error:
            add_service_error(form, error)
        else:
            messages.success(request, f"Your gift for {data['recipient_email']} is updated.")
            return redirect("accounts:gifts")
    item = _gift_item(gift, zone, timezone.now())
    return render(request, "accounts/gift_edit.html", {"item": item, "form": form, "zone": zone.key})


@login_required
def payment_methods(request):
    form = CardForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            card = services.payment_method_add(
                customer=request.user,
                card_number=data["card_number"],
                exp_month=data["exp_month"],
                exp_year=data["exp_year"],
            )
        except ServiceError as error:
            add_service_error(form, error)
        else:
            messages.success(request, f"{card.label} is saved as your default card.")
            return redirect("accounts:payment_methods")
    cards = request.user.payment_methods.all()
    return render(request, "accounts/payment_methods.html", {"form": form, "cards": cards})


@login_required
@require_POST
def payment_method_remove(request, pk):
    card = get_object_or_404(request.user.payment_methods, pk=pk)
    services.payment_method_remove(payment_method=card)
    messages.success(request, f"{card.label} is removed.")
    return redirect("accounts:payment_methods")
