"""Storefront (MediaStore) endpoints of bulk gift lists (issue 18), for front ends: a list from JSON rows or CSV text,
its validation report, corrections, one payment for all its rows, its progress and each recipient's status. The same
services as the web pages (gifts/bulk.py, billing/bulk_sales.py)."""

import csv
import io

from django.conf import settings
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers

from accounts.models import PaymentMethod
from billing import bulk_sales
from billing.gateways import PaymentError
from gifts import bulk
from gifts.models import BulkList
from giftshop import ratelimit
from giftshop.mediastore import (
    MediaStoreError,
    MediaStoreView,
    attempts_refused,
    envelope,
    errors,
    in_envelope,
    invalid_body,
    invalid_query,
    unix,
)
from offers.selectors import offer_get

# JSON row keys, and the list file's column each one is.
ROW_KEYS = {
    "email": "recipient_email",
    "firstName": "recipient_first_name",
    "message": "personal_note",
    "date": "delivery_date",
    "time": "delivery_time",
    "timeZone": "time_zone",
    "language": "language",
}
# Problem rows listed in one answer (the counts give the rest; fix these and ask again).
PROBLEMS_SHOWN = 500


def _cell(**kwargs):
    return serializers.CharField(required=False, allow_blank=True, max_length=bulk.BULK_CELL_MAX, **kwargs)


class RowIn(serializers.Serializer):
    email = _cell()
    firstName = _cell()
    message = _cell()
    date = _cell(help_text="YYYY-MM-DD, in timeZone; none: as soon as the gifts are made.")
    time = _cell(help_text="HH:MM (a date alone means 09:00).")
    timeZone = _cell(help_text="IANA zone (e.g. Europe/Berlin); none: the customer's.")
    language = _cell(help_text="The language of the gift: en, de, es, fr or pl (de-DE and de_DE read as de).")


class ListCreateIn(serializers.Serializer):
    offerId = serializers.CharField(max_length=20)
    name = serializers.CharField(required=False, allow_blank=True, max_length=200)
    rows = RowIn(many=True, required=False, help_text="The recipients; or `csv`.")
    csv = serializers.CharField(
        required=False, trim_whitespace=False, help_text="A list file's text, its first line naming the columns."
    )

    def validate(self, data):
        if ("rows" in data) == ("csv" in data):
            raise serializers.ValidationError(_("Give either rows or csv."))
        return data


class RowPatchIn(RowIn):
    line = serializers.IntegerField(min_value=1, help_text="The row's line, as the report names it.")
    dropped = serializers.BooleanField(required=False)


class ListPatchIn(serializers.Serializer):
    rows = RowPatchIn(many=True, max_length=PROBLEMS_SHOWN)


class ListPaymentIn(serializers.Serializer):
    couponCode = serializers.CharField(required=False, allow_blank=True, max_length=50)
    paymentDetailId = serializers.IntegerField(required=False, help_text="A saved card (payment-details).")
    cardToken = serializers.CharField(required=False, max_length=100, help_text="A sandbox test token.")
    totalPrice = serializers.DecimalField(
        required=False, max_digits=12, decimal_places=2, help_text="The total the customer saw: 409 if it changed."
    )


