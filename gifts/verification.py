"""What redeeming a gift code would do, without doing it: the code look-up (typed, or the emailed link's token) under
the attempt limits, and the verification of the gift for a customer (a new subscription, an extended one, or a
refusal with its reason). Redeeming it is gifts.services'."""

from dataclasses import dataclass
from datetime import datetime

from dateutil.relativedelta import relativedelta
from django.db.models import BooleanField, Q
from django.db.models.expressions import RawSQL
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _lazy

from accounts.models import Customer, Subscription
from gifts import codes, metrics
from gifts.models import Gift, GiftStatus
from gifts.selectors import gift_withdrawn, gifts_for_update
from giftshop import ratelimit
from giftshop.errors import ServiceError


class RefusalReason:
    REDEEMED = "REDEEMED"
    EXPIRED = "EXPIRED"
    CANCELLED = "CANCELLED"
    INACTIVE_OFFER = "INACTIVE_OFFER"
    MORE_THAN_ONE_MATCHING_SUBSCRIPTION = "MORE_THAN_ONE_MATCHING_SUBSCRIPTION"
    RECURRING_PROCESS_ALREADY_STARTED = "RECURRING_PROCESS_ALREADY_STARTED"
    ALREADY_HAS_ACCESS = "ALREADY_HAS_ACCESS"
    STACK_CAP_EXCEEDED = "STACK_CAP_EXCEEDED"  # issue 16: the offer's stacked-access cap
    DECLINED = "DECLINED"  # its recipient said "No thanks" (issue 16); its gifter may send it to someone else


REFUSAL_MESSAGES = {
    RefusalReason.REDEEMED: _lazy("This gift code has already been redeemed."),
    RefusalReason.EXPIRED: _lazy("This gift code has expired."),
    RefusalReason.CANCELLED: _lazy("This gift has been cancelled."),
    RefusalReason.DECLINED: _lazy("This gift was declined, so it can no longer be redeemed."),
    RefusalReason.INACTIVE_OFFER: _lazy("The plan of this gift is no longer available."),
    RefusalReason.MORE_THAN_ONE_MATCHING_SUBSCRIPTION: _lazy(
        "You have more than one subscription this gift could extend; contact support to choose one."
    ),
    RefusalReason.RECURRING_PROCESS_ALREADY_STARTED: _lazy(
        "A renewal payment of your subscription is in progress; try again in a few minutes."
    ),
    RefusalReason.ALREADY_HAS_ACCESS: _lazy(
        "You already have a subscription with this access, and this gift cannot be added to it."
    ),
    RefusalReason.STACK_CAP_EXCEEDED: _lazy("This gift would take your access further ahead than its plan allows."),
}
# A gift its gifter withdrew (issue 16) is CANCELLED to the storefront contract, which has no other reason for it, but
# its recipient is told what happened.
WITHDRAWN_MESSAGE = _lazy("This gift was withdrawn by the person who gave it.")


@dataclass
class Verification:
    gift: Gift
    redeemable: bool
    mode: str = None  # NEW | EXTEND
    refusal: str = None
    subscription: Subscription = None  # the one extended (EXTEND), or created (after redemption)
    term_end: datetime = None  # access lasts until then, after redemption
    withdrawn: bool = False  # CANCELLED by its gifter (issue 16)
    term_start: datetime = None  # access begins then (a new subscription may start later), after redemption
    detail: str = None  # a refusal's own message, when it has dates in it (the stacked-access cap)

    @property
    def start_later_days(self):
        """How many days ahead the recipient may start the subscription redeeming makes: only a new one."""
        return self.gift.offer.start_later_days if self.redeemable and self.mode == "NEW" else 0

    @property
    def message(self):
        if self.detail:
            return self.detail
        return str(WITHDRAWN_MESSAGE if self.withdrawn else REFUSAL_MESSAGES.get(self.refusal, ""))


class GiftNotFound(ServiceError):
    def __init__(self):
        super().__init__(_("No gift has this code."), code="gift_not_found", status=404)


class RedeemRefused(ServiceError):
    def __init__(self, verification):
        status = 410 if verification.refusal == RefusalReason.EXPIRED else 409
        super().__init__(verification.message, code=verification.refusal, status=status)
        self.verification = verification


class InvalidLink(ServiceError):
    def __init__(self):
        super().__init__(
            _("This gift link is not valid. Type the code from your gift email instead."),
            code="invalid_link",
            status=404,
        )


