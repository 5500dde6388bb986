"""The gifter's "Withdraw and refund" page (issue 16), linked from "My gifts": billing's, since it refunds. The GET
asks first (the amount, the deadline in the gifter's zone); only the POST withdraws, and a second POST (a double
click) answers as the first did."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from billing import gift_sales
from billing.models import Payment
from gifts.models import GiftAction
from gifts.selectors import gift_for_gifter
from giftshop.errors import ServiceError
from giftshop.money import money
from giftshop.timezones import in_words


def withdrawn_in_words(withdrawal):
    """What the gifter is told once their gift is withdrawn: the refund, or that it is still owed."""
    gift, refund = withdrawal.gift, withdrawal.refund
    done = _("Your gift of %(offer)s is withdrawn: its code no longer works.") % {"offer": gift.offer.title}
    if refund is None:
        return done + " " + _("Nothing was paid for it, so there is nothing to refund.")
    amount = {"amount": money(refund.amount, refund.currency)}
    if refund.status == Payment.Status.SUCCEEDED:
        return done + " " + _("%(amount)s is refunded to the card you paid with.") % amount
    return (
        done
        + " "
        + _("The refund of %(amount)s did not go through yet: it is recorded, and we will complete it.") % amount
    )


@login_required
@require_http_methods(["GET", "POST"])
def gift_withdraw(request, gift_id):
    gift = gift_for_gifter(request.user, gift_id)
    now, status = timezone.now(), 200
    refusal = gift.refusal(GiftAction.WITHDRAW, now)
    if request.method == "POST":
        try:
            withdrawal = gift_sales.gift_withdraw(gift_id=gift.pk, gifter=request.user, now=now)
        except ServiceError as error:
            refusal, status = error.message, error.status
        else:
            messages.success(request, withdrawn_in_words(withdrawal))
            return redirect("gifts:gifts")
    deadline = gift.refund_deadline()
    context = {
        "gift": gift,
        "refusal": refusal,
        "refund": gift_sales.withdrawal_refund(gift),
        "until": in_words(deadline, request.user.zone().key, now) if deadline else "",
    }
    return render(request, "billing/gift_withdraw.html", context, status=status)
