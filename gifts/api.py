"""Storefront (MediaStore) endpoints of gifts: the gifter's view and edit, and the recipient's verify/redeem."""

from datetime import date, datetime

from django.utils import timezone
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import serializers

from gifts import group_codes, services
from gifts.models import NAME_MAX_LENGTH, NOTE_MAX_LENGTH, GiftAction
from gifts.selectors import gift_for_gifter
from gifts.verification import RedeemRefused, code_attempt
from giftshop import ratelimit
from giftshop.mediastore import (
    MediaStoreError,
    MediaStoreView,
    UnixTimeField,
    attempts_refused,
    envelope,
    errors,
    in_envelope,
    unix,
)
from giftshop.timezones import validate_time_zone


class GiftDeliveryOut(serializers.Serializer):
    recipientEmail = serializers.CharField(source="recipient_email")
    personalNote = serializers.CharField(source="personal_note")
    deliveryDate = serializers.SerializerMethodField()

    def get_deliveryDate(self, gift) -> int:
        return unix(gift.scheduled_at)


class GiftOut(serializers.Serializer):
    id = serializers.IntegerField()
    code = serializers.CharField()
    offerId = serializers.CharField(source="offer.long_id")
    status = serializers.CharField()
    deliveryDetails = GiftDeliveryOut(source="*")
    sentAt = serializers.SerializerMethodField()
    redeemedAt = serializers.SerializerMethodField()
    editableUntil = serializers.SerializerMethodField()
    withdrawableUntil = serializers.SerializerMethodField(
        help_text="Until when POST /gifts/{id}/withdraw takes the gift back, refunded (issue 16); null: it cannot."
    )

    declinedAt = serializers.SerializerMethodField(
        help_text="When its recipient declined it (status declined: POST /gifts/{id}/send-to sends it elsewhere)."
    )

    def get_sentAt(self, gift) -> int | None:
        return unix(gift.sent_at)

    def get_declinedAt(self, gift) -> int | None:
        return unix(gift.declined_at)

    def get_redeemedAt(self, gift) -> int | None:
        return unix(gift.claimed_at)

    def get_editableUntil(self, gift) -> int:
        return unix(gift.edit_cutoff())

    def get_withdrawableUntil(self, gift) -> int | None:
        return None if gift.refusal(GiftAction.WITHDRAW, timezone.now()) else unix(gift.refund_deadline())


class GiftDeliveryIn(serializers.Serializer):
    recipientEmail = serializers.CharField(max_length=254)
    deliveryDate = UnixTimeField()
    personalNote = serializers.CharField(allow_blank=True, trim_whitespace=False, max_length=NOTE_MAX_LENGTH)
    timeZone = serializers.CharField(
        required=False,
        max_length=64,
        validators=[validate_time_zone],
        help_text="The IANA time zone the delivery date was chosen in (e.g. America/Los_Angeles): the gifter's "
        "pages and emails show the delivery time there. Optional: without it, the zone is left as it is.",
    )


class GiftPatchIn(serializers.Serializer):
    deliveryDetails = GiftDeliveryIn()


class GiftView(MediaStoreView):
    @extend_schema(tags=["gifts"], responses={200: in_envelope("Gift", GiftOut), **errors(401, 404)})
    def get(self, request, gift_id):
        return envelope(GiftOut(gift_for_gifter(request.user, gift_id)).data)

    @extend_schema(
        request=GiftPatchIn,
        tags=["gifts"],
        responses={200: in_envelope("GiftUpdated", GiftOut), **errors(401, 404, 409, 422)},
    )
    def patch(self, request, gift_id):
        gift = gift_for_gifter(request.user, gift_id)
        details = self.valid(GiftPatchIn, request.data)["deliveryDetails"]
        gift = services.gift_update(
            gift_id=gift.pk,
            action=GiftAction.EDIT,
            actor=f"customer:{request.user.pk}",
            names="mediastore",
            recipient_email=details["recipientEmail"],
            scheduled_at=details["deliveryDate"],
            personal_note=details["personalNote"],
            time_zone=details.get("timeZone"),
            by_gifter=True,
        )
        return envelope(GiftOut(gift_for_gifter(request.user, gift.pk)).data)


