"""Everything that changes a gift: the state machine's one writer, creation, delivery, expiry, changes to its
details (the gifter's edit, the merchant API's update_gift, a corrected address), support's resend and new code, and
redemption. What redeeming would do, without doing it, is gifts/verification.py."""

import logging
import time
from datetime import datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.db.models import Case, Exists, F, OuterRef, Q, Value, When
from django.db.models.functions import Greatest
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from accounts import services as accounts_services
from accounts.models import PaymentMethod, Subscription
from accounts.selectors import customer_for_email
from emails.models import Email
from emails.services import email_queue, hand_off, send_claimed_emails
from gifts import codes, health, signals
from gifts.models import (
    GIFT_FIELDS,
    TRANSITIONS,
    DeliveryMethod,
    Gift,
    GiftAction,
    GiftStatus,
    GiftTimeline,
    gift_fields_clean,
    scheduled_or_now,
)
from gifts.resources import gift_resource
from gifts.selectors import gift_for_update, gifts_for_update
from gifts.verification import (
    RedeemRefused,
    RefusalReason,
    Verification,
    gift_by_code,
    stack_cap_refusal,
    verification_for,
)
from giftshop import ratelimit
from giftshop.errors import ServiceError
from giftshop.models import SiteSettings
from giftshop.services import merchant_events_record

logger = logging.getLogger(__name__)


def epoch_ms(when):
    return int(when.timestamp() * 1000)


def next_version(now):
    # Chargebee's resource_version: milliseconds, and strictly increasing even for two changes in one ms.
    return Greatest(Value(epoch_ms(now)), F("resource_version") + 1)


# --- the state machine ----------------------------------------------------------------------------------


def gift_transition(*, gift_ids, to, now, actor="", **fields):
    """Moves the gifts that are in a state `to` may be entered from; returns the ids that moved. The UPDATE's
    WHERE on status decides races: a gift someone else moved first is simply not among the ids returned."""
    allowed = TRANSITIONS[to]
    ids = list(Gift.objects.filter(pk__in=gift_ids, status__in=allowed).values_list("pk", flat=True))
    if not ids:
        return []
    moved = Gift.objects.filter(pk__in=ids, status__in=allowed).update(
        status=to, updated_at=now, resource_version=next_version(now), **fields
    )
    if moved != len(ids):
        # Only possible when the caller did not lock the rows: redo per gift so the answer stays exact.
        ids = [pk for pk in ids if Gift.objects.filter(pk=pk, status=to, updated_at=now).exists()]
    GiftTimeline.objects.bulk_create([GiftTimeline(gift_id=pk, status=to, occurred_at=now, actor=actor) for pk in ids])
    for pk in ids:
        logger.info("gift %s is now %s (%s)", pk, to, actor or "system", extra={"gift_id": pk})
    events_record(gift_ids=ids, event_type=f"gift_{to}", now=now)
    return ids


def events_record(*, gift_ids, event_type, now, extra=None):
    """Records one event per gift (Chargebee's envelope, the gift as it is now) and queues it for every webhook
    endpoint that wants it, in the caller's transaction."""
    if not gift_ids:
        return []
    gifts = Gift.objects.filter(pk__in=gift_ids).prefetch_related("timeline").order_by("pk")
    return merchant_events_record(
        events=[(event_type, g.pk, {"gift": gift_resource(g), **(extra or {})}) for g in gifts], now=now
    )


# --- creation -------------------------------------------------------------------------------------------


def _save_with_new_code(gift, now):
    """Gives the gift a new code and saves it: a new gift is inserted, an existing one gets the code in one UPDATE.
    A (one in 10^12-ish) collision on the unique digest gets another code instead of an error."""
    for _attempt in range(5):
        gift.assign_code()
        try:
            with transaction.atomic():
                if gift.pk is None:
                    gift.save()
                else:
                    Gift.objects.filter(pk=gift.pk).update(
                        code_nonce=gift.code_nonce,
                        code_digest=gift.code_digest,
                        code_last4=gift.code_last4,
                        updated_at=now,
                        resource_version=next_version(now),
                    )
            return gift
        except IntegrityError as error:
            if "code_digest" not in str(error):
                raise
    raise RuntimeError("could not find a free gift code")  # pragma: no cover - would take ~10^12 live gifts


