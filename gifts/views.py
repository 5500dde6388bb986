"""The recipient's redeem page. A GET never redeems (mail scanners open links): verifying and confirming are
POSTs with CSRF, and both run under the same attempt limits as the API."""

from functools import wraps

from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.http import require_http_methods

from gifts import services
from gifts.models import Gift
from giftshop import ratelimit
from giftshop.errors import ServiceError

REDEEMED = "redeemed_gifts"
# The redeem page carries a one-time code in its URL: no referrer leaves it, and it loads nothing foreign.
REDEEM_HEADERS = {
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "default-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
    "form-action 'self'",
    "Cache-Control": "no-store",
}


def redeem_headers(view):
    @wraps(view)
    def wrapped(request, *args, **kwargs):
        response = view(request, *args, **kwargs)
        for name, value in REDEEM_HEADERS.items():
            response[name] = value
        return response

    return wrapped


def _client_ip(request):
    from rest_framework.throttling import BaseThrottle

    return BaseThrottle().get_ident(request)


def _attempt(request, action):
    identities = [f"ip:{_client_ip(request)}", f"customer:{request.user.pk}"]
    return ratelimit.attempt("gift-code", identities, action, is_guess=services.is_code_guess)


def outcome_in_words(verification):
    if not verification.redeemable:
        return verification.message
    offer = verification.gift.offer
    until = verification.term_end
    if verification.mode == "EXTEND":
        return f"Redeeming extends your {verification.subscription.offer.title} subscription to {until:%-d %B %Y}."
    return f"Redeeming starts a new {offer.title} subscription, until {until:%-d %B %Y}."


@redeem_headers
@require_http_methods(["GET", "POST"])
def redeem(request):
    code = (request.POST.get("code") or request.GET.get("giftCode") or "").strip()[:40]
    context = {"code": code, "login_next": f"{reverse('gifts:redeem')}?{urlencode({'giftCode': code})}"}
    if request.method == "GET" or not request.user.is_authenticated:
        if request.method == "POST":
            return redirect(f"{reverse('accounts:login')}?{urlencode({'next': context['login_next']})}")
        return render(request, "gifts/redeem.html", context)
    action = request.POST.get("action")
    status = 200
    try:
        if action == "confirm":
            verification = _attempt(request, lambda: services.gift_redeem(customer=request.user, code=code))
            request.session[REDEEMED] = [*request.session.get(REDEEMED, []), verification.gift.pk][-20:]
            return redirect("gifts:redeemed", gift_id=verification.gift.pk)
        verification = _attempt(request, lambda: services.gift_verify(customer=request.user, code=code))
        context.update(verification=verification, outcome=outcome_in_words(verification))
        status = 200 if verification.redeemable else 409
    except ratelimit.LimitExceeded as limited:
        context["error"] = f"Too many attempts. Try again in {limited.retry_after // 60 + 1} minutes."
        status = 429
    except services.RedeemRefused as refused:
        context["error"] = refused.message
        status = refused.status
    except ServiceError as error:
        context["error"] = error.message
        status = error.status
    return render(request, "gifts/redeem.html", context, status=status)


@redeem_headers
@login_required
def redeemed(request, gift_id):
    if gift_id not in request.session.get(REDEEMED, []):
        raise Http404("Gift not found.")
    gift = get_object_or_404(
        Gift.objects.select_related("offer", "subscription__offer"), pk=gift_id, receiver=request.user
    )
    return render(
        request,
        "gifts/redeemed.html",
        {
            "gift": gift,
            "subscription": gift.subscription,
            "has_card": request.user.payment_methods.exists(),
        },
    )
