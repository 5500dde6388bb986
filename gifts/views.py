"""The gift pages: the recipient's redeem page, and the gifter's list of gifts given with their edit and
address-correction pages. A GET never redeems (mail scanners open links): verifying and confirming are POSTs
with CSRF, and both run under the same attempt limits as the API."""

from functools import wraps

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode
from django.views.decorators.http import require_http_methods

from accounts.forms import add_service_error
from gifts import services
from gifts.forms import GiftEditForm, RecipientForm
from gifts.models import Gift, GiftAction, GiftStatus
from gifts.selectors import UNDELIVERABLE, gift_for_gifter, last_delivery_status
from gifts.verification import RedeemRefused, code_attempt, gift_verify
from giftshop import ratelimit
from giftshop.errors import ServiceError
from giftshop.pages import PAGE_SIZE, local_time, page_number, pager

REDEEMED = "redeemed_gifts"
GIFT_STATUS_WORDS = {
    GiftStatus.UNCLAIMED: "Sent",
    GiftStatus.CLAIMED: "Redeemed",
    GiftStatus.EXPIRED: "Expired",
    GiftStatus.CANCELLED: "Cancelled",
}
# The redeem page carries a one-time code in its URL: no referrer leaves it for another site, and it loads
# nothing foreign. Not "no-referrer": browsers then send `Origin: null` with the page's own POSTs, which
# Django's CSRF check refuses (Verify and Confirm would always fail with a 403).
REDEEM_HEADERS = {
    "Referrer-Policy": "same-origin",
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
    """`?giftCode=CODE` prefills the typed code; `?t=TOKEN`, the emailed link's token, redeems without typing and
    still works while typed codes are paused. Either way only the POSTs look anything up."""
    code = (request.POST.get("code") or request.GET.get("giftCode") or "").strip()[:40]
    token = (request.POST.get("t") or request.GET.get("t") or "").strip()[:64]
    query = {"giftCode": code, **({"t": token} if token else {})}
    context = {"code": code, "token": token, "login_next": f"{reverse('gifts:redeem')}?{urlencode(query)}"}
    if request.method == "GET" or not request.user.is_authenticated:
        if request.method == "POST":
            return redirect(f"{reverse('accounts:login')}?{urlencode({'next': context['login_next']})}")
        return render(request, "gifts/redeem.html", context)
    action = request.POST.get("action")
    secret = token or code
    identities = ratelimit.identities(request)
    status, retry_after = 200, None
    try:
        if action == "confirm":
            verification = code_attempt(
                identities=identities,
                code=secret,
                action=lambda: services.gift_redeem(customer=request.user, code=secret),
            )
            request.session[REDEEMED] = [*request.session.get(REDEEMED, []), verification.gift.pk][-20:]
            return redirect("gifts:redeemed", gift_id=verification.gift.pk)
        verification = code_attempt(
            identities=identities,
            code=secret,
            action=lambda: gift_verify(customer=request.user, code=secret),
        )
        context.update(verification=verification, outcome=outcome_in_words(verification))
        status = 200 if verification.redeemable else 409
    except ratelimit.LimitExceeded as limited:
        context["error"] = str(limited)
        status, retry_after = limited.status, limited.retry_after
    except RedeemRefused as refused:
        context["error"] = refused.message
        status = refused.status
    except ServiceError as error:
        context["error"] = error.message
        status = error.status
        if error.code == "invalid_link":
            context["token"] = ""  # back to the typed code
    response = render(request, "gifts/redeem.html", context, status=status)
    if retry_after:
        response["Retry-After"] = str(retry_after)
    return response


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


def _gift_item(gift, zone, now):
    """`gift` is annotated with last_delivery_status (gifts.selectors)."""
    bounced = gift.status == GiftStatus.UNCLAIMED and gift.last_delivery_status in UNDELIVERABLE
    if gift.status == GiftStatus.SCHEDULED:
        status = f"Scheduled for {local_time(gift.scheduled_at, zone)}"
    else:
        status = "Bounced" if bounced else GIFT_STATUS_WORDS[gift.status]
    return {
        "gift": gift,
        "status": status,
        "delivery": local_time(gift.sent_at or gift.scheduled_at, zone),
        "refusal": gift.refusal(GiftAction.EDIT, now),
        "bounced": bounced,
        # A bounced delivery can be resent to a corrected address; an expired gift's page says what can be done.
        "correctable": bounced or gift.status == GiftStatus.EXPIRED,
    }


@login_required
def gifts(request):
    zone, page, now = request.user.zone(), page_number(request), timezone.now()
    given = (
        request.user.gifts_given.select_related("offer")
        .annotate(last_delivery_status=last_delivery_status())
        .order_by("-created_at", "-pk")
    )
    rows = given[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
    items = [_gift_item(gift, zone, now) for gift in rows]
    return render(request, "gifts/gifts.html", {"items": items, "zone": zone.key, **pager(page, given.count())})


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
            services.gift_update(
                gift_id=gift.pk,
                action=GiftAction.EDIT,
                actor=f"customer:{request.user.pk}",
                names="mediastore",
                recipient_email=data["recipient_email"],
                scheduled_at=data["scheduled_at"] or timezone.now(),  # "Send it now"
                personal_note=data["personal_note"],
                by_gifter=True,
            )
        except ServiceError as error:
            add_service_error(form, error)
        else:
            messages.success(request, f"Your gift for {data['recipient_email']} is updated.")
            return redirect("gifts:gifts")
    item = _gift_item(gift, zone, timezone.now())
    return render(request, "gifts/gift_edit.html", {"item": item, "form": form, "zone": zone.key})


@login_required
@require_http_methods(["GET", "POST"])
def correct_recipient(request, gift_id):
    """The gifter corrects the address of a delivered gift (one that bounced, usually): the same code is emailed
    to the new address. A scheduled gift is changed on its edit page instead."""
    gift = gift_for_gifter(request.user, gift_id)
    if gift.status == GiftStatus.SCHEDULED:
        return redirect("gifts:gift_edit", gift_id=gift.pk)
    form = RecipientForm(request.POST or None)
    refusal, status = gift.refusal(GiftAction.CORRECT_RECIPIENT, timezone.now()), 200
    if request.method == "POST" and refusal:
        status = 409
    elif request.method == "POST" and form.is_valid():
        address = form.cleaned_data["recipient_email"]
        try:
            actor = f"customer:{request.user.pk}"
            services.gift_change_recipient(gift_id=gift.pk, recipient_email=address, actor=actor, by_gifter=True)
        except ServiceError as error:
            form.add_error("recipient_email" if error.field == "recipient_email" else None, error.message)
            status = error.status
        else:
            messages.success(request, f"Your gift is on its way to {address}, with the same code.")
            return redirect("gifts:gifts")
    context = {"gift": gift, "form": form, "refusal": refusal, "bounced": gift.last_delivery_status in UNDELIVERABLE}
    return render(request, "gifts/correct_recipient.html", context, status=status)