def gift_defaults(*, scheduled_at, auto_claim=None, no_expiry=None, claim_expiry_date=None):
    """Site-setting defaults for what the buyer did not choose: (auto_claim, no_expiry, claim_expiry_date)."""
    site = SiteSettings.load()
    auto_claim = site.default_auto_claim if auto_claim is None else auto_claim
    if auto_claim or no_expiry:
        return auto_claim, bool(no_expiry), None
    if claim_expiry_date is not None and claim_expiry_date <= scheduled_at:
        raise ServiceError(_("The claim expiry date must be after the delivery date."), field="claim_expiry_date")
    if claim_expiry_date is None:
        if site.default_claim_expiry_days is None:
            return False, True, None
        claim_expiry_date = scheduled_at + timedelta(days=site.default_claim_expiry_days)
    return False, False, claim_expiry_date


def gift_create(
    *,
    gifter,
    offer,
    recipient_email,
    scheduled_at,
    now,
    time_zone="",
    source=Gift.Source.STOREFRONT,
    order=None,
    invoice=None,
    personal_note="",
    signature="",
    recipient_first_name="",
    recipient_last_name="",
    receiver=None,
    subscription=None,
    auto_claim=None,
    no_expiry=None,
    claim_expiry_date=None,
    delivery_method=DeliveryMethod.EMAIL,
    design=None,
    language="",
):
    """A paid gift, `scheduled` for delivery at `scheduled_at` (the past means now). Call inside the payment's
    transaction. A gift its gifter hands over in person (`delivery_method` "handover") is theirs at once: it is
    `unclaimed` from the start, its claim window runs from now, no one is emailed but the gifter (the receipt,
    with its certificate), and it needs no recipient address; it is never auto-claimed (no address to prove)."""
    handover = delivery_method == DeliveryMethod.HANDOVER
    scheduled_at = now if handover else scheduled_or_now(scheduled_at, now)
    auto_claim, no_expiry, claim_expiry_date = gift_defaults(
        scheduled_at=scheduled_at,
        auto_claim=False if handover else auto_claim,
        no_expiry=no_expiry,
        claim_expiry_date=claim_expiry_date,
    )
    addressed = {"recipient_email": recipient_email} if recipient_email or not handover else {}
    fields = gift_fields_clean(
        names="mediastore",
        **addressed,
        recipient_first_name=recipient_first_name,
        recipient_last_name=recipient_last_name,
        personal_note=personal_note,
        signature=signature,
    )
    gift = _save_with_new_code(
        Gift(
            gifter=gifter,
            offer=offer,
            order=order,
            invoice=invoice,
            source=source,
            **fields,
            receiver=receiver,
            subscription=subscription,
            scheduled_at=scheduled_at,
            time_zone=time_zone,
            auto_claim=auto_claim,
            no_expiry=no_expiry,
            claim_expiry_date=claim_expiry_date,
            delivery_method=delivery_method,
            design=design,
            language=language,
            created_at=now,
            updated_at=now,
            resource_version=epoch_ms(now),
        ),
        now,
    )
    GiftTimeline.objects.create(gift=gift, status=GiftStatus.SCHEDULED, occurred_at=now, actor=f"customer:{gifter.pk}")
    logger.info("gift %s bought (%s), due %s", gift.pk, source, scheduled_at.isoformat(), extra={"gift_id": gift.pk})
    events_record(gift_ids=[gift.pk], event_type="gift_scheduled", now=now)
    if handover:  # delivered to its gifter, by the one writer: the timeline and events say so as for an email
        gift_transition(gift_ids=[gift.pk], to=GiftStatus.UNCLAIMED, now=now, actor="handover", sent_at=now)
        gift.refresh_from_db()
    email_queue(kind=Email.Kind.GIFT_RECEIPT, key=f"gift:{gift.pk}:receipt", to=gifter.email, gift=gift)
    return gift


def gift_create_from_order(*, order, invoice, now):
    return gift_create(
        gifter=order.customer,
        offer=order.offer,
        order=order,
        invoice=invoice,
        now=now,
        recipient_email=order.recipient_email,
        scheduled_at=order.scheduled_at,
        time_zone=order.time_zone,
        personal_note=order.personal_note,
        recipient_first_name=order.recipient_first_name,
        signature=order.signature,
        delivery_method=order.delivery_method,
        design=order.design,
        language=order.gift_language,
    )


