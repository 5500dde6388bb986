"""Group codes (issue 18): one code for N seats, each redeemable once by a different account until the seats run out
or the code expires. A redemption takes a seat with a conditional UPDATE (`seats_used < seats`, so 100 concurrent
redeems of a 10-seat code give exactly 10) and, in the same transaction, makes an ordinary gift for that account and
redeems it through the single gift's claim (gifts.services.gift_claim): subscription, timeline, events and refunds are
the gift's. A refused claim (say, two subscriptions it could extend) rolls the seat back.

Verifying and redeeming a code look for a gift first and then for a group code (code_verify, code_redeem,
code_preview), so every caller (storefront API, redeem page) takes either, under the same attempt limits."""

import logging
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.db.models import F
from django.shortcuts import get_object_or_404
from django.utils import timezone
from django.utils.translation import gettext as _

from gifts import bulk, codes, services
from gifts.models import Gift, GiftStatus, GiftTimeline, GroupCode, GroupSeat, gift_fields_clean
from gifts.verification import (
    GiftNotFound,
    RedeemRefused,
    RefusalReason,
    Verification,
    gift_preview,
    gift_verify,
    verification_for,
)
from giftshop.errors import ServiceError

logger = logging.getLogger(__name__)


@dataclass
class GroupVerification(Verification):
    """A verification of a group code: what redeeming one of its seats would do, and how many seats are left."""

    seats_left: int = None
    seats: int = None


# --- creating ---------------------------------------------------------------------------------------------------


def group_code_create(*, gifter, offer, seats, now=None, expires_at=None, personal_note="", order=None, invoice=None):
    """A new group code of `seats` seats for `offer` (paid by `order`, or given by an admin). Its code is the gifter's
    to hand out (GroupCode.code). A code that a gift already has is drawn again (the look-up tries gifts first)."""
    now = now or timezone.now()
    if not offer.giftable:
        raise ServiceError(_("This plan cannot be given as a gift."), field="offer", code="not_giftable")
    if seats < 1:
        raise ServiceError(_("A group code has at least one seat."), field="seats")
    personal_note = gift_fields_clean(personal_note=personal_note)["personal_note"]
    group = GroupCode(
        gifter=gifter,
        offer=offer,
        seats=seats,
        expires_at=expires_at,
        personal_note=personal_note,
        order=order,
        invoice=invoice,
        created_at=now,
    )
    for _attempt in range(5):
        group.assign_code()
        if Gift.objects.filter(code_digest=group.code_digest).exists():
            continue
        try:
            with transaction.atomic():
                group.save()
            return group
        except IntegrityError as error:
            if "code_digest" not in str(error):
                raise
    raise RuntimeError("could not find a free group code")  # pragma: no cover


# --- looking up and verifying -----------------------------------------------------------------------------------


def group_by_code(code):
    """The group code typed (as forgiving as a gift code), or GiftNotFound."""
    try:
        raw = codes.normalize(code)
    except codes.InvalidCode as error:
        raise ServiceError(str(error), code="invalid_code", field="code", status=400) from None
    group = GroupCode.objects.select_related("offer", "gifter").filter(code_digest=codes.digest(raw)).first()
    if group is None:
        raise GiftNotFound()
    return group


def _seat_gift(group, customer, now):
    """The gift a seat would be (unsaved until redeemed): the group's offer, gifter and note, for `customer`."""
    return Gift(
        gifter=group.gifter,
        offer=group.offer,
        invoice_id=group.invoice_id,
        recipient_email=customer.email if customer is not None else "",
        receiver=customer,
        personal_note=group.personal_note,
        scheduled_at=now,
        status=GiftStatus.SCHEDULED,
        no_expiry=group.expires_at is None,
        claim_expiry_date=group.expires_at,
        created_at=now,
        updated_at=now,
        resource_version=services.epoch_ms(now),
    )


def _refused(group, gift, reason):
    return GroupVerification(
        gift=gift, redeemable=False, refusal=reason, seats_left=group.seats_left, seats=group.seats
    )