def _csv_of(rows):
    """A list file's text for JSON rows: the file's own checks then apply to them, formulas included."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(ROW_KEYS.values())
    for row in rows:
        writer.writerow([row.get(key, "") for key in ROW_KEYS])
    return out.getvalue()


def list_out(bulk_list, *, coupon_code=None):
    summary = bulk.bulk_list_summary(bulk_list)
    data = {
        "id": bulk_list.pk,
        "offerId": bulk_list.offer.long_id,
        "name": bulk_list.name,
        "status": bulk_list.status,
        "rows": summary,
        "orderId": bulk_list.order_id,
        "progress": {"created": bulk_list.gifts_created, "total": bulk_list.gifts_to_create},
    }
    if bulk_list.status == BulkList.Status.DRAFT:
        problems = bulk_list.rows.filter(dropped=False).exclude(problems=[]).order_by("number")[:PROBLEMS_SHOWN]
        data["problems"] = [
            {"line": row.number, "email": row.recipient_email, "problems": row.problems} for row in problems
        ]
        data["droppedLines"] = list(bulk_list.rows.filter(dropped=True).values_list("number", flat=True)[:1000])
        price = bulk_sales.bulk_price(bulk_list=bulk_list, coupon_code=coupon_code)
        data["price"] = {
            "quantity": summary["valid"],
            "offerPrice": price.offer_price,
            "discountAmount": price.discount_amount,
            "totalPrice": price.total_price,
            "currency": price.currency,
        }
    return data


class ListsView(MediaStoreView):
    @extend_schema(
        request=ListCreateIn,
        tags=["gift lists"],
        responses={200: in_envelope("GiftListCreated", serializers.DictField()), **errors(401, 404, 422)},
    )
    def post(self, request):
        data = self.valid(ListCreateIn, request.data)
        offer = offer_get(data["offerId"], active_only=True)
        source = data["csv"] if "csv" in data else _csv_of(data["rows"])
        if "rows" in data and len(data["rows"]) > settings.BULK_MAX_ROWS:
            raise invalid_body(_("A list has at most %(rows)s rows.") % {"rows": settings.BULK_MAX_ROWS})
        try:
            name = data.get("name", "")
            bulk_list = bulk.bulk_list_create(gifter=request.user, offer=offer, source=source, name=name)
        except bulk.BulkFileError as error:
            raise invalid_body(error.message) from None
        return envelope(list_out(bulk_list))


class ListView(MediaStoreView):
    @extend_schema(
        tags=["gift lists"],
        parameters=[OpenApiParameter("couponCode", str, description="Price the list with this coupon.")],
        responses={200: in_envelope("GiftList", serializers.DictField()), **errors(401, 404)},
    )
    def get(self, request, list_id):
        bulk_list = bulk.bulk_list_for_gifter(request.user, list_id)
        return envelope(list_out(bulk_list, coupon_code=request.query_params.get("couponCode") or None))

    @extend_schema(
        request=ListPatchIn,
        tags=["gift lists"],
        responses={200: in_envelope("GiftListUpdated", serializers.DictField()), **errors(401, 404, 409, 422)},
    )
    def patch(self, request, list_id):
        """Corrects rows by line (any subset of their fields), drops (`dropped: true`) or restores them, and checks
        every row again. An empty `rows` only checks again."""
        bulk_list = bulk.bulk_list_for_gifter(request.user, list_id)
        rows = self.valid(ListPatchIn, request.data)["rows"]
        ids = bulk.bulk_row_ids(bulk_list, [row["line"] for row in rows])
        changes, dropped, restored = {}, [], []
        for row in rows:
            row_id = ids.get(row["line"])
            if row_id is None:
                raise invalid_body(_("The list has no line %(line)s.") % {"line": row["line"]})
            changes[row_id] = {column: row[key] for key, column in ROW_KEYS.items() if key in row}
            if "dropped" in row:
                (dropped if row["dropped"] else restored).append(row_id)
        bulk_list = bulk.bulk_rows_update(
            gifter=request.user, list_id=bulk_list.pk, changes=changes, dropped=dropped, restored=restored
        )
        return envelope(list_out(bulk_list))


class ListPaymentView(MediaStoreView):
    @extend_schema(
        request=ListPaymentIn,
        tags=["gift lists"],
        responses={200: in_envelope("GiftListPaid", serializers.DictField()), **errors(401, 404, 409, 422, 429)},
    )
    def post(self, request, list_id):
        """One charge for the whole list (a saved card, a sandbox token, or the default card); the gifts are then made
        in the background: follow `progress` with GET."""
        data = self.valid(ListPaymentIn, request.data)
        bulk_list = bulk.bulk_list_for_gifter(request.user, list_id)
        method = None
        if data.get("paymentDetailId") is not None:
            method = PaymentMethod.objects.filter(pk=data["paymentDetailId"], customer=request.user).first()
            if method is None:
                raise MediaStoreError(_("Unknown payment detail."), status_code=404)

        def pay():
            return bulk_sales.bulk_checkout(
                gifter=request.user,
                list_id=bulk_list.pk,
                coupon_code=data.get("couponCode") or None,
                payment_method=method,
                card_token=data.get("cardToken"),
                shown_total=data.get("totalPrice"),
            )

        try:
            bulk_list = ratelimit.attempt(
                "card-token",
                ratelimit.identities(request),
                pay,
                is_guess=lambda error: getattr(error, "code", None) == "foreign_card_token",
                typed=False,
            )
        except ratelimit.LimitExceeded as limited:
            raise attempts_refused(limited) from None
        except PaymentError as error:
            raise MediaStoreError(error.message, code="PAYMENT_DECLINED", details={"reason": error.code}) from None
        return envelope(list_out(bulk_list))


class ListGiftsView(MediaStoreView):
    @extend_schema(
        tags=["gift lists"],
        parameters=[OpenApiParameter("limit", int), OpenApiParameter("offset", int)],
        responses={200: in_envelope("GiftListGifts", serializers.DictField()), **errors(401, 404, 422)},
    )
    def get(self, request, list_id):
        """Each recipient's gift and status (scheduled, sent, opened, redeemed, declined, bounced, expired,
        cancelled), in file order."""
        bulk_list = bulk.bulk_list_for_gifter(request.user, list_id)
        try:
            limit = min(max(int(request.query_params.get("limit", 100)), 1), 1000)
            offset = max(int(request.query_params.get("offset", 0)), 0)
        except ValueError:
            raise invalid_query(_("limit and offset are numbers.")) from None
        rows = bulk.bulk_list_gifts(bulk_list)
        items = []
        for row in rows[offset : offset + limit]:
            gift = bulk.gift_with_status(row)
            items.append(
                {
                    "line": row.number,
                    "giftId": gift.pk if gift else None,
                    "recipientEmail": gift.recipient_email if gift else row.recipient_email,
                    "status": bulk.row_status(gift),
                    "deliveryDate": unix(gift.scheduled_at) if gift else None,
                    "sentAt": unix(gift.sent_at) if gift else None,
                    "redeemedAt": unix(gift.claimed_at) if gift else None,
                }
            )
        return envelope({"items": items, "totalCount": rows.count()})