# --- delivery -------------------------------------------------------------------------------------------


def deliver_due_gifts(*, now=None, batch_size=200, send=True, hand_off=None, budget=None):
    """Delivers every `scheduled` gift whose time has come, however overdue, in batches. Each batch is claimed
    with SKIP LOCKED (so any number of workers share the work), moved and given its delivery emails in one
    transaction; the gifter's notice that it went out follows only once the provider has accepted the recipient's
    (gifts.emails.delivery_sent), in the same send. After each batch's commit its emails are sent here (`send`),
    or, with `hand_off`, given to it by id to send elsewhere (the worker's send tasks, so the sweep never waits
    on the provider), written `pending` so that the outbox sweep takes any whose task is lost. `budget`: seconds
    after which the sweep stops (the next one goes on). Returns the number of gifts delivered."""
    delivered, started = 0, time.monotonic()
    while budget is None or time.monotonic() - started < budget:
        now_ = now or timezone.now()
        with transaction.atomic():
            gifts = list(
                gifts_for_update(skip_locked=True)
                .filter(status=GiftStatus.SCHEDULED, scheduled_at__lte=now_)
                .order_by("scheduled_at", "pk")
                .only("pk", "auto_claim", "gifter_id", "recipient_email", "receiver_id")[:batch_size]
            )
            if not gifts:
                return delivered
            emails = _deliver_batch(gifts, now_, claimed=hand_off is None)
        delivered += len(gifts)
        if hand_off is not None:
            hand_off([email.pk for email in emails])
        elif send:
            send_claimed_emails(emails)
        if len(gifts) < batch_size:
            return delivered
    return delivered


# The beat's sweep stops after this many seconds (the next one, a DELIVERY_INTERVAL later, goes on), well inside
# the task's time limit however large the backlog.
SWEEP_BUDGET = 30
SWEEP_LOCK = "gifts:delivery-sweep"


def delivery_sweep():
    """The beat's delivery sweep, every DELIVERY_INTERVAL (a second by default, so a due gift waits for no more):
    a probe of the index first, then, if anything is due, one sweep at a time across all workers (a cache lock,
    so beat's next ticks leave the other worker processes free to send), handing the emails to send tasks."""
    health.sweep_ran()
    if not gifts_due() or not cache.add(SWEEP_LOCK, 1, timeout=SWEEP_BUDGET + 30):
        return 0
    try:
        return deliver_due_gifts(hand_off=hand_off, budget=SWEEP_BUDGET)
    finally:
        cache.delete(SWEEP_LOCK)


def gifts_due(now=None):
    """Whether any gift is due for delivery: one probe of the (status, scheduled_at) index, cheap enough to ask
    every second."""
    return Gift.objects.filter(status=GiftStatus.SCHEDULED, scheduled_at__lte=now or timezone.now()).exists()


# A handed-off delivery email is left to its send task this long before the outbox sweep may take it.
HAND_OFF_GRACE = timedelta(seconds=60)


def _deliver_batch(gifts, now, *, claimed=True):
    auto_claimed = set()
    for gift in gifts:
        if gift.auto_claim:
            receiver = gift.receiver or customer_for_email(gift.recipient_email)
            if not receiver.mailbox_secured:  # possibly a squatter's: the emailed link lets the owner redeem it
                logger.info("gift %s not auto-claimed: the receiver's address is not verified", gift.pk)
                continue
            try:
                _redeem_locked(
                    Gift.objects.select_related("offer", "gifter").get(pk=gift.pk), receiver, now, actor="auto_claim"
                )
                auto_claimed.add(gift.pk)
            except RedeemRefused as refused:  # refused before writing anything: deliver it for a manual redeem
                logger.info("gift %s not auto-claimed (%s); delivered unclaimed", gift.pk, refused.code)
    Gift.objects.filter(pk__in=auto_claimed).update(sent_at=now)
    plain = [g.pk for g in gifts if g.pk not in auto_claimed]
    gift_transition(gift_ids=plain, to=GiftStatus.UNCLAIMED, now=now, actor="delivery", sent_at=now)
    emails = [
        Email(
            key=f"gift:{gift.pk}:delivery",
            kind=Email.Kind.GIFT_DELIVERY,
            gift_id=gift.pk,
            to_email=gift.recipient_email,
        )
        for gift in gifts
    ]
    for email in emails:
        email.created_at = now
        if claimed:
            # Owned by this worker from the start; if it dies, the stuck-email reset hands them to the sweep.
            email.status, email.attempts, email.sending_started_at = Email.Status.SENDING, 1, now
        else:
            # A send task claims it (or, should that task be lost, the outbox sweep after the grace).
            email.status, email.next_attempt_at = Email.Status.PENDING, now + HAND_OFF_GRACE
    return Email.objects.bulk_create(emails)