class VerificationOut(serializers.Serializer):
    redeemable = serializers.BooleanField()
    redeemMode = serializers.CharField(allow_null=True)
    redeemRefusalReason = serializers.CharField(allow_null=True)
    extendedSubscriptionId = serializers.IntegerField(allow_null=True)
    offerId = serializers.CharField()
    subscriptionId = serializers.IntegerField(allow_null=True, required=False)
    accessUntil = serializers.IntegerField(allow_null=True)
    accessFrom = serializers.IntegerField(
        allow_null=True,
        required=False,
        help_text="When access begins (Unix seconds), once redeemed: now, or the start date chosen for a new one.",
    )
    startLaterDays = serializers.IntegerField(
        help_text="How many days ahead (in the customer's time zone) redeeming may set a startDate: 0 when it "
        "cannot (an extension, a refusal, or an offer that starts at once)."
    )
    seatsLeft = serializers.IntegerField(
        required=False, help_text="A group code's seats still free (after this redemption, once redeemed)."
    )


def verification_out(verification, *, redeemed=False):
    extended = verification.subscription.pk if verification.mode == "EXTEND" and verification.subscription else None
    data = {
        "redeemable": verification.redeemable and not redeemed,
        "redeemMode": verification.mode,
        "redeemRefusalReason": verification.refusal,
        "extendedSubscriptionId": extended,
        "offerId": verification.gift.offer.long_id,
        "accessUntil": unix(verification.term_end),
        "startLaterDays": verification.start_later_days if not redeemed else 0,
    }
    if redeemed:
        data["subscriptionId"] = verification.subscription.pk
        data["accessFrom"] = unix(verification.term_start)
    if getattr(verification, "seats_left", None) is not None:  # a group code (gifts/group_codes.py)
        data["seatsLeft"] = verification.seats_left
    return data


CODE_PARAM = OpenApiParameter(
    "code",
    str,
    OpenApiParameter.PATH,
    description="XXXX-XXXX (case, spaces and look-alike letters are forgiven), or the link token `t` of the redeem "
    "link in the gift email (`<gift id>.<22 characters>`), which still works while typed codes are paused (429)",
)


def code_attempt_in_envelope(request, code, action):
    """verification.code_attempt, refused attempts answered in the envelope."""
    try:
        return code_attempt(identities=ratelimit.identities(request), code=code, action=action)
    except ratelimit.LimitExceeded as limited:
        raise attempts_refused(limited) from None


class VerificationView(MediaStoreView):
    @extend_schema(
        tags=["gifts"],
        parameters=[CODE_PARAM],
        responses={200: in_envelope("GiftVerification", VerificationOut), **errors(400, 401, 404, 429, 503)},
    )
    def get(self, request, code):
        verification = code_attempt_in_envelope(
            request, code, lambda: group_codes.code_verify(customer=request.user, code=code)
        )
        return envelope(verification_out(verification))


@extend_schema_field({"type": "string", "example": "2026-04-01"})
class StartDateField(serializers.Field):
    """YYYY-MM-DD (a date in the customer's time zone: access begins at its start) or an ISO 8601 date-time."""

    def to_internal_value(self, data):
        text = data.strip() if isinstance(data, str) else ""
        try:
            return date.fromisoformat(text) if len(text) == 10 else datetime.fromisoformat(text)
        except ValueError:
            raise serializers.ValidationError(_("Must be a date (YYYY-MM-DD) or an ISO 8601 date-time.")) from None


