"""The gift emails: one function per email, building its context when it is sent (so no code is stored at rest),
and what follows when the provider accepts a delivery email or it will not arrive. Registered in
settings.EMAIL_KINDS; templates under templates/emails/."""

from urllib.parse import urlencode

from django.conf import settings
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.emails import account_language, customer_language, set_password_url
from emails import services as outbox
from emails.models import Email
from gifts import metrics
from gifts.models import BulkRow, DeliveryMethod, Gift, GiftAction, GiftDesign
from gifts.services import events_record
from giftshop.i18n import language_of
from giftshop.timezones import in_words


def redeem_link(gift):
    """`<redeem URL>?giftCode=CODE&t=TOKEN`: front ends that know only `giftCode` keep working; ours redeems with
    the 128-bit link token `t` (CODE-R3), which still works while typed codes are paused."""
    return f"{outbox.site_settings().effective_redeem_url}?{urlencode({'giftCode': gift.code, 't': gift.link_token})}"


def _gift_context(gift):
    return {
        "gift": gift,
        "offer": gift.offer,
        "gifter_name": gift.from_name,
        "site_url": settings.SITE_URL,
    }


def gift_delivery(email):
    gift = email.gift
    return {
        **_gift_context(gift),
        **_design_context(gift),
        "code": gift.code,
        "redeem_link": redeem_link(gift),
        "decline_link": decline_link(gift),
    }


def _design_context(gift):
    """The gift's design (its colours, and its own image by URL: emails cannot carry inline data reliably), as the
    certificate shows it; the plain design for a gift without one."""
    design = gift.design or GiftDesign.default()
    image_url = ""
    if design.pk and design.image_type:
        image_url = f"{settings.SITE_URL}{reverse('gifts:design_image', args=[design.slug])}"
    return {"design": design, "design_image_url": image_url}


def gift_delivered(email):
    return _gift_context(email.gift)


def gift_receipt(email):
    gift = email.gift
    return {
        **_gift_context(gift),
        "code": gift.code,
        "order": gift.order,
        "invoice": gift.invoice,
        "times": gift.delivery_in_words(),  # in the zone chosen at checkout
        "editable": gift.refusal(GiftAction.EDIT, timezone.now()) is None,  # not for a gift sent now: too late
        "set_password_url": set_password_url(gift.gifter),
        **handover_context(gift),
    }


def handover_context(gift):
    """For a gift its gifter hands over in person: the links to its printable certificate (A4 and US Letter), for
    the receipt and the thank-you page; nothing for an emailed gift."""
    if gift.delivery_method != DeliveryMethod.HANDOVER:
        return {"handover": False}
    url = f"{settings.SITE_URL}{reverse('gifts:certificate', args=[gift.pk])}"
    return {"handover": True, "certificate_a4_url": f"{url}?paper=a4", "certificate_letter_url": f"{url}?paper=letter"}


def gift_redeemed(email):
    return _gift_context(email.gift)


def claim_expiring(email):
    """The recipient's reminder that their code expires soon: the code and link again, as in the delivery."""
    gift = email.gift
    return {**_gift_context(gift), "code": gift.code, "redeem_link": redeem_link(gift)}


def gift_expired(email):
    """The gifter's notice that their gift expired unredeemed, with a link to it on their account, and what they
    got back under the offer's policy (issue 16: a refund, or account credit; billing/claim_window.py)."""
    gift = email.gift
    return {
        **_gift_context(gift),
        **expired_gift_returned(gift),
        "gift_url": f"{settings.SITE_URL}{reverse('gifts:gifts')}#gift-{gift.pk}",
        "set_password_url": set_password_url(gift.gifter),
    }