# --- expiry ---------------------------------------------------------------------------------------------


def expire_due_gifts(*, now=None, batch_size=500):
    """Expires `unclaimed` gifts past their claim expiry date (unless no_expiry); their future subscriptions
    (merchant gifts) are cancelled. Returns the number expired."""
    expired = 0
    while True:
        now_ = now or timezone.now()
        with transaction.atomic():
            ids = list(
                gifts_for_update(skip_locked=True)
                .claim_window_passed(now_)
                .order_by("claim_expiry_date", "pk")
                .values_list("pk", flat=True)[:batch_size]
            )
            if not ids:
                return expired
            moved = gift_transition(gift_ids=ids, to=GiftStatus.EXPIRED, now=now_, actor="expiry", expired_at=now_)
            Subscription.objects.filter(gifts__in=moved, status=Subscription.Status.FUTURE).update(
                status=Subscription.Status.CANCELLED, cancelled_at=now_
            )
        expired += len(moved)
        if len(ids) < batch_size:
            return expired


# --- changes to a gift's details, and support's tools ---------------------------------------------------


@transaction.atomic
def gift_update(
    *,
    gift_id,
    action,
    actor,
    names=None,
    comment=None,
    scheduled_at=None,
    recipient_email=None,
    recipient_first_name=None,
    recipient_last_name=None,
    personal_note=None,
    signature=None,
    time_zone=None,
    by_gifter=False,
    now=None,
):
    """Changes what is given (None: left as it is) for `action` (GiftAction.EDIT: the gifter; UPDATE: the merchant
    API's update_gift; CHANGE_RECIPIENT: a corrected address), refused (409) when the gift's state does not allow it;
    errors name the fields as API `names` does (gift_fields_clean). A new delivery time moves the future
    subscription's provisional term with it. The gifter's (a past one means now) also moves the claim window; the
    merchant's must be in the future and before the claim expiry date. A delivered gift whose address changes is
    emailed again there with the same code; an expired one is sent again with a fresh claim window. The gifter
    (`by_gifter`) changes the address a limited number of times (_recipient_change_allowed)."""
    now = now or timezone.now()
    gift = gift_for_update(gift_id, "offer", "gifter")
    gift.raise_refusal(action, now)
    given = {
        "comment": comment,
        "recipient_email": recipient_email,
        "recipient_first_name": recipient_first_name,
        "recipient_last_name": recipient_last_name,
        "personal_note": personal_note,
        "signature": signature,
    }
    changes = gift_fields_clean(names=names, **{name: value for name, value in given.items() if value is not None})
    comment = changes.pop("comment", None)
    if by_gifter and changes.get("recipient_email", gift.recipient_email).lower() != gift.recipient_email.lower():
        _recipient_change_allowed(gift)
        changes["recipient_changes"] = F("recipient_changes") + 1
    if scheduled_at is not None:
        changes.update(_delivery_moved(gift, scheduled_at, now, moves_claim_window=action == GiftAction.EDIT))
    if time_zone is not None:  # the zone the delivery time was chosen in (checked by the form or the API)
        changes["time_zone"] = time_zone
    if changes:
        Gift.objects.filter(pk=gift.pk).update(updated_at=now, resource_version=next_version(now), **changes)
    if "scheduled_at" in changes and gift.subscription_id:
        scheduled_at = changes["scheduled_at"]
        Subscription.objects.filter(pk=gift.subscription_id, status=Subscription.Status.FUTURE).update(
            term_start=scheduled_at, term_end=gift.offer.term_end(scheduled_at), updated_at=now
        )
    if "recipient_email" in changes and gift.status in (GiftStatus.UNCLAIMED, GiftStatus.EXPIRED):
        gift.recipient_email = changes["recipient_email"]
        _send_again(gift, now, actor=actor)
    events_record(
        gift_ids=[gift.pk], event_type="gift_updated", now=now, extra={"comment": comment} if comment else None
    )
    gift.refresh_from_db()
    return gift


