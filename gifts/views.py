"""The gift pages: the recipient's redeem page, and the gifter's list of gifts given with their edit and
address-correction pages. A GET never redeems (mail scanners open links): verifying, confirming and choosing a
password there are POSTs with CSRF, and every look-up runs under the same attempt limits as the API."""

from datetime import date, timedelta
from functools import wraps

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.formats import date_format
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.utils.translation import pgettext_lazy
from django.views.decorators.http import require_http_methods

from accounts import services as accounts_services
from accounts.forms import add_service_error
from accounts.models import Customer
from gifts import codes, group_codes, nudges, services
from gifts.forms import GiftEditForm, RecipientForm, SendElsewhereForm
from gifts.models import Gift, GiftAction, GiftStatus
from gifts.selectors import (
    UNDELIVERABLE,
    gift_for_gifter,
    gift_language_for_link,
    gift_path,
    gifts_given_with_paths,
    withdrawn_by_gifter,
)
from gifts.verification import RedeemRefused, code_attempt, gift_preview, recipient_must_log_in
from giftshop import ratelimit
from giftshop.errors import ServiceError
from giftshop.i18n import language_of, locale_for
from giftshop.pages import PAGE_SIZE, page_number, pager
from giftshop.timezones import in_words

REDEEMED = "redeemed_gifts"
# The digests of the typed codes this session verified: Verify is a POST answered with a redirect to a GET, which
# shows the outcome only for a code verified so (the digest is no code: it is what the gifts table is searched by).
VERIFIED = "verified_gift_codes"
GIFT_STATUS_WORDS = {
    GiftStatus.UNCLAIMED: pgettext_lazy("gift status", "Sent"),
    GiftStatus.CLAIMED: pgettext_lazy("gift status", "Redeemed"),
    GiftStatus.EXPIRED: pgettext_lazy("gift status", "Expired"),
    GiftStatus.CANCELLED: pgettext_lazy("gift status", "Cancelled"),
    GiftStatus.SCHEDULED: pgettext_lazy("gift status", "Scheduled"),
}
WITHDRAWN_WORD = pgettext_lazy("gift status", "Withdrawn")
BOUNCED_WORD = pgettext_lazy("gift status", "Bounced")
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


def _gift_language(request):
    """The language of the gift an emailed link (`?t=`) opens, for a visitor who chose none: no language cookie and
    not signed in with a stored language (giftshop.i18n's order). None: the page's language as usual."""
    user = request.user
    if settings.LANGUAGE_COOKIE_NAME in request.COOKIES or (user.is_authenticated and user.locale):
        return None
    token = (request.POST.get("t") or request.GET.get("t") or "").strip()[:64]
    language = gift_language_for_link(token) if token else ""
    return language_of(language) if language else None


def in_gift_language(view):
    """The redeem and decline pages opened from the gift's link are read in the gift's language (Gift.language,
    chosen by the gifter for the recipient, issue 17), their `<html lang>` and Content-Language with them."""

    @wraps(view)
    def wrapped(request, *args, **kwargs):
        language = _gift_language(request)
        if language is None:
            return view(request, *args, **kwargs)
        with translation.override(language):
            request.LANGUAGE_CODE = language
            response = view(request, *args, **kwargs)
        response["Content-Language"] = language
        return response

    return wrapped


def outcome_in_words(verification, *, for_account):
    """What redeeming does; `for_account`: the verification was for the logged-in customer's account, else for a
    visitor's, whose subscriptions are not known yet."""
    if not verification.redeemable:
        return verification.message
    offer = verification.gift.offer
    until = date_format(verification.term_end, "DATE_FORMAT")
    if verification.mode == "EXTEND":
        return _("Redeeming extends your %(offer)s subscription to %(until)s.") % {
            "offer": verification.subscription.offer.title,
            "until": until,
        }
    new = _("Redeeming starts a new %(offer)s subscription, until %(until)s.") % {"offer": offer.title, "until": until}
    if for_account:
        return new
    also = _("If you already subscribe to %(offer)s or a plan with the same access, it adds %(period)s to it.") % {
        "offer": offer.title,
        "period": offer.length_in_words(),
    }
    return f"{new} {also}"


def _gift_facts(gift, zone_name):
    return {
        "offer": gift.offer.title,
        "period": gift.offer.length_in_words(),
        "sender": gift.from_name,
        "note": gift.personal_note,
        "redeem_by": "" if gift.no_expiry else in_words(gift.claim_expiry_date, zone_name),
    }


