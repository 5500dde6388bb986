"""The web pages of a bulk gift list before its gifts exist (issue 18): upload a CSV (or paste rows), the validation
report where rows are fixed, dropped and checked again, and paying for the list with one order. After payment the
list lives in "My gifts" (gifts/bulk_views.py)."""

from datetime import time
from decimal import Decimal, InvalidOperation
from functools import partial

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_http_methods

from billing import bulk_sales, services, stripe_payments
from billing.forms import CardForm, new_checkout_key
from billing.gateways import PaymentError, get_gateway
from billing.models import Order
from gifts import bulk
from gifts.models import BulkList
from giftshop.errors import ServiceError
from giftshop.timezones import local_to_utc
from offers.selectors import offer_get

# Problem rows shown (and editable) on one page of the report.
REPORT_PAGE_SIZE = 100
EDITABLE = ["recipient_email", "recipient_first_name", "personal_note", "delivery_date", "delivery_time", "time_zone",
            "language"]  # fmt: skip


class UploadForm(forms.Form):
    file = forms.FileField(label=_("CSV file"), required=False, help_text=_("UTF-8, comma or semicolon separated."))
    rows = forms.CharField(
        label=_("Or paste the rows"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 8, "spellcheck": "false"}),
        help_text=_("The first line names the columns."),
    )

    def clean(self):
        data = super().clean()
        upload, pasted = data.get("file"), (data.get("rows") or "").strip()
        if not upload and not pasted:
            raise forms.ValidationError(gettext("Choose a CSV file, or paste the rows."))
        if upload and upload.size > settings.BULK_MAX_FILE_BYTES:
            self.add_error(
                "file",
                gettext("The file is larger than %(size)s MB.") % {"size": settings.BULK_MAX_FILE_BYTES // 1_000_000},
            )
        return data


class PayForm(CardForm):
    """The card (a saved one, or a new one), the coupon, and the total the page showed."""

    saved_card = forms.ChoiceField(label=_("Pay with"), required=False)
    coupon = forms.CharField(label=_("Coupon code"), required=False, max_length=50)
    shown_total = forms.CharField(widget=forms.HiddenInput, required=False)

    def __init__(self, *args, customer, **kwargs):
        super().__init__(*args, **kwargs)
        cards = [(str(card.pk), card.label) for card in customer.payment_methods.all()]
        self.browser_card = stripe_payments.enabled()
        if self.browser_card:
            # Stripe: a new card is given on the next page, to Stripe's Payment Element; this form never sees one.
            for name in ("card_number", "exp_month", "exp_year"):
                del self.fields[name]
        self.fields["saved_card"].choices = [*cards, ("", gettext("A new card"))]
        for name in ("card_number", "exp_month", "exp_year") if not self.browser_card else ():
            self.fields[name].required = not cards
        self.customer = customer

    def clean(self):
        data = super().clean() if not self.browser_card else forms.Form.clean(self)
        if not self.browser_card and not data.get("saved_card") and not data.get("card_number"):
            self.add_error("card_number", gettext("Enter a card number, or choose a saved card."))
        return data


@login_required
@require_http_methods(["GET", "POST"])
def bulk_new(request, offer_id):
    """A new list for a giftable offer: a CSV file, or rows pasted from a spreadsheet."""
    offer = offer_get(offer_id, active_only=True)
    if not offer.giftable:
        raise Http404(gettext("This plan cannot be given as a gift."))
    form = UploadForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        source = upload.file if upload else form.cleaned_data["rows"]
        try:
            bulk_list = bulk.bulk_list_create(
                gifter=request.user, offer=offer, source=source, name=upload.name if upload else "pasted rows"
            )
        except ServiceError as error:
            form.add_error("file" if upload else "rows", error.message)
        else:
            return redirect("billing:bulk_review", list_id=bulk_list.pk)
    context = {"offer": offer, "form": form, "max_rows": settings.BULK_MAX_ROWS, "columns": bulk.COLUMNS}
    return render(request, "gifts/bulk_new.html", context, status=400 if form.errors else 200)


def _row_changes(post, rows):
    """{row id: {column: value}} for the report's inputs named `<column>-<row id>` of the rows on the page."""
    changes = {}
    for row in rows:
        values = {column: post[f"{column}-{row.pk}"] for column in EDITABLE if f"{column}-{row.pk}" in post}
        if values:
            changes[row.pk] = values
    return changes


def _ids(post, name):
    return [int(value) for value in post.getlist(name) if value.isdigit()]


@login_required
@require_http_methods(["GET", "POST"])
def bulk_review(request, list_id):
    """The validation report and the payment of a draft list. POST "check" saves the fixes on the page, the rows
    dropped or restored, and checks every row again; POST "price" applies a coupon to the total; POST "pay" charges
    the list."""
    bulk_list = bulk.bulk_list_for_gifter(request.user, list_id)
    if bulk_list.status != BulkList.Status.DRAFT:
        return redirect("gifts:bulk_list", list_id=bulk_list.pk)
    problems = bulk_list.rows.filter(dropped=False).exclude(problems=[]).order_by("number")
    page = Paginator(problems, REPORT_PAGE_SIZE).get_page(request.GET.get("page"))
    action = request.POST.get("action") if request.method == "POST" else None
    coupon = request.POST.get("coupon", "") if request.method == "POST" else ""
    # "Apply coupon" (action=price) shows the new total with the coupon kept in its field, and no card errors.
    pay_form = PayForm(request.POST if action == "pay" else None, customer=request.user, initial={"coupon": coupon})
    status = 200
    if action == "check":
        bulk.bulk_rows_update(
            gifter=request.user,
            list_id=bulk_list.pk,
            changes=_row_changes(request.POST, page.object_list),
            dropped=_ids(request.POST, "drop"),
            restored=_ids(request.POST, "restore"),
        )
        messages.info(request, gettext("The list was checked again."))
        return redirect("billing:bulk_review", list_id=bulk_list.pk)
    if action == "pay" and pay_form.is_valid():
        paid = _pay(request, pay_form, bulk_list)
        if isinstance(paid, HttpResponse):  # to Stripe's payment page
            return paid
        if paid is not None:
            return redirect("gifts:bulk_list", list_id=bulk_list.pk)
        status = 400
    summary = bulk.bulk_list_summary(bulk_list)
    coupon_error = ""
    try:
        price = bulk_sales.bulk_price(bulk_list=bulk_list, coupon_code=coupon)
    except ServiceError as error:
        coupon_error, status = error.message, 400
        price = bulk_sales.bulk_price(bulk_list=bulk_list)
    context = {
        "bulk_list": bulk_list,
        "summary": summary,
        "page": page,
        "dropped": bulk_list.rows.filter(dropped=True).order_by("number")[:REPORT_PAGE_SIZE],
        "price": price,
        "pay_form": pay_form,
        "coupon_error": coupon_error,
        "stripe": pay_form.browser_card,
    }
    return render(request, "gifts/bulk_review.html", context, status=status)


def _browser_payment(order, method):
    """Stripe: the order's payment is opened (with the saved card, if one was chosen) and confirmed by the browser on
    Stripe's payment page; whoever sees it succeed (the browser's return, the webhook) completes the order, whose
    fulfilment makes the list paid or the group code (Order.fulfilment). A free order needs no page: None."""
    if order.total_price == 0:
        return None
    stripe_payments.order_payment(order=order, payment_method=method)
    return redirect("billing:stripe_pay", order_id=order.pk)


def _pay(request, form, bulk_list):
    """The list paid, a redirect to Stripe's payment page, or None (the form has the error)."""
    data = form.cleaned_data
    try:
        shown = Decimal(data["shown_total"]) if data.get("shown_total") else None
    except InvalidOperation:
        shown = None
    checkout = partial(
        bulk_sales.bulk_checkout,
        gifter=request.user,
        list_id=bulk_list.pk,
        coupon_code=data.get("coupon"),
        shown_total=shown,
    )
    return _pay_with(request, form, checkout)


def _pay_with(request, form, checkout):
    """Pays through `checkout(payment_method=, card_token=, pay=)` (a list's or a group code's): with a saved card or
    a new one (the sandbox), or, with Stripe, by opening the order's payment and sending the browser to Stripe's
    payment page. Returns what `checkout` made, that redirect, or None with the error on the form."""
    data = form.cleaned_data
    method = get_object_or_404(request.user.payment_methods, pk=data["saved_card"]) if data.get("saved_card") else None
    try:
        if form.browser_card:
            ready = checkout(pay=False)
            order = ready if isinstance(ready, Order) else getattr(ready, "pending_order", None)
            if order is None:  # paid already (a double submit)
                return ready
            return _browser_payment(order, method) or checkout()  # a free order needs no payment page
        token = None
        if method is None:
            card = get_gateway().tokenize(
                number=data["card_number"], exp_month=data["exp_month"], exp_year=data["exp_year"]
            )
            token = card.token
        return checkout(payment_method=method, card_token=token)
    except PaymentError as error:
        form.add_error("saved_card" if method else "card_number", error.message)
    except ServiceError as error:
        form.add_error("coupon" if getattr(error, "field", None) == "couponCode" else None, error.message)
    return None


# --- buying a group code ---


class GroupCodeForm(PayForm):
    checkout_key = forms.CharField(widget=forms.HiddenInput, max_length=64)
    seats = forms.IntegerField(
        label=_("Seats"),
        min_value=1,
        max_value=100_000,
        initial=10,
        help_text=_("How many people can redeem the code, each with their own account."),
    )
    expires_on = forms.DateField(label=_("Redeemable until"), required=False, help_text=_("YYYY-MM-DD; empty: no end."))
    personal_note = forms.CharField(
        label=_("Message"), required=False, max_length=255, widget=forms.Textarea(attrs={"rows": 3})
    )

    def clean_expires_on(self):
        day = self.cleaned_data.get("expires_on")
        return day and local_to_utc(day, time(23, 59), self.customer.zone().key)


@login_required
@require_http_methods(["GET", "POST"])
def group_new(request, offer_id):
    """Buys one code for N seats of a giftable offer (priced with its quantity tiers); "Update the price" shows the
    total for the seats typed before paying."""
    offer = offer_get(offer_id, active_only=True)
    if not offer.giftable:
        raise Http404(gettext("This plan cannot be given as a gift."))
    form = GroupCodeForm(request.POST or None, customer=request.user, initial={"checkout_key": new_checkout_key()})
    seats = 10
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        seats = data["seats"]
        if request.POST.get("action") == "pay":
            group = _pay_group(request, form, offer)
            if isinstance(group, HttpResponse):  # to Stripe's payment page
                return group
            if group is not None:
                return redirect("gifts:group_code", group_id=group.pk)
    elif form.is_bound and str(request.POST.get("seats", "")).isdigit():
        seats = max(1, int(request.POST["seats"]))
    try:
        price = services.price_preview(offer=offer, coupon_code=request.POST.get("coupon") or None, quantity=seats)
    except ServiceError as error:
        form.add_error("coupon", error.message)
        price = services.price_preview(offer=offer, quantity=seats)
    context = {"offer": offer, "form": form, "price": price, "seats": seats, "stripe": form.browser_card}
    return render(request, "gifts/group_new.html", context, status=400 if form.errors else 200)


def _pay_group(request, form, offer):
    data = form.cleaned_data
    if data.get("shown_total") and data["shown_total"] != str(
        services.price_preview(offer=offer, coupon_code=data.get("coupon") or None, quantity=data["seats"]).total_price
    ):
        form.add_error(None, gettext("The price changed with the seats: check the new total and pay again."))
        return None
    checkout = partial(
        bulk_sales.group_code_checkout,
        gifter=request.user,
        offer=offer,
        seats=data["seats"],
        checkout_key=data["checkout_key"],
        expires_at=data.get("expires_on"),
        personal_note=data.get("personal_note", ""),
        coupon_code=data.get("coupon"),
    )
    return _pay_with(request, form, checkout)