def _recipient_change_allowed(gift):
    """A gifter may send a gift to another address a few times (typos happen), not without end: every change can
    email a stranger. RECIPIENT_CHANGES_PER_GIFT per gift, and RECIPIENT_CHANGES_PER_HOUR over all of the gifter's
    gifts; past either, support can still change it."""
    if gift.recipient_changes >= settings.RECIPIENT_CHANGES_PER_GIFT:
        raise ServiceError(
            _(
                "This gift's recipient has been changed %(times)s times, the most we allow; "
                "contact us to change it again."
            )
            % {"times": gift.recipient_changes},
            code="too_many_recipient_changes",
            field="recipient_email",
            status=429,
        )
    try:
        ratelimit.reserve("recipient-change", [f"customer:{gift.gifter_id}"], fail_open=True)
    except ratelimit.LimitExceeded as limited:
        raise ServiceError(
            ngettext(
                "You have changed many recipients in the last hour. Try again in %(minutes)s minute.",
                "You have changed many recipients in the last hour. Try again in %(minutes)s minutes.",
                limited.minutes,
            )
            % {"minutes": limited.minutes},
            code="too_many_recipient_changes",
            field="recipient_email",
            status=429,
        ) from None


def _delivery_moved(gift, scheduled_at, now, *, moves_claim_window):
    """The changes a new delivery time makes. The gifter picks a date (a past one means now) and the claim window
    moves with it; the merchant API's must be in the window it has."""
    if moves_claim_window:
        changes = {"scheduled_at": scheduled_or_now(scheduled_at, now)}
        if gift.claim_expiry_date is not None:
            changes["claim_expiry_date"] = gift.claim_expiry_date + (changes["scheduled_at"] - gift.scheduled_at)
        return changes
    if scheduled_at <= now:
        raise ServiceError("scheduled_at must be in the future.", field="scheduled_at")
    if gift.claim_expiry_date and scheduled_at >= gift.claim_expiry_date:
        raise ServiceError("scheduled_at must be before the claim expiry date.", field="scheduled_at")
    return {"scheduled_at": scheduled_at}


def _send_again(gift, now, *, actor):
    """Emails a delivered gift's recipient again with the same code; an expired (storefront) gift is first made
    `unclaimed` again with a fresh claim window, as if delivered now."""
    if gift.status == GiftStatus.EXPIRED:
        _auto_claim, no_expiry, claim_expiry_date = gift_defaults(scheduled_at=now, auto_claim=False)
        gift_transition(
            gift_ids=[gift.pk],
            to=GiftStatus.UNCLAIMED,
            now=now,
            actor=actor,
            sent_at=now,
            expired_at=None,
            no_expiry=no_expiry,
            claim_expiry_date=claim_expiry_date,
        )
        gift.status = GiftStatus.UNCLAIMED
    _delivery_resend(gift)


def _delivery_resend(gift):
    """Queues the delivery email again, to the recipient as they are now; the code is read when it is sent.
    Callers hold the gift's row lock, so two resends cannot number themselves alike."""
    prefix = f"gift:{gift.pk}:delivery:resend:"
    n = Email.objects.filter(gift=gift, key__startswith=prefix).count() + 1
    return email_queue(kind=Email.Kind.GIFT_DELIVERY, key=f"{prefix}{n}", to=gift.recipient_email, gift=gift)


def gift_change_recipient(*, gift_id, recipient_email, actor, by_gifter=False, now=None):
    """Corrects where a `scheduled`, `unclaimed` or (storefront) `expired` gift goes (support, and the gifter after
    a bounce): gift_update's CHANGE_RECIPIENT."""
    return gift_update(
        gift_id=gift_id,
        action=GiftAction.CHANGE_RECIPIENT,
        actor=actor,
        recipient_email=recipient_email,
        comment=f"recipient email changed by {actor}",
        by_gifter=by_gifter,
        now=now,
    )