def _identities(request):
    """Who a code attempt counts against: an anonymous visitor by address only (their "account" would be one
    counter shared by every visitor)."""
    if request.user.is_authenticated:
        return ratelimit.identities(request)
    return [ratelimit.client_address(request)]


def _code_digest(code):
    try:
        return codes.digest(codes.normalize(code))
    except codes.InvalidCode:
        return None


def _page_url(code, token):
    return f"{reverse('gifts:redeem')}?{urlencode({'giftCode': code, **({'t': token} if token else {})})}"


def _lookup(request, secret):
    """What redeeming `secret` would do: for the logged-in customer, or for a visitor (no account in particular)."""
    customer, identities = request.user, _identities(request)
    if customer.is_authenticated:
        return code_attempt(
            identities=identities, code=secret, action=lambda: group_codes.code_verify(customer=customer, code=secret)
        )
    return code_attempt(identities=identities, code=secret, action=lambda: group_codes.code_preview(code=secret))


def _refused(request, context, error):
    """The page again, with why it failed as its error and the status (and Retry-After) that maps to."""
    context["error"] = error.message if isinstance(error, ServiceError) else str(error)
    if getattr(error, "code", None) == "invalid_link":
        context["token"] = ""  # back to the typed code
    response = render(request, "gifts/redeem.html", context, status=error.status)
    if getattr(error, "retry_after", None):
        response["Retry-After"] = str(error.retry_after)
    return response


@redeem_headers
@require_http_methods(["GET", "POST"])
@in_gift_language
def redeem(request):
    """`?giftCode=CODE` prefills the typed code; `?t=TOKEN`, the emailed link's token, shows the gift at once and
    still works while typed codes are paused. Every look-up runs under the attempt limits; only POSTs change
    anything: Verify (a typed code), Confirm (logged in), or choosing a password (the link's token, for an address
    without an account or password)."""
    code = (request.POST.get("code") or request.GET.get("giftCode") or "").strip()[:40]
    token = (request.POST.get("t") or request.GET.get("t") or "").strip()[:64]
    context = {"code": code, "token": token, "login_next": _page_url(code, token)}
    if request.method == "POST":
        action = {"confirm": _confirm, "claim": _claim}.get(request.POST.get("action"), _verify)
        return action(request, context)
    if token or (code and _code_digest(code) in request.session.get(VERIFIED, [])):
        return _show(request, context)
    return render(request, "gifts/redeem.html", context)


def _show(request, context, *, status=None):
    """The gift the link's token or a verified code names: what it is and what redeeming it does, then the next step:
    Confirm (logged in), choose a password (the link, for an address without an account or password), or log in."""
    user, token = request.user, context["token"]
    try:
        verification = _lookup(request, token or context["code"])
    except (ratelimit.LimitExceeded, ServiceError) as error:
        return _refused(request, context, error)
    gift = verification.gift
    must_log_in = not user.is_authenticated and (not token or recipient_must_log_in(gift))
    context.update(
        verification=verification,
        outcome=outcome_in_words(verification, for_account=user.is_authenticated),
        recipient_email=gift.recipient_email,
        can_set_password=bool(verification.redeemable and not user.is_authenticated and token and not must_log_in),
    )
    # "No thanks" (issue 16): a single gift the recipient may still decline (a group code's seat is no one's yet).
    if getattr(verification, "seats_left", None) is None and gift.refusal(GiftAction.DECLINE, timezone.now()) is None:
        context["decline_url"] = _decline_url(context["code"], token)
    if not verification.redeemable:  # shown as any refusal is, and nothing about the gift
        context["error"] = verification.message
        return render(request, "gifts/redeem.html", context, status=RedeemRefused(verification).status)
    context["facts"] = _gift_facts(gift, user.zone().key if user.is_authenticated else "UTC")
    context["seats_left"] = getattr(verification, "seats_left", None)  # a group code's (issue 18)
    context["start_later"] = _start_later_choice(request, verification)
    return render(request, "gifts/redeem.html", context, status=status or 200)


def _start_later_choice(request, verification):
    """The dates a new subscription may start on, in the zone of whoever redeems it (a new account: the site's), for
    the page's date field; None when it starts at once (an extension, or an offer that does not allow later)."""
    if not verification.start_later_days:
        return None
    zone = request.user.zone() if request.user.is_authenticated else Customer().zone()
    today = timezone.now().astimezone(zone).date()
    chosen = request.POST.get("start_date", "") if request.POST.get("start") == "later" else ""
    return {
        "min": today + timedelta(days=1),
        "max": today + timedelta(days=verification.start_later_days),
        "days": verification.start_later_days,
        "zone": zone.key,
        "chosen": chosen,
    }


