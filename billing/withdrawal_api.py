"""Storefront (MediaStore) endpoint of the gifter's "Withdraw and refund" (issue 16): billing's, since it refunds.
Cleeng's contract has no such call; it is shaped as its other gift calls are (the envelope, the gifter's JWT, 404 for
someone else's gift, 409 with the reason when the gift cannot be withdrawn)."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers

from billing import gift_sales
from gifts.api import GiftOut
from gifts.selectors import gift_for_gifter
from giftshop.mediastore import MediaStoreView, envelope, errors, in_envelope


class RefundOut(serializers.Serializer):
    amount = serializers.DecimalField(max_digits=12, decimal_places=2, coerce_to_string=False)
    currency = serializers.CharField()
    status = serializers.ChoiceField(
        choices=["succeeded", "pending"], help_text="pending: the gateway did not answer yet; the refund stays owed."
    )


class GiftWithdrawnOut(serializers.Serializer):
    gift = GiftOut()
    refund = RefundOut(allow_null=True, help_text="null: nothing was paid for the gift.")


class GiftWithdrawView(MediaStoreView):
    @extend_schema(
        tags=["gifts"],
        request=None,
        summary="The gifter withdraws an unredeemed gift inside its offer's refund window, refunded",
        description="Repeating it answers the same (one refund). Refused (409) once redeemed, expired or cancelled, "
        "past the window (`withdrawableUntil` of GET /gifts/{id}), or for a gift of a list or a merchant's.",
        responses={200: in_envelope("GiftWithdrawn", GiftWithdrawnOut), **errors(401, 404, 409)},
    )
    def post(self, request, gift_id):
        gift = gift_for_gifter(request.user, gift_id)
        withdrawal = gift_sales.gift_withdraw(gift_id=gift.pk, gifter=request.user)
        refund = RefundOut(withdrawal.refund).data if withdrawal.refund else None
        return envelope({"gift": GiftOut(gift_for_gifter(request.user, gift.pk)).data, "refund": refund})