@transaction.atomic
def gift_resend(*, gift_id, actor, now=None):
    """Emails a delivered (`unclaimed`) gift's recipient again, with the same code. Returns the outbox row."""
    now = now or timezone.now()
    gift = gift_for_update(gift_id)
    gift.raise_refusal(GiftAction.RESEND, now)
    email = _delivery_resend(gift)
    comment = f"delivery email resent by {actor}"
    events_record(gift_ids=[gift.pk], event_type="gift_updated", now=now, extra={"comment": comment})
    return email


@transaction.atomic
def gift_reissue_code(*, gift_id, actor, now=None):
    """Gives a `scheduled` or `unclaimed` gift a new code, so the old one stops working; a delivered gift's
    recipient is emailed the new one. Returns the gift (its `.code` is the new code, for support to pass on)."""
    now = now or timezone.now()
    gift = gift_for_update(gift_id)
    gift.raise_refusal(GiftAction.REISSUE_CODE, now)
    _save_with_new_code(gift, now)
    if gift.status == GiftStatus.UNCLAIMED:
        _delivery_resend(gift)
    # The comment names no code: events are stored and sent to webhooks, and no column may hold a code.
    comment = f"code reissued by {actor}"
    events_record(gift_ids=[gift.pk], event_type="gift_updated", now=now, extra={"comment": comment})
    gift.refresh_from_db()
    # The gifter hears of it (without the code); keyed by the new resource_version, so once per reissue.
    email_queue(
        kind=Email.Kind.GIFT_CODE_REPLACED,
        key=f"gift:{gift.pk}:code_replaced:{gift.resource_version}",
        to=gift.gifter.email,
        gift=gift,
    )
    return gift


# --- the recipient says "No thanks", and its gifter sends it elsewhere (issue 16) ----------------------------------


@transaction.atomic
def gift_decline(*, code, customer=None, now=None):
    """The recipient declines the gift whose code (typed, or the emailed link's token) is `code`: an `unclaimed`
    gift, emailed or handed over, whose claim window is open becomes `declined` (timeline, `gift_declined` event),
    and its gifter is emailed, with what they can do: withdraw it, refunded, inside the refund window, or send it to
    someone else. The gift's row lock decides a race with a redeem: whichever locks first wins, and the other is
    refused with the reason. A repeat (a double click, the email's link after the page) answers the same and
    emails no one again. `customer`: who is logged in, if anyone (only the timeline's actor)."""
    now = now or timezone.now()
    gift = gift_by_code(code, lock=True)
    if gift.status == GiftStatus.DECLINED and not gift.claim_window_passed(now):
        return gift
    gift.raise_refusal(GiftAction.DECLINE, now)
    actor = f"customer:{customer.pk}" if customer is not None and customer.is_authenticated else "recipient"
    gift_transition(gift_ids=[gift.pk], to=GiftStatus.DECLINED, now=now, actor=actor, declined_at=now)
    gift.refresh_from_db()
    # Declined again after being sent elsewhere is news again: one notice per decline, numbered under the lock.
    declines = GiftTimeline.objects.filter(gift_id=gift.pk, status=GiftStatus.DECLINED).count()
    email_queue(
        kind=Email.Kind.GIFT_DECLINED, key=f"gift:{gift.pk}:declined:{declines}", to=gift.gifter.email, gift=gift
    )
    return gift


