"""The shop's front: the catalogue, the offer pages and the web checkout (buy an offer for yourself or as a gift,
as a logged-in customer or a guest); and the account's saved-cards page."""

from decimal import Decimal, InvalidOperation

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from accounts.forms import add_service_error
from accounts.models import Customer, PaymentMethod
from accounts.selectors import customer_for_email, customer_has_access
from billing import services, stripe_payments
from billing.credit import credit_balance
from billing.forms import CardForm, CheckoutForm, new_checkout_key
from billing.gateways import PaymentError, get_gateway
from billing.models import Order
from gifts.models import DeliveryMethod, GiftAction, GroupCode
from gifts.selectors import design_for_checkout
from giftshop.errors import ServiceError
from giftshop.i18n import language_of
from giftshop.money import money
from giftshop.timezones import in_words
from offers.selectors import offer_get, offer_list_on_sale

GUEST_ORDERS = "guest_orders"
# Service errors' fields, as named on the checkout form.
FORM_FIELDS = {
    "couponCode": "coupon",
    "recipientEmail": "recipient_email",
    "personalNote": "personal_note",
    "paymentMethodId": "saved_card",
    "buyAsAGift": None,
    "offerId": None,
    "deliveryMethod": "delivery_method",
    "designId": "design",
    "language": "gift_language",
}


def catalogue(request):
    return render(request, "billing/catalogue.html", {"offers": offer_list_on_sale()})


def offer_detail(request, offer_id):
    """The offer's page: "For myself" unless the visitor already has this access, "As a gift" when giftable."""
    offer = offer_get(offer_id, active_only=True)
    context = {"offer": offer, "already_has_access": customer_has_access(request.user, offer)}
    return render(request, "billing/offer_detail.html", context)


def checkout(request, offer_id, as_gift=False):
    offer = offer_get(offer_id, active_only=True)
    if as_gift and not offer.giftable:
        raise Http404(_("This plan cannot be given as a gift."))
    customer = request.user if request.user.is_authenticated else None
    preview, coupon_error = _preview(offer, request.POST.get("coupon") if request.method == "POST" else None)
    credit_used = _credit_to_use(customer, preview)
    form = CheckoutForm(
        request.POST or None,
        customer=customer,
        as_gift=as_gift,
        initial={"checkout_key": new_checkout_key()},
        browser_card=stripe_payments.enabled(),
        credit_covers=bool(credit_used) and credit_used == preview.total_price,
    )
    if request.method == "POST" and request.POST.get("action") != "price" and form.is_valid():
        if _price_changed(request.POST.get("shown_total"), preview):
            form.add_error(
                None,
                _("The price has changed: the total is now %(total)s. Check the new total and pay again.")
                % {"total": money(preview.total_price, preview.currency)},
            )
        else:
            order = _pay(request, form, offer, as_gift, customer)
            if order is not None and form.browser_card and order.status != Order.Status.PAID:
                return redirect("billing:stripe_pay", order_id=order.pk)  # the card is given there, to Stripe
            if order is not None:
                return redirect("billing:thanks", order_id=order.pk)
    elif coupon_error and request.method == "POST":
        form.is_valid()
        form.add_error("coupon", coupon_error)
    return render(
        request,
        "billing/checkout.html",
        {
            "offer": offer,
            "form": form,
            "as_gift": as_gift,
            "preview": preview,
            "credit_used": credit_used,
            "card_pays": preview.total_price - credit_used,
            "already_has_access": customer_has_access(request.user, offer),
        },
    )


def _credit_to_use(customer, preview):
    """How much of the customer's account credit the order will use (issue 16; services.order_pay spends it): up to
    the total. With Stripe's browser payment only credit that pays all of it (the rest would be paid in the browser,
    which takes no credit)."""
    if customer is None or not preview.total_price:
        return Decimal("0.00")
    used = min(credit_balance(customer=customer, currency=preview.currency), preview.total_price)
    return used if used == preview.total_price or not stripe_payments.enabled() else Decimal("0.00")


def _price_changed(shown_total, preview):
    """Whether the total the page showed (and the Pay button named) is no longer the price: the payer confirms the
    new one before anything is charged."""
    try:
        return shown_total is not None and Decimal(shown_total) != preview.total_price
    except InvalidOperation:
        return True


def _preview(offer, coupon_code):
    try:
        return services.price_preview(offer=offer, coupon_code=coupon_code or None), None
    except ServiceError as error:
        return services.price_preview(offer=offer), error.message