class RedeemIn(serializers.Serializer):
    startDate = StartDateField(
        required=False,
        allow_null=True,
        help_text="When a new subscription begins, if later than now: YYYY-MM-DD in the customer's time zone (today "
        "means now), or an ISO 8601 date-time; at most the offer's startLaterDays ahead. Ignored when the gift "
        "extends a subscription.",
    )


class RedeemView(MediaStoreView):
    @extend_schema(
        tags=["gifts"],
        request=RedeemIn,
        parameters=[CODE_PARAM],
        responses={
            200: in_envelope("GiftRedeemed", VerificationOut),
            409: in_envelope("GiftRedeemRefused", VerificationOut),
            410: in_envelope("GiftExpired", VerificationOut),
            **errors(400, 401, 404, 422, 429, 503),
        },
    )
    def post(self, request, code):
        start = self.valid(RedeemIn, request.data).get("startDate")
        try:
            verification = code_attempt_in_envelope(
                request, code, lambda: group_codes.code_redeem(customer=request.user, code=code, start=start)
            )
        except RedeemRefused as refused:
            raise MediaStoreError(
                refused.message, status_code=refused.status, details=verification_out(refused.verification)
            ) from None
        return envelope(verification_out(verification, redeemed=True))


# --- the recipient says "No thanks", and its gifter sends it to someone else (issue 16) -----------------------------


class DeclinedOut(serializers.Serializer):
    declined = serializers.BooleanField()
    declinedAt = serializers.IntegerField(help_text="When the recipient declined it (Unix seconds).")
    offerId = serializers.CharField()


class DeclineView(MediaStoreView):
    @extend_schema(
        tags=["gifts"],
        request=None,
        parameters=[CODE_PARAM],
        summary='The recipient declines a gift ("No thanks"); its gifter is told',
        description="Under the same code-attempt limits as redeeming. Repeating it answers the same. Refused (409) "
        "once redeemed, expired or cancelled; a declined gift's verification and redeem then answer "
        "`redeemRefusalReason` DECLINED.",
        responses={200: in_envelope("GiftDeclined", DeclinedOut), **errors(400, 401, 404, 409, 429, 503)},
    )
    def post(self, request, code):
        gift = code_attempt_in_envelope(request, code, lambda: services.gift_decline(code=code, customer=request.user))
        return envelope({"declined": True, "declinedAt": unix(gift.declined_at), "offerId": gift.offer.long_id})


class SendElsewhereIn(serializers.Serializer):
    recipientEmail = serializers.CharField(max_length=254)
    firstName = serializers.CharField(required=False, allow_blank=True, max_length=NAME_MAX_LENGTH)
    personalNote = serializers.CharField(
        required=False,
        allow_blank=True,
        trim_whitespace=False,
        max_length=NOTE_MAX_LENGTH,
        help_text="Replaces the note written for the first recipient; absent: the note stays as it is.",
    )


class GiftSendElsewhereView(MediaStoreView):
    @extend_schema(
        tags=["gifts"],
        request=SendElsewhereIn,
        summary="The gifter sends a declined gift to someone else (same code, a fresh claim window)",
        description="Only the gift's gifter (404 otherwise). Refused (409) unless its recipient declined it and its "
        "claim window is open, or for a merchant's gift; 422 for the address that declined it; 429 past the "
        "recipient-change limits.",
        responses={200: in_envelope("GiftSentElsewhere", GiftOut), **errors(401, 404, 409, 422, 429)},
    )
    def post(self, request, gift_id):
        gift = gift_for_gifter(request.user, gift_id)
        data = self.valid(SendElsewhereIn, request.data)
        services.gift_send_elsewhere(
            gift_id=gift.pk,
            gifter=request.user,
            recipient_email=data["recipientEmail"],
            recipient_first_name=data.get("firstName", ""),
            personal_note=data.get("personalNote"),
            names="mediastore",
        )
        return envelope(GiftOut(gift_for_gifter(request.user, gift.pk)).data)