def _start_chosen(request):
    """The start date the form chose (None: now); a malformed one is refused as the service refuses a bad date."""
    if request.POST.get("start") != "later":
        return None
    try:
        return date.fromisoformat(request.POST.get("start_date", "").strip())
    except ValueError:
        message = _("Choose a start date (YYYY-MM-DD).")
        raise ServiceError(message, code="START_DATE_INVALID", field="startDate") from None


def _verify(request, context):
    """POST, then a redirect to the GET that shows the outcome: Back never asks to send the form again."""
    code, token = context["code"], context["token"]
    try:
        _lookup(request, token or code)  # whatever the gift's fate, the GET shows it
    except (ratelimit.LimitExceeded, ServiceError) as error:
        return _refused(request, context, error)
    if not token:
        code = codes.format_code(codes.normalize(code))
        request.session[VERIFIED] = [*request.session.get(VERIFIED, []), _code_digest(code)][-10:]
    return redirect(_page_url(code, token))


def _redeemed(request, verification):
    request.session[REDEEMED] = [*request.session.get(REDEEMED, []), verification.gift.pk][-20:]
    return redirect("gifts:redeemed", gift_id=verification.gift.pk)


def _confirm(request, context):
    if not request.user.is_authenticated:
        return redirect(f"{reverse('accounts:login')}?{urlencode({'next': context['login_next']})}")
    secret = context["token"] or context["code"]
    try:
        start = _start_chosen(request)
        verification = code_attempt(
            identities=_identities(request),
            code=secret,
            action=lambda: group_codes.code_redeem(customer=request.user, code=secret, start=start),
        )
    except ServiceError as error:
        if error.field == "startDate":  # the gift as it was, the date field saying what is wrong
            context["field_errors"] = {"start_date": error.message}
            return _show(request, context, status=error.status)
        return _refused(request, context, error)
    except ratelimit.LimitExceeded as error:
        return _refused(request, context, error)
    return _redeemed(request, verification)


def _claim(request, context):
    """The link's token proves the mailbox: its owner, with no account or one without a password, chooses a password
    and redeems in one step, into the account of the gift's address (never another)."""
    token = context["token"]
    if request.user.is_authenticated or not codes.is_link_token(token):
        return redirect(context["login_next"])
    names = {name: request.POST.get(name, "")[:150] for name in ("first_name", "last_name")}
    context["names"] = names

    def account_for_link():
        preview = gift_preview(code=token)
        if not preview.redeemable:
            raise RedeemRefused(preview)
        password = request.POST.get("password", "")
        email = preview.gift.recipient_email
        locale = locale_for(translation.get_language())  # the page's language: the gift's, from its link
        return accounts_services.customer_for_gift_link(email=email, password=password, locale=locale, **names)

    try:
        customer = code_attempt(identities=_identities(request), code=token, action=account_for_link)
    except ServiceError as error:
        if error.field in ("password", "first_name", "last_name"):
            context["field_errors"] = {error.field: error.message}
            return _show(request, context, status=error.status)
        return _refused(request, context, error)
    except ratelimit.LimitExceeded as error:
        return _refused(request, context, error)
    login(request, customer)
    return _confirm(request, context)


def _decline_url(code, token):
    return f"{reverse('gifts:decline')}?{urlencode({'t': token} if token else {'giftCode': code})}"