def _pay(request, form, offer, as_gift, customer):
    data = form.cleaned_data
    if customer is None:
        customer = Customer.objects.owning(data["email"]).first()
        if customer is not None and customer.has_usable_password():
            form.add_error("email", _("This email has an account: log in first (the link is above the form)."))
            return None
        customer = customer or customer_for_email(data["email"])
    method, token = None, None
    in_browser = form.browser_card and preview_total(offer, data.get("coupon")) > 0 and not form.credit_covers
    if form.credit_covers:
        pass  # account credit pays it all: no card (order_pay spends the credit)
    elif data.get("saved_card"):
        method = get_object_or_404(PaymentMethod, pk=data["saved_card"], customer=customer)
    elif not form.browser_card:
        try:
            token = (
                get_gateway()
                .tokenize(number=data["card_number"], exp_month=data["exp_month"], exp_year=data["exp_year"])
                .token
            )
        except PaymentError as error:
            form.add_error("card_number", error.message)
            return None
    try:
        order = services.checkout(
            customer=customer,
            offer=offer,
            checkout_key=data["checkout_key"],
            as_gift=as_gift,
            coupon_code=data.get("coupon"),
            recipient_email=data.get("recipient_email", ""),
            scheduled_at=data.get("scheduled_at"),
            personal_note=data.get("personal_note", ""),
            recipient_first_name=data.get("recipient_first_name", ""),
            signature=data.get("signature", ""),
            time_zone=data.get("time_zone", ""),
            delivery_method=data.get("delivery_method") or DeliveryMethod.EMAIL,
            design=design_for_checkout(data.get("design"), field="designId") if as_gift else None,
            # An older page without the field: the language it was read in.
            gift_language=(data.get("gift_language") or language_of(translation.get_language())) if as_gift else "",
            payment_method=None if form.browser_card else method,  # Stripe: paid on the next page, or free
            card_token=token,
            pay=not in_browser,
        )
        if in_browser and order.status != Order.Status.PAID:
            stripe_payments.order_payment(order=order, payment_method=method, save_card=data.get("save_card", False))
    except PaymentError as error:
        form.add_error("saved_card" if method else None if form.browser_card else "card_number", error.message)
        return None
    except ServiceError as error:
        field = FORM_FIELDS.get(error.field, error.field)
        form.add_error(field if field in form.fields else None, error.message)
        return None
    if not request.user.is_authenticated:
        request.session[GUEST_ORDERS] = [*request.session.get(GUEST_ORDERS, []), order.pk][-20:]
    return order


def preview_total(offer, coupon_code):
    """What the order will cost: nothing to pay (a full discount) needs no payment page."""
    return _preview(offer, coupon_code)[0].total_price


def order_for_visitor(request, order_id):
    """The access rule for the thank-you page: the buyer, or the guest session that paid it."""
    order = get_object_or_404(
        Order.objects.select_related("offer", "customer", "gift__gifter", "gift__receiver"), pk=order_id
    )
    own = request.user.is_authenticated and order.customer_id == request.user.pk
    if not own and order.pk not in request.session.get(GUEST_ORDERS, []):
        raise Http404(_("Order not found."))
    return order


def thanks(request, order_id):
    order = order_for_visitor(request, order_id)
    made = _made_elsewhere(order)
    if made is not None:
        return made
    gift = getattr(order, "gift", None)
    context = {"order": order, "offer": order.offer, "gift": gift}
    if gift is not None:
        now = timezone.now()
        context.update(
            times=gift.delivery_in_words(now),  # in the zone chosen at checkout
            # "Send it now": it went out (or is going out this minute), so nothing about changing it.
            sent_now=gift.sent_at is not None or gift.scheduled_at <= now,
            # A gift sent today is past its cutoff already: say so, rather than show a past deadline.
            edit_refusal=gift.refusal(GiftAction.EDIT, now),
            guest=not request.user.is_authenticated,
            handover=gift.delivery_method == DeliveryMethod.HANDOVER,
        )
        if gift.claim_expiry_date and not gift.no_expiry:
            context["times"]["claim_by"] = in_words(gift.claim_expiry_date, gift.zone().key, now)
    if order.status != Order.Status.PAID:
        messages.info(request, _("Your payment is still being processed; this page will show it once it is done."))
    return render(request, "billing/thanks.html", context)


def _made_elsewhere(order):
    """A paid order of a gift list or a group code has its own page (where Stripe's return lands too)."""
    kind = (order.fulfilment or {}).get("kind")
    if order.status != Order.Status.PAID or kind is None:
        return None
    if kind == "bulk_list":
        return redirect("gifts:bulk_list", list_id=order.fulfilment["list_id"])
    group = GroupCode.objects.filter(order=order).first()
    return redirect("gifts:group_code", group_id=group.pk) if group else None


@require_GET
def price(request, offer_id):
    """The price summary for the checkout page's script (the page works without it)."""
    offer = offer_get(offer_id, active_only=True)
    preview, error = _preview(offer, request.GET.get("coupon"))
    return JsonResponse(
        {
            "offerPrice": str(preview.offer_price),
            "discount": str(preview.discount_amount),
            "total": str(preview.total_price),
            "currency": preview.currency,
            # As the page writes them, in the reader's language (giftshop/money.py): "$12.00", "12,00 $".
            "shown": {
                "offerPrice": money(preview.offer_price, preview.currency),
                "discount": money(preview.discount_amount, preview.currency),
                "total": money(preview.total_price, preview.currency),
                "pay": _("Pay %(amount)s") % {"amount": money(preview.total_price, preview.currency)},
            },
            "error": error,
        }
    )


# --- the account's saved cards: URLs under account/, named in the account's namespace (giftshop/urls.py) ---


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
            messages.success(request, _("%(card)s is saved as your default card.") % {"card": card.label})
            return redirect("accounts:payment_methods")
    cards = request.user.payment_methods.all()
    context = {"form": form, "cards": cards, "stripe": stripe_payments.enabled()}
    return render(request, "accounts/payment_methods.html", context)


@login_required
@require_POST
def payment_method_remove(request, pk):
    card = get_object_or_404(request.user.payment_methods, pk=pk)
    services.payment_method_remove(payment_method=card)
    messages.success(request, _("%(card)s is removed.") % {"card": card.label})
    return redirect("accounts:payment_methods")
