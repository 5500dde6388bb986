"""A paid bulk gift list, and a group code, in "My gifts" (issue 18): the progress of a list's gifts being made (a
page that refreshes itself without JavaScript, and a JSON answer for the script that polls), then each recipient's
status, a resend of one delivered gift, and the statuses as CSV (correcting one row is the gift's own edit or address
page); a group code's seats and who redeemed them."""

import csv

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import JsonResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from gifts import bulk, group_codes
from gifts.models import BulkList, GiftAction, GiftStatus
from giftshop.errors import ServiceError
from giftshop.pages import PAGE_SIZE, page_number, pager


def _progress(bulk_list):
    total = bulk_list.gifts_to_create
    return {
        "status": bulk_list.status,
        "created": bulk_list.gifts_created,
        "total": total,
        "percent": 100 if not total else bulk_list.gifts_created * 100 // total,
        "done": bulk_list.status == BulkList.Status.DONE,
    }


@login_required
def bulk_list(request, list_id):
    """While its gifts are being made: a progress bar (the page refreshes itself every few seconds without
    JavaScript; the script asks bulk_progress instead). Then: counts by status and one row per recipient."""
    the_list = bulk.bulk_list_for_gifter(request.user, list_id)
    if the_list.status == BulkList.Status.DRAFT:
        return redirect("billing:bulk_review", list_id=the_list.pk)
    context = {"bulk_list": the_list, "progress": _progress(the_list)}
    if the_list.status == BulkList.Status.DONE:
        page, now = page_number(request), timezone.now()
        rows = bulk.bulk_list_gifts(the_list)
        items = []
        for row in rows[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]:
            gift = bulk.gift_with_status(row)
            word = bulk.row_status(gift)
            items.append(
                {
                    "row": row,
                    "gift": gift,
                    "status": word,
                    "status_label": bulk.ROW_STATUS_LABELS.get(word, word),
                    "resendable": gift.refusal(GiftAction.RESEND, now) is None,
                    "editable": gift.status == GiftStatus.SCHEDULED,
                    "correctable": word == "bounced" or gift.status == GiftStatus.EXPIRED,
                }
            )
        counts = {bulk.ROW_STATUS_LABELS.get(word, word): n for word, n in bulk.bulk_list_counts(the_list).items()}
        context.update(items=items, counts=counts, **pager(page, rows.count()))
    return render(request, "gifts/bulk_list.html", context)


@login_required
@require_GET
def bulk_progress(request, list_id):
    """The progress as JSON, for the list page's script."""
    the_list = bulk.bulk_list_for_gifter(request.user, list_id)
    return JsonResponse(_progress(the_list), headers={"Cache-Control": "no-store"})


class _Echo:
    def write(self, value):
        return value


@login_required
@require_GET
def bulk_export(request, list_id):
    """Each recipient's status as CSV, streamed (5,000 rows never sit in memory at once)."""
    the_list = bulk.bulk_list_for_gifter(request.user, list_id)
    writer = csv.writer(_Echo())
    response = StreamingHttpResponse(
        (writer.writerow(row) for row in bulk.bulk_list_export_rows(the_list)), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="gift-list-{the_list.pk}-statuses.csv"'
    return response


@login_required
@require_POST
def bulk_resend(request, list_id, gift_id):
    """The delivery email of one delivered gift of the list again, same code, same address."""
    try:
        email = bulk.bulk_gift_resend(gifter=request.user, list_id=list_id, gift_id=gift_id)
    except ServiceError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, _("The gift for %(email)s is sent again.") % {"email": email.to_email})
    return redirect("gifts:bulk_list", list_id=list_id)


@login_required
def group_code(request, group_id):
    """A group code for its gifter: the code to hand out, the seats taken and left, and who redeemed them."""
    group = group_codes.group_code_for_gifter(request.user, group_id)
    redemptions = group_codes.group_redemptions(group)
    return render(request, "gifts/group_code.html", {"group": group, "redemptions": redemptions})