@redeem_headers
@require_http_methods(["GET", "POST"])
@in_gift_language
def decline(request):
    """The recipient's "No thanks" (issue 16), reached by the delivery email's link (`?t=TOKEN`) or from the redeem
    page once a typed code is verified. The GET asks first and never changes anything (mail scanners open links);
    the POST declines, under the same attempt limits as redeeming, then the GET says it is declined (a repeat
    answers the same)."""
    code = (request.POST.get("code") or request.GET.get("giftCode") or "").strip()[:40]
    token = (request.POST.get("t") or request.GET.get("t") or "").strip()[:64]
    if not token and _code_digest(code) not in request.session.get(VERIFIED, []):
        return redirect(_page_url(code, ""))  # a typed code is verified on the redeem page first
    secret, identities = token or code, _identities(request)
    context = {"code": code, "token": token, "redeem_url": _page_url(code, token)}
    try:
        if request.method == "POST":
            customer = request.user if request.user.is_authenticated else None
            code_attempt(
                identities=identities,
                code=secret,
                action=lambda: services.gift_decline(code=secret, customer=customer),
            )
            return redirect(_decline_url(code, token))
        gift = code_attempt(identities=identities, code=secret, action=lambda: gift_preview(code=secret)).gift
    except (ratelimit.LimitExceeded, ServiceError) as error:
        context["error"] = error.message if isinstance(error, ServiceError) else str(error)
        return render(request, "gifts/decline.html", context, status=error.status)
    now = timezone.now()
    declined = gift.status == GiftStatus.DECLINED and not gift.claim_window_passed(now)
    refusal = None if declined else gift.refusal(GiftAction.DECLINE, now)
    zone = request.user.zone().key if request.user.is_authenticated else "UTC"
    context.update(declined=declined, error=refusal, facts=None if refusal else _gift_facts(gift, zone))
    return render(request, "gifts/decline.html", context, status=409 if refusal else 200)


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
            "zone": request.user.zone(),  # the dates as the recipient's calendar shows them (a start chosen there)
        },
    )


def _gift_item(gift, now):
    """`gift` is annotated with last_delivery_status (gifts.selectors). Times are in the gift's zone."""
    bounced = gift.status == GiftStatus.UNCLAIMED and gift.last_delivery_status in UNDELIVERABLE
    times = gift.delivery_in_words(now)
    status = GIFT_STATUS_WORDS.get(gift.status) or gift.get_status_display()
    if withdrawn_by_gifter(gift):
        status = WITHDRAWN_WORD  # by its gifter, refunded (not support's or the merchant's cancel)
    refusal = gift.refusal(GiftAction.EDIT, now)
    # "Withdraw and refund" (issue 16): until when, in the gifter's own zone (billing's page does it).
    withdrawable = gift.refusal(GiftAction.WITHDRAW, now) is None
    return {
        "gift": gift,
        "status": BOUNCED_WORD if bounced else status,
        "delivery": times["delivery"],
        "for_recipient": times["for_recipient"],
        "edit_until": "" if refusal else times["edit_until"],
        "refusal": refusal,
        "bounced": bounced,
        # A bounced delivery can be resent to a corrected address; an expired gift's page says what can be done.
        "correctable": bounced or gift.status == GiftStatus.EXPIRED,
        # Its code still works: a certificate to hand over in person (gifts/certificates.py).
        "printable": gift.status in (GiftStatus.SCHEDULED, GiftStatus.UNCLAIMED),
        "withdraw_until": in_words(gift.refund_deadline(), gift.gifter_zone.key, now) if withdrawable else "",
        # Its recipient said "No thanks" (issue 16): when, in the gifter's zone, and whether it can go to someone else.
        "declined_on": in_words(gift.declined_at, gift.gifter_zone.key, now) if gift.declined_at else "",
        "send_elsewhere": gift.refusal(GiftAction.SEND_ELSEWHERE, now) is None,
        # Each step of its way, in the gifter's zone (the list's query prefetched what it reads).
        "path": gift_path(gift, gift.gifter_zone.key, now),
        # The "not redeemed yet" page: resend, change the address, or hand it over in person (gifts/nudges.py).
        "follow_up": not bounced and gift.refusal(GiftAction.GIFTER_RESEND, now) is None,
    }


@login_required
def gifts(request):
    page, now = page_number(request), timezone.now()
    given = gifts_given_with_paths(request.user)
    rows = list(given[(page - 1) * PAGE_SIZE : page * PAGE_SIZE])
    zone = request.user.zone()
    for gift in rows:
        gift.gifter_zone = zone  # the same gifter for every row: the site's zone is read once, not per gift
    items = [_gift_item(gift, now) for gift in rows]
    lists = request.user.bulk_lists.select_related("offer").order_by("-created_at")[:50]
    groups = request.user.group_codes.select_related("offer").order_by("-created_at")[:50]
    context = {"items": items, "lists": lists, "groups": groups, **pager(page, given.count())}
    return render(request, "gifts/gifts.html", context)