@transaction.atomic
def gift_send_elsewhere(
    *, gift_id, gifter, recipient_email, recipient_first_name="", personal_note=None, names=None, now=None
):
    """The gifter sends a gift its recipient declined to someone else: the same code, to `recipient_email` (greeted
    by `recipient_first_name`; `personal_note`, when given, replaces the note), `unclaimed` again with a fresh claim
    window as a delivery now would get (none if the gift had none), and the delivery email sent again under a new
    outbox key. Only its gifter (404 for anyone else's), only a declined gift whose window is open and not a
    merchant's (409), not to the address that declined it (422), and as few times as a corrected address
    (_recipient_change_allowed, 429). Errors name the fields as API `names` does."""
    now = now or timezone.now()
    gift = gift_for_update(gift_id, "offer", "gifter")
    if gift.gifter_id != gifter.pk:
        raise ServiceError(_("Gift not found."), code="gift_not_found", status=404)
    gift.raise_refusal(GiftAction.SEND_ELSEWHERE, now)
    given = {"recipient_email": recipient_email, "recipient_first_name": recipient_first_name}
    if personal_note is not None:
        given["personal_note"] = personal_note
    fields = gift_fields_clean(names=names, **given)
    if gift.recipient_email and fields["recipient_email"].lower() == gift.recipient_email.lower():
        raise ServiceError(
            _("%(email)s declined this gift: send it to someone else.") % {"email": gift.recipient_email},
            code="same_recipient",
            field=GIFT_FIELDS["recipient_email"][1].get(names, "recipient_email"),
        )
    _recipient_change_allowed(gift)
    no_expiry, claim_expiry_date = gift.no_expiry, None
    if not no_expiry:
        _auto_claim, no_expiry, claim_expiry_date = gift_defaults(scheduled_at=now, auto_claim=False)
    actor = f"customer:{gifter.pk}"
    gift_transition(
        gift_ids=[gift.pk],
        to=GiftStatus.UNCLAIMED,
        now=now,
        actor=actor,
        sent_at=now,
        declined_at=None,
        no_expiry=no_expiry,
        claim_expiry_date=claim_expiry_date,
        delivery_method=DeliveryMethod.EMAIL,  # a handed-over gift that was declined now goes by email
        recipient_last_name="",
        recipient_changes=F("recipient_changes") + 1,
        **fields,
    )
    gift.refresh_from_db()
    _delivery_resend(gift)
    events_record(gift_ids=[gift.pk], event_type="gift_sent_elsewhere", now=now)
    return gift


# --- redemption -----------------------------------------------------------------------------------------


@transaction.atomic
def gift_redeem(*, customer, code, now=None, start=None):
    """Redeems the gift exactly once: locks the gift, then the customer's matching subscription (always in that
    order), re-checks everything under the lock, and creates or extends the subscription. `start`: the date (in the
    customer's zone) or time a new subscription starts, if later than now (redeem_start); an extension ignores it."""
    now = now or timezone.now()
    gift = gift_by_code(code, lock=True)
    verification = _redeem_locked(gift, customer, now, actor=f"customer:{customer.pk}", start=start)
    if codes.is_link_token(code) and customer.email.lower() == gift.recipient_email.lower():
        # The link's token was emailed to this address: redeeming with it proves the mailbox.
        accounts_services.customer_address_proven(customer=customer, now=now)
    return verification


def gift_claim(*, gift_id, receiver=None, now=None, actor="merchant", action=None, start=None):
    """Claims a gift by id: same rules as redeeming its code, and, with `action` (GiftAction.CLAIM: the merchant
    API's, for `unclaimed` gifts only), that action's."""
    now = now or timezone.now()
    with transaction.atomic():
        gift = gift_for_update(gift_id, "offer", "gifter")
        if action:
            gift.raise_refusal(action, now)
        receiver = receiver or gift.receiver or customer_for_email(gift.recipient_email)
        return _redeem_locked(gift, receiver, now, actor=actor, start=start)


def redeem_start(*, offer, start, zone, now):
    """When a new subscription from a gift of `offer` begins: None (now) when `start` is None or today's date in
    `zone`; otherwise the start of that date in `zone` (or the time given), which must not be past nor more than
    the offer's start_later_days ahead. Refused (422, naming startDate), before anything is written."""
    if start is None:
        return None
    today = now.astimezone(zone).date()
    if isinstance(start, datetime):
        start_at = start if timezone.is_aware(start) else start.replace(tzinfo=zone)
        day = start_at.astimezone(zone).date()
    elif start == today:
        return None
    else:
        day, start_at = start, datetime.combine(start, datetime.min.time(), tzinfo=zone)
    if start_at <= now:
        raise ServiceError(_("The start date is in the past."), code="START_DATE_PAST", field="startDate")
    latest = today + timedelta(days=offer.start_later_days)
    if day > latest:
        if not offer.start_later_days:
            message = _("This gift starts when it is redeemed; it cannot start later.")
        else:
            message = ngettext(
                "The start date must be within %(days)s day (by %(latest)s).",
                "The start date must be within %(days)s days (by %(latest)s).",
                offer.start_later_days,
            ) % {"days": offer.start_later_days, "latest": date_format(latest, "DATE_FORMAT")}
        raise ServiceError(message, code="START_DATE_TOO_LATE", field="startDate")
    return start_at