def expired_gift_returned(gift):
    """What the gifter of an expired gift got back, read from billing's rows through the gift's relations (gifts
    may not import billing): `policy` (the offer's claim_window_end), `refund_amount` (through the gateway),
    `credit_amount` (account credit: the gift's worth, or the credit part of a refunded payment), `currency`, and
    `returned_pending` (the policy gives something back that is not booked yet)."""
    policy = gift.offer.claim_window_end
    context = {"policy": policy, "refund_amount": None, "credit_amount": None, "returned_pending": False}
    if policy == "expire" or not gift.invoice_id:
        return context
    context["currency"] = gift.invoice.currency
    credits = [entry.amount for entry in gift.credits.filter(reason="gift_unredeemed")]
    refunds = gift.invoice.payments.filter(kind="refund")
    own = refunds.filter(idempotency_key__endswith=f":gift:{gift.pk}")
    if own.exists() or gift.invoice.lines.filter(entity_type="plan", quantity__gt=1).exists():
        refunds = own  # one gift of a list: its own share only
    refunds = list(refunds)
    if refunds:
        context["refund_amount"] = sum(row.amount for row in refunds)
        context["returned_pending"] = any(row.status != "succeeded" for row in refunds)
        credits += [entry.amount for entry in gift.invoice.credits.filter(reason="refunded")]
    if credits:
        context["credit_amount"] = sum(credits)
    context["returned_pending"] = context["returned_pending"] or not (refunds or credits)
    return context


def gift_bounced(email):
    """The gifter's notice that the delivery email bounced, with a link to correct the address (which resends
    the same code)."""
    gift = email.gift
    return {
        **_gift_context(gift),
        "address": bounced_email_of_notice(email).to_email,
        "correct_url": f"{settings.SITE_URL}{reverse('gifts:correct_recipient', args=[gift.pk])}",
        "set_password_url": set_password_url(gift.gifter),
    }


def gift_code_replaced(email):
    """The gifter's notice that support replaced their gift's code (the old one no longer works). Never the code:
    it is the recipient's (the gifter's own pages show only its last four characters)."""
    gift = email.gift
    return {
        **_gift_context(gift),
        "delivered": gift.sent_at is not None,
        "gift_url": f"{settings.SITE_URL}{reverse('gifts:gifts')}#gift-{gift.pk}",
        "set_password_url": set_password_url(gift.gifter),
    }


def gift_declined(email):
    """The gifter's notice that the recipient said "No thanks" (issue 16), with what they can still do: withdraw it,
    refunded, while the refund window is open (until when, in their zone), and send it to someone else (the same
    code, a fresh claim window). Never the code: the gifter's pages show only its last four characters."""
    gift, now = email.gift, timezone.now()
    withdraw_url = withdraw_until = send_elsewhere_url = ""
    if gift.refusal(GiftAction.WITHDRAW, now) is None:
        withdraw_url = f"{settings.SITE_URL}{reverse('billing:gift_withdraw', args=[gift.pk])}"
        withdraw_until = in_words(gift.refund_deadline(), gift.gifter_zone.key, now)
    if gift.refusal(GiftAction.SEND_ELSEWHERE, now) is None:
        send_elsewhere_url = f"{settings.SITE_URL}{reverse('gifts:send_elsewhere', args=[gift.pk])}"
    return {
        **_gift_context(gift),
        "recipient": gift.recipient_first_name or gift.recipient_email or _("The person you gave it to"),
        "withdraw_url": withdraw_url,
        "withdraw_until": withdraw_until,
        "send_elsewhere_url": send_elsewhere_url,
        "gifts_url": f"{settings.SITE_URL}{reverse('gifts:gifts')}#gift-{gift.pk}",
        "set_password_url": set_password_url(gift.gifter),
    }


def decline_link(gift):
    """The delivery email's "No thanks": our own page, by the link token alone, which asks before anything changes
    (a GET never declines: mail scanners open links)."""
    return f"{settings.SITE_URL}{reverse('gifts:decline')}?{urlencode({'t': gift.link_token})}"


def gift_nudge(email):
    """The recipient's "not redeemed yet" reminder (gifts/reminders.py), in the gift's design, with the code and link
    again as in the delivery."""
    gift = email.gift
    return {**_gift_context(gift), **_design_context(gift), "code": gift.code, "redeem_link": redeem_link(gift)}