def _gift_initial(gift):
    """The form's fields as the gifter chose them: the delivery's date and time on the clock of the gift's zone."""
    zone = gift.zone()
    local = timezone.localtime(gift.scheduled_at, zone)
    return {
        "recipient_email": gift.recipient_email,
        "recipient_email_again": gift.recipient_email,
        "delivery_date": local.date(),
        "delivery_time": local.time().replace(second=0, microsecond=0),
        "time_zone": zone.key,
        "personal_note": gift.personal_note,
        "recipient_first_name": gift.recipient_first_name,
        "signature": gift.signature,
    }


@login_required
def gift_edit(request, gift_id):
    gift = gift_for_gifter(request.user, gift_id)
    initial = _gift_initial(gift)
    form = GiftEditForm(request.POST or None, initial=initial, zone_name=initial["time_zone"])
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
                recipient_first_name=data["recipient_first_name"],
                signature=data["signature"],
                time_zone=data["time_zone"],
                by_gifter=True,
            )
        except ServiceError as error:
            add_service_error(form, error)
        else:
            messages.success(request, _("Your gift for %(email)s is updated.") % {"email": data["recipient_email"]})
            return redirect("gifts:gifts")
    item = _gift_item(gift, timezone.now())
    return render(request, "gifts/gift_edit.html", {"item": item, "form": form})


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
            message = _("Your gift is on its way to %(email)s, with the same code.") % {"email": address}
            messages.success(request, message)
            return redirect("gifts:gifts")
    context = {"gift": gift, "form": form, "refusal": refusal, "bounced": gift.last_delivery_status in UNDELIVERABLE}
    return render(request, "gifts/correct_recipient.html", context, status=status)


# The "not redeemed yet" page's actions (issue 16): each a POST, refused with its reason, recorded on the gift.
FOLLOW_UPS = {"resend": nudges.gift_gifter_resend, "handover": nudges.gift_handover_choose}


@login_required
@require_http_methods(["GET", "POST"])
def not_redeemed(request, gift_id):
    """The gifter's answers to a gift not redeemed yet (the gift_not_redeemed email links here): send it again,
    change the address (the correction page), or take it to hand over in person."""
    gift = gift_for_gifter(request.user, gift_id)
    status = 200
    if request.method == "POST":
        action = FOLLOW_UPS.get(request.POST.get("action"))
        if action is None:
            raise Http404("No such action.")
        try:
            action(gift_id=gift.pk, actor=f"customer:{request.user.pk}")
        except ServiceError as error:
            messages.error(request, error.message)
            status = error.status
        else:
            if request.POST["action"] == "resend":
                message = _("We have emailed your gift to %(email)s again.") % {"email": gift.recipient_email}
                messages.success(request, message)
            else:
                messages.success(request, _("The gift is yours to hand over: print its certificate below."))
            return redirect(f"{reverse('gifts:gifts')}#gift-{gift.pk}")
    now = timezone.now()
    context = {
        "gift": gift,
        "refusal": gift.refusal(GiftAction.GIFTER_RESEND, now),
        "bounced": gift.last_delivery_status in UNDELIVERABLE,
        "sent": in_words(gift.sent_at, request.user.zone().key, now),
    }
    return render(request, "gifts/not_redeemed.html", context, status=status)


@login_required
@require_http_methods(["GET", "POST"])
def send_elsewhere(request, gift_id):
    """The gifter sends a gift its recipient declined to someone else (issue 16): the same code, a fresh claim window,
    the delivery email to the new address. Anyone else's gift is a 404; a gift that cannot be (no longer declined,
    past its window, a merchant's) shows why, and a POST then is refused (409) with nothing changed."""
    gift = gift_for_gifter(request.user, gift_id)
    initial = {"personal_note": gift.personal_note}
    form = SendElsewhereForm(request.POST or None, initial=initial)
    refusal, status = gift.refusal(GiftAction.SEND_ELSEWHERE, timezone.now()), 200
    if request.method == "POST" and refusal:
        status = 409
    elif request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            services.gift_send_elsewhere(
                gift_id=gift.pk,
                gifter=request.user,
                recipient_email=data["recipient_email"],
                recipient_first_name=data["recipient_first_name"],
                personal_note=data["personal_note"],
            )
        except ServiceError as error:
            add_service_error(form, error)
            status = error.status
        else:
            address = data["recipient_email"]
            message = _("Your gift is on its way to %(email)s, with the same code.") % {"email": address}
            messages.success(request, message)
            return redirect("gifts:gifts")
    elif request.method == "POST":
        status = 422
    context = {"gift": gift, "form": form, "refusal": refusal}
    return render(request, "gifts/send_elsewhere.html", context, status=status)