def is_code_guess(error):
    """A failed attempt that counts against the attempt limits: the code is malformed or no gift has it, or the
    link token is wrong."""
    return isinstance(error, ServiceError) and error.code in ("gift_not_found", "invalid_code", "invalid_link")


def code_attempt(*, identities, code, action):
    """Runs `action`, a verify or redeem of `code` (typed, or a link token), under the attempt limits of
    `identities` (giftshop.ratelimit.identities): a code that does not exist (or cannot) uses up one of the client's
    and the account's attempts, and a typed one also one of the global budget; an existing code, whatever its fate,
    gives the attempt back. Raises ratelimit.LimitExceeded, before running `action`, when the attempt is refused."""
    typed = not codes.is_link_token(code)
    with metrics.code_attempt_counted(typed=typed, is_guess=is_code_guess):
        return ratelimit.attempt("gift-code", identities, action, is_guess=is_code_guess, typed=typed)


def gift_by_code(code, *, lock=False, gifts=None):
    """The gift with this code (as typed: case, spaces and look-alikes forgiven) or this link token
    (`codes.is_link_token`), from `gifts` if given; InvalidCode, GiftNotFound or InvalidLink."""
    if gifts is None:
        gifts = (gifts_for_update() if lock else Gift.objects).select_related("offer", "gifter")
    if codes.is_link_token(code):
        gift = gifts.filter(pk=codes.link_token_gift_id(code)).first()
        if gift is None or not codes.link_token_matches(code, gift.pk, gift.code_nonce):
            raise InvalidLink()
        return gift
    try:
        raw = codes.normalize(code)
    except codes.InvalidCode as error:
        raise ServiceError(str(error), code="invalid_code", field="code", status=400) from None
    try:  # get(), not first(): no ORDER BY on a unique look-up
        return gifts.get(code_digest=codes.digest(raw))
    except Gift.DoesNotExist:
        raise GiftNotFound() from None


def _matching_subscriptions(customer, offer, now, *, lock=False):
    # Held includes an auto-renewing subscription past its term that the renewal engine is charging or retrying:
    # it still gives access, so a gift extends it (or waits for the running payment) rather than starting another.
    # And a redeemed gift's subscription that starts later (`future` until then): a second gift extends it too. An
    # unclaimed merchant gift's `future` placeholder is no one's yet.
    started_later = Q(
        status=Subscription.Status.FUTURE,
        pk__in=Gift.objects.filter(status=GiftStatus.CLAIMED).values("subscription_id"),
    )
    held = (
        Subscription.objects.filter(Subscription.held_at(now) | started_later, customer=customer)
        .select_related("offer")
        .order_by("pk")
    )
    if lock:
        held = held.select_for_update(of=("self",))
    return [sub for sub in held if sub.offer.gives_same_access_as(offer)]


def stack_cap_refusal(gift, term_end, now, *, extend=False):
    """A refusal (Verification) when redeeming `gift` would give access until `term_end`, further ahead than its
    offer's stacked-access cap (issue 16: Offer.stack_cap_months, e.g. 18 like Spotify) from `now`; else None. It
    says how far the gift would take it and, for an extension (whose end does not move with the day it is redeemed),
    from when it may be redeemed."""
    cap = gift.offer.stack_cap_months
    if cap is None or term_end <= now + relativedelta(months=cap):
        return None
    earliest = term_end - relativedelta(months=cap)
    values = {
        "months": cap,
        "until": date_format(term_end, "DATE_FORMAT"),
        "after": date_format(earliest, "DATE_FORMAT"),
    }
    # A new subscription refused here is one whose own period (or chosen start) goes past the cap: no later day helps.
    if extend:
        message = _(
            "This gift would take your access past %(months)s months ahead (to %(until)s); redeem it after %(after)s."
        )
    else:
        message = _("This gift would take your access past %(months)s months ahead (to %(until)s).")
    message = message % values
    return Verification(gift=gift, redeemable=False, refusal=RefusalReason.STACK_CAP_EXCEEDED, detail=message)


def _capped(verification, now):
    """The verification, or the stacked-access cap's refusal of it."""
    refusal = stack_cap_refusal(verification.gift, verification.term_end, now, extend=verification.mode == "EXTEND")
    return refusal or verification