def _redeem_locked(gift, customer, now, *, actor, start=None):
    verification = verification_for(gift, customer, now, lock=True)
    if not verification.redeemable:
        raise RedeemRefused(verification)
    delta = gift.offer.period_delta
    if verification.mode == "EXTEND":  # the extension adds to the end: a chosen start means nothing here
        subscription = verification.subscription
        subscription.term_end = subscription.term_end + delta
        # The gift pays for the term a declined renewal was retrying, so the retries stop.
        Subscription.objects.filter(pk=subscription.pk).update(
            term_end=subscription.term_end, renewal_attempts=0, next_renewal_attempt_at=None, updated_at=now
        )
    else:
        start_at = redeem_start(offer=gift.offer, start=start, zone=customer.zone(), now=now)
        if start_at is not None and (capped := stack_cap_refusal(gift, gift.offer.term_end(start_at), now)):
            raise RedeemRefused(capped)  # a later start may take access past the offer's cap (issue 16)
        subscription = _subscription_for_claim(gift, customer, now, start_at=start_at)
    moved = gift_transition(
        gift_ids=[gift.pk],
        to=GiftStatus.CLAIMED,
        now=now,
        actor=actor,
        claimed_at=now,
        receiver=customer,
        subscription=subscription,
        redeem_mode=verification.mode,
    )
    if not moved:  # impossible under the row lock; kept so a future caller without it cannot double-redeem
        raise RedeemRefused(Verification(gift=gift, redeemable=False, refusal=RefusalReason.REDEEMED))
    signals.gift_claimed.send(sender=Gift, gift=gift)
    gift.refresh_from_db()
    email_queue(kind=Email.Kind.GIFT_REDEEMED, key=f"gift:{gift.pk}:redeemed", to=gift.gifter.email, gift=gift)
    verification.gift, verification.subscription, verification.term_end = gift, subscription, subscription.term_end
    verification.term_start = subscription.term_start
    return verification


def _subscription_for_claim(gift, customer, now, *, start_at=None):
    """A new subscription for the claimant: the gift's own `future` one (merchant gifts) restarts as non-renewing;
    otherwise one starts, renewing later only if they have a card on file. It starts now, or at `start_at` (a
    start chosen later): `future` until then (subscriptions_start_due), its term a period from its start."""
    start = start_at or now
    status = Subscription.Status.FUTURE if start_at else None
    term_end = gift.offer.term_end(start)
    future = gift.subscription if gift.subscription_id and gift.subscription.status == "future" else None
    if future is not None:
        Subscription.objects.filter(pk=future.pk).update(
            customer=customer,
            status=status or Subscription.Status.NON_RENEWING,
            term_start=start,
            term_end=term_end,
            auto_renew=False,
            updated_at=now,
        )
        future.refresh_from_db()
        return future
    return Subscription.objects.create(
        customer=customer,
        offer=gift.offer,
        status=status or Subscription.Status.ACTIVE,
        term_start=start,
        term_end=term_end,
        auto_renew=customer.payment_methods.exists(),
        origin=Subscription.Origin.GIFT,
    )


def subscriptions_start_due(*, now=None):
    """Starts the redeemed gifts' subscriptions whose chosen start has come: `future` becomes `active` (or
    `non_renewing` for a merchant gift's, which never renews). Only a claimed gift's: an unclaimed merchant gift's
    `future` subscription is a placeholder that its claim starts. A beat task (every minute) rather than a status
    computed from dates: every access check, renewal and reminder already reads `status`, so none can forget the
    start; access begins within a minute of it. One conditional UPDATE, so it is safe to run
    anywhere, any number of times. Returns the number started."""
    now = now or timezone.now()
    claimed = Gift.objects.filter(status=GiftStatus.CLAIMED).values("subscription_id")
    due = Subscription.objects.filter(status=Subscription.Status.FUTURE, term_start__lte=now, pk__in=claimed)
    # A card added while it waited (subscriptions_renewal_switch_on passes over `future` ones) renews it too.
    has_card = Exists(PaymentMethod.objects.filter(customer=OuterRef("customer")))
    started = due.update(
        status=Case(
            When(renewable=False, then=Value(Subscription.Status.NON_RENEWING)),
            default=Value(Subscription.Status.ACTIVE),
        ),
        auto_renew=Case(When(Q(renewable=True) & has_card, then=Value(True)), default=F("auto_renew")),
        updated_at=now,
    )
    if started:
        logger.info("%s gift subscriptions started", started)
    return started
