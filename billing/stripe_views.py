"""The pages where the customer pays with Stripe's Payment Element: the checkout's payment step (after the order's
details were given on the checkout form) and its return, and the page an emailed link opens to confirm a renewal
the bank wants authenticated. Each page that runs Stripe.js allows, in its Content-Security-Policy, Stripe's
origins and nothing else from outside."""

from django.conf import settings
from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from billing import stripe_payments
from billing.gateways import PaymentError
from billing.models import Order, Payment
from billing.renewals import renewal_subscription
from billing.stripe_gateway import stripe_csp
from billing.views import order_for_visitor
from giftshop.errors import ServiceError


def _with_stripe(response):
    response._csp_update = stripe_csp()
    return response


def _back_to_checkout(order):
    return redirect("billing:gift_checkout" if order.buy_as_gift else "billing:checkout", offer_id=order.offer.long_id)


def _stripe_only():
    if not stripe_payments.enabled():
        raise Http404(_("Payments are not taken in the browser here."))


def pay(request, order_id):
    """The payment step: the Payment Element for a new card, or the saved card chosen at checkout; 3-D Secure and
    wallets are Stripe.js's. Confirming sends the browser to `pay_return`."""
    _stripe_only()
    order = order_for_visitor(request, order_id)
    if order.status == Order.Status.PAID:
        return redirect("billing:thanks", order_id=order.pk)
    payment = order.payments.filter(status=Payment.Status.PENDING, gateway="stripe").exclude(reference="").first()
    if payment is None:
        messages.info(request, _("Your payment was not started or has expired: check the details and pay again."))
        return _back_to_checkout(order)
    try:
        payment, client_secret = stripe_payments.order_payment(order=order, payment_method=payment.payment_method)
    except (PaymentError, ServiceError) as error:  # Stripe down, the price changed, the order expired
        messages.error(request, error.message)
        return _back_to_checkout(order)
    order.refresh_from_db()
    if order.status == Order.Status.PAID:
        return redirect("billing:thanks", order_id=order.pk)
    context = {
        "order": order,
        "offer": order.offer,
        "payment": payment,
        "client_secret": client_secret,
        "return_url": request.build_absolute_uri(reverse("billing:stripe_return", args=[order.pk])),
        "saved_card": payment.payment_method,
        "publishable_key": settings.STRIPE_PUBLISHABLE_KEY,
        "stripe_js_url": settings.STRIPE_JS_URL,
        "failure": payment.failure_message,
    }
    return _with_stripe(render(request, "billing/pay.html", context))


@require_GET
def pay_return(request, order_id):
    """Where Stripe.js sends the browser after confirming (or after 3-D Secure): the server asks Stripe how the
    PaymentIntent stands and settles it (the webhook may have done so already); never trusts the address's
    `redirect_status`."""
    _stripe_only()
    order = order_for_visitor(request, order_id)
    payment = order.payments.filter(reference=request.GET.get("payment_intent", "")).first()
    if payment is None:
        return redirect("billing:stripe_pay", order_id=order.pk)
    intent = stripe_payments.gateway().intent_get(payment.reference)
    stripe_payments.settle(intent)
    if intent.status in ("succeeded", "processing"):
        return redirect("billing:thanks", order_id=order.pk)
    messages.error(request, intent.error_message or _("The payment was not completed. Try again or use another card."))
    return redirect("billing:stripe_pay", order_id=order.pk)


def authenticate(request, token):
    """A renewal the bank wanted authenticated (the emailed link): the customer confirms it with the card on file,
    passing 3-D Secure in the browser."""
    _stripe_only()
    payment = stripe_payments.authenticate_payment(token)
    if payment is None or not payment.reference:
        raise Http404(_("This link is not valid any more."))
    subscription, _term_end = renewal_subscription(payment)
    intent = stripe_payments.gateway().intent_get(payment.reference)
    if payment.status == Payment.Status.SUCCEEDED or intent.status == "succeeded":
        stripe_payments.settle(intent)
        return render(request, "billing/authenticated.html", {"payment": payment, "subscription": subscription})
    context = {
        "payment": payment,
        "offer": subscription.offer if subscription else None,
        "client_secret": intent.client_secret,
        "saved_card_token": payment.payment_method.token if payment.payment_method else "",
        "return_url": request.build_absolute_uri(reverse("billing:stripe_authenticated", args=[token])),
        "publishable_key": settings.STRIPE_PUBLISHABLE_KEY,
        "stripe_js_url": settings.STRIPE_JS_URL,
        "ended": intent.status == "canceled",
    }
    return _with_stripe(render(request, "billing/authenticate.html", context))


@require_GET
def authenticated(request, token):
    _stripe_only()
    payment = stripe_payments.authenticate_payment(token)
    if payment is None or not payment.reference:
        raise Http404(_("This link is not valid any more."))
    stripe_payments.settle(stripe_payments.gateway().intent_get(payment.reference))
    payment.refresh_from_db()
    if payment.status != Payment.Status.SUCCEEDED:
        messages.error(request, _("The payment was not confirmed. Try again."))
        return redirect("billing:stripe_authenticate", token=token)
    subscription, _term_end = renewal_subscription(payment)
    return render(request, "billing/authenticated.html", {"payment": payment, "subscription": subscription})