def group_verification(group, customer, now):
    """What redeeming a seat of `group` would do for `customer` (None: a visitor not logged in): REDEEMED when no seat
    is left or this account has one already, EXPIRED past its end, else the single gift's verification (NEW, EXTEND
    or its refusals)."""
    gift = _seat_gift(group, customer, now)
    if customer is not None and GroupSeat.objects.filter(group_code=group, customer=customer).exists():
        return _refused(group, gift, RefusalReason.REDEEMED)
    if group.seats_left <= 0:
        return _refused(group, gift, RefusalReason.REDEEMED)
    if group.expires_at is not None and now >= group.expires_at:
        return _refused(group, gift, RefusalReason.EXPIRED)
    single = verification_for(gift, customer, now, holds_any=customer is not None)
    return GroupVerification(**vars(single), seats_left=group.seats_left, seats=group.seats)


def code_verify(*, customer, code, now=None):
    """What redeeming `code`, a gift's or a group's, would do for `customer`."""
    try:
        return gift_verify(customer=customer, code=code, now=now)
    except GiftNotFound:
        if codes.is_link_token(code):
            raise
    return group_verification(group_by_code(code), customer, now or timezone.now())


def code_preview(*, code, now=None):
    """What a gift or group code is, for a visitor who is not logged in."""
    try:
        return gift_preview(code=code, now=now)
    except GiftNotFound:
        if codes.is_link_token(code):
            raise
    return group_verification(group_by_code(code), None, now or timezone.now())


# --- redeeming --------------------------------------------------------------------------------------------------


def code_redeem(*, customer, code, now=None, start=None):
    """Redeems `code`: a gift's exactly once, or one seat of a group code's. `start`: see services.redeem_start."""
    try:
        return services.gift_redeem(customer=customer, code=code, now=now, start=start)
    except GiftNotFound:
        if codes.is_link_token(code):
            raise
    return group_redeem(customer=customer, group_id=group_by_code(code).pk, now=now, start=start)


@transaction.atomic
def group_redeem(*, customer, group_id, now=None, start=None):
    """Takes one seat for `customer` and redeems it as a gift, all or nothing. The seat is taken by a conditional
    UPDATE, which also holds the group's row lock until commit: concurrent redeems queue there and each sees the
    count the one before it left. RedeemRefused (REDEEMED: no seat left, or this account has one; EXPIRED; or the
    gift's own refusals, which give the seat back)."""
    now = now or timezone.now()
    group = GroupCode.objects.select_related("offer", "gifter").get(pk=group_id)
    gift = _seat_gift(group, customer, now)
    if group.expires_at is not None and now >= group.expires_at:
        raise RedeemRefused(_refused(group, gift, RefusalReason.EXPIRED))
    taken = GroupCode.objects.filter(pk=group.pk, seats_used__lt=F("seats")).update(seats_used=F("seats_used") + 1)
    group.refresh_from_db(fields=["seats_used"])
    if not taken:
        raise RedeemRefused(_refused(group, gift, RefusalReason.REDEEMED))
    bulk.gifts_insert_with_codes([gift])
    GiftTimeline.objects.create(gift=gift, status=GiftStatus.SCHEDULED, occurred_at=now, actor=f"group:{group.pk}")
    services.events_record(gift_ids=[gift.pk], event_type="gift_scheduled", now=now)
    try:
        with transaction.atomic():
            GroupSeat.objects.create(group_code=group, customer=customer, gift=gift, redeemed_at=now)
    except IntegrityError:  # this account took a seat already (perhaps a moment ago, in another request)
        raise RedeemRefused(_refused(group, gift, RefusalReason.REDEEMED)) from None
    single = services.gift_claim(
        gift_id=gift.pk, receiver=customer, now=now, actor=f"customer:{customer.pk}", start=start
    )
    logger.info("group code %s: seat %s of %s redeemed as gift %s", group.pk, group.seats_used, group.seats, gift.pk,
                extra={"gift_id": gift.pk})  # fmt: skip
    return GroupVerification(**vars(single), seats_left=group.seats_left, seats=group.seats)


# --- what the gifter sees ---------------------------------------------------------------------------------------


def group_code_for_gifter(customer, group_id):
    """The access rule for a group code: only its gifter sees it (and its code); anyone else gets 404."""
    return get_object_or_404(GroupCode.objects.select_related("offer", "invoice"), pk=group_id, gifter=customer)


def group_redemptions(group):
    """Who redeemed a seat and when, oldest first."""
    return group.redemptions.select_related("customer", "gift").order_by("redeemed_at", "pk")