def verification_for(gift, customer, now, *, lock=False, holds_any=True):
    """What redeeming `gift` would do for `customer` now. `lock`: the caller holds the gift's row lock and is about
    to redeem, so the matching subscriptions are locked too. `holds_any=False`: the customer is known to hold no
    subscription at all, so none can match."""
    refusal = None
    if gift.status == GiftStatus.CLAIMED:
        refusal = RefusalReason.REDEEMED
    elif gift.status == GiftStatus.CANCELLED:
        refusal = RefusalReason.CANCELLED
    elif gift.status == GiftStatus.EXPIRED or gift.claim_window_passed(now):
        refusal = RefusalReason.EXPIRED
    elif gift.status == GiftStatus.DECLINED:
        refusal = RefusalReason.DECLINED
    elif not gift.offer.active:
        refusal = RefusalReason.INACTIVE_OFFER
    if refusal:
        withdrawn = refusal == RefusalReason.CANCELLED and gift_withdrawn(gift)
        return Verification(gift=gift, redeemable=False, refusal=refusal, withdrawn=withdrawn)
    if gift.subscription_id and gift.subscription.status == Subscription.Status.FUTURE:
        # A merchant gift comes with its own subscription, which the claim starts.
        return _capped(Verification(gift=gift, redeemable=True, mode="NEW", term_end=gift.offer.term_end(now)), now)
    matches = _matching_subscriptions(customer, gift.offer, now, lock=lock) if holds_any else []
    if matches and gift.offer.same_access_policy == gift.offer.SameAccessPolicy.REFUSE:
        return Verification(gift=gift, redeemable=False, refusal=RefusalReason.ALREADY_HAS_ACCESS)
    if len(matches) > 1:
        return Verification(gift=gift, redeemable=False, refusal=RefusalReason.MORE_THAN_ONE_MATCHING_SUBSCRIPTION)
    if matches and matches[0].renewal_started_at:
        return Verification(gift=gift, redeemable=False, refusal=RefusalReason.RECURRING_PROCESS_ALREADY_STARTED)
    if matches:
        match = matches[0]
        extended = Verification(
            gift=gift,
            redeemable=True,
            mode="EXTEND",
            subscription=match,
            term_end=match.term_end + gift.offer.period_delta,
        )
        return _capped(extended, now)
    return _capped(Verification(gift=gift, redeemable=True, mode="NEW", term_end=gift.offer.term_end(now)), now)


# Verify is the hot path (of the load bench, and of any guessing), and most of its time is the ORM building
# queries. So one query reads only the gift's fields verifying needs (any other would cost a query of its own) and
# tells whether the customer holds any live subscription at all (a superset of `held_at`): most recipients hold none
# and need no second query. That test is raw SQL: as an ORM Exists() it took 0.5 ms to compile, a sixth of verify.
VERIFY_FIELDS = ("status", "no_expiry", "claim_expiry_date", "subscription", "code_nonce", "offer")
HOLDS_ANY_SQL = (
    f"EXISTS (SELECT 1 FROM {Subscription._meta.db_table} "  # noqa: S608 - the name of a table, no input
    "WHERE customer_id = %s AND status IN (%s, %s, %s))"
)


def gift_verify(*, customer, code, now=None):
    """What redeeming `code` would do for `customer`, without doing it."""
    now = now or timezone.now()
    params = [customer.pk, Subscription.Status.ACTIVE, Subscription.Status.NON_RENEWING, Subscription.Status.FUTURE]
    holds_any = RawSQL(HOLDS_ANY_SQL, params, output_field=BooleanField())  # noqa: S611 - values are parameters
    gifts = Gift.objects.select_related("offer").only(*VERIFY_FIELDS).annotate(customer_holds_any=holds_any)
    gift = gift_by_code(code, gifts=gifts)
    return verification_for(gift, customer, now, holds_any=gift.customer_holds_any)


def gift_preview(*, code, now=None):
    """What a gift is and whether it can still be redeemed, for a visitor who is not logged in (so for no account in
    particular): a new subscription when nothing refuses it. Its gift comes with its offer and gifter."""
    gift = gift_by_code(code)
    return verification_for(gift, None, now or timezone.now(), holds_any=False)


def recipient_must_log_in(gift):
    """Whether the gift's address has an account with a password (or a closed one): its owner logs in to redeem,
    as the emailed link may only set the first password of an account made for a gift, or of a new one."""
    account = Customer.objects.owning(gift.recipient_email).first()
    return account is not None and (account.has_usable_password() or not account.is_active)