def gift_not_redeemed(email):
    """The gifter's "not redeemed yet" notice, with what they can do: send it again, change the address, or take it
    to hand over in person (all on the gift's follow-up page, gifts/nudges.py). Never the code."""
    gift = email.gift
    page = f"{settings.SITE_URL}{reverse('gifts:not_redeemed', args=[gift.pk])}"
    return {
        **_gift_context(gift),
        "sent": in_words(gift.sent_at, gift.gifter.zone().key),
        "resend_url": f"{page}#resend",
        "correct_url": f"{settings.SITE_URL}{reverse('gifts:correct_recipient', args=[gift.pk])}",
        "handover_url": f"{page}#handover",
        "set_password_url": set_password_url(gift.gifter),
    }


# --- a delivery email accepted, or one that will not arrive -----------------------------------------------


def delivery_sent(*, emails, now):
    """The provider accepted these delivery emails: the gifter's notice that their gift went out, once per gift
    (a resend to a corrected address tells a gifter who has not heard yet). Only now, not at delivery, so a gifter
    whose recipient's address the provider refuses hears only that it could not be delivered. Returned to the
    outbox, which writes them in its transaction and sends them with the rest of its batch (with the gift it has
    already loaded). A bounce reported later (after acceptance) still brings its own notice: "delivered", then
    "could not deliver", is true then."""
    metrics.deliveries_accepted(emails)
    # A list's gifts have no notice each (a gifter of 5,000 would get 5,000): the list page shows them (issue 18).
    in_lists = set(BulkRow.objects.filter(gift_id__in=[e.gift_id for e in emails]).values_list("gift_id", flat=True))
    return [
        Email(
            key=delivered_notice_key(email.gift_id),
            kind=Email.Kind.GIFT_DELIVERED,
            gift=email.gift,
            to_email=email.gift.gifter.email,
        )
        for email in emails
        if email.gift_id and email.gift_id not in in_lists
    ]


def delivered_notice_key(gift_id):
    return f"gift:{gift_id}:delivered"


def delivery_undeliverable(*, email, status, now):
    """A gift's delivery email will not arrive (bounced, or refused for good while sending): a gift_updated event
    and ONE email asking the gifter for a corrected address. The outbox calls this in its transaction."""
    if not email.gift_id:
        return
    gift = Gift.objects.select_related("gifter").get(pk=email.gift_id)
    # The comment names no address: events go to merchant webhooks.
    events_record(gift_ids=[gift.pk], event_type="gift_updated", now=now, extra={"comment": f"delivery email {status}"})
    outbox.email_queue(
        kind=Email.Kind.GIFT_BOUNCED, key=bounce_notice_key(gift.pk, email.pk), to=gift.gifter.email, gift=gift
    )


def bounce_notice_key(gift_id, email_id):
    """One notice per bounced delivery email: a resend to a corrected address that bounces again is news."""
    return f"gift:{gift_id}:bounced:{email_id}"


def bounced_email_of_notice(notice):
    """The delivery email a bounce notice is about (its key names it), for the notice's text."""
    return Email.objects.get(pk=int(notice.key.rsplit(":", 1)[1]), gift_id=notice.gift_id)


# --- bulk gift lists (issue 18) ---


def bulk_done(email):
    """The gifter's notice that every gift of their list exists (each goes out on its own date), with a link to the
    list's statuses. The email's order is the list's."""
    bulk_list = email.order.bulk_list
    return {
        "bulk_list": bulk_list,
        "offer": bulk_list.offer,
        "count": bulk_list.gifts_created,
        "list_url": f"{settings.SITE_URL}{reverse('gifts:bulk_list', args=[bulk_list.pk])}",
    }


# --- the reader's language (settings.EMAIL_KINDS "language"; issue 17) ---


def recipient_language(email):
    """Emails to a gift's recipient: the language of their account (the one that redeemed the gift, else the one at
    the address), else the language the gifter chose for the gift (Gift.language), else the site's default."""
    gift = email.gift
    if gift.receiver_id:
        return customer_language(gift.receiver)
    return account_language(email.to_email) or language_of(gift.language)
