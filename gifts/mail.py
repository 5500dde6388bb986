"""The outbox's sending side, and one function per email (each with -subject.txt, -body.txt and -body.html
templates under templates/emails/).

An email row is sent only by whoever moved it to `sending` (a conditional UPDATE), so a duplicate task or a
second sweeper sends nothing. Transient provider failures put it back to `pending` with a growing delay;
permanent ones, or running out of attempts, mark it `failed` for support to act on.
"""

import logging
import smtplib
from contextvars import ContextVar
from datetime import timedelta
from functools import partial
from urllib.parse import urlencode

import requests
from anymail.exceptions import AnymailAPIError, AnymailInvalidAddress, AnymailRecipientsRefused
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.contrib.auth.tokens import default_token_generator
from django.core.mail import EmailMultiAlternatives, get_connection
from django.db import connection, transaction
from django.db.models import F
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from accounts.models import Customer, SiteSettings, Subscription
from gifts.bounces import bounced_email_of_notice
from gifts.models import Email, Gift

logger = logging.getLogger(__name__)

# The retry budget and the dead-worker timeout (settings.py EMAIL_*; by default 12 attempts over about 3 hours).
MAX_ATTEMPTS = settings.EMAIL_MAX_ATTEMPTS
BACKOFF_BASE = timedelta(seconds=settings.EMAIL_BACKOFF_BASE)
BACKOFF_CAP = timedelta(seconds=settings.EMAIL_BACKOFF_CAP)
# A row `sending` for longer than this belongs to a worker that died; the sweep gives it back.
STUCK_AFTER = timedelta(seconds=settings.EMAIL_STUCK_AFTER)


def backoff(attempts):
    """Delay before attempt `attempts + 1`: by default 30 s, 1, 2, 4, 8, 16 min, then every 30 min."""
    return min(BACKOFF_BASE * 2 ** max(attempts - 1, 0), BACKOFF_CAP)


# --- one function per email -------------------------------------------------------------------------------


# The site settings of the batch being sent (set by send_claimed_emails), so its emails share one look-up.
_batch_site = ContextVar("batch_site", default=None)


def _site():
    return _batch_site.get() or SiteSettings.load()


def redeem_link(gift):
    """`<redeem URL>?giftCode=CODE&t=TOKEN`: front ends that know only `giftCode` keep working; ours redeems with
    the 128-bit link token `t` (CODE-R3), which still works while typed codes are paused."""
    return f"{_site().effective_redeem_url}?{urlencode({'giftCode': gift.code, 't': gift.link_token})}"


def _gift_context(gift):
    return {
        "gift": gift,
        "offer": gift.offer,
        "gifter_name": gift.gifter.get_full_name(),
        "site_url": settings.SITE_URL,
    }


def gift_delivery(email):
    gift = email.gift
    return {**_gift_context(gift), "code": gift.code, "redeem_link": redeem_link(gift)}


def gift_delivered(email):
    return _gift_context(email.gift)


def gift_receipt(email):
    gift = email.gift
    zone = gift.gifter.zone()
    return {
        **_gift_context(gift),
        "code": gift.code,
        "order": gift.order,
        "invoice": gift.invoice,
        "delivery_local": gift.scheduled_at.astimezone(zone),
        "edit_until_local": gift.edit_cutoff().astimezone(zone),
        "editable": timezone.now() < gift.edit_cutoff(),  # not for a gift sent now: its deadline has passed
        "zone": zone.key,
        "set_password_url": set_password_url(gift.gifter),
    }


def set_password_url(customer):
    """For a customer without a password (a guest checkout): a link to choose one and see their account."""
    if customer.has_usable_password():
        return None
    return password_link(customer)


def password_link(customer):
    """A single-use link to choose a (new) password: Django's password reset token."""
    path = reverse(
        "accounts:password_reset_confirm",
        kwargs={
            "uidb64": urlsafe_base64_encode(force_bytes(customer.pk)),
            "token": default_token_generator.make_token(customer),
        },
    )
    return f"{settings.SITE_URL}{path}"


def gift_redeemed(email):
    return _gift_context(email.gift)


def order_receipt(email):
    order = email.order
    return {
        "order": order,
        "offer": order.offer,
        "invoice": getattr(order, "invoice", None),
        "site_url": settings.SITE_URL,
    }


def set_password(email):
    """About the account of an address, asked for on the register or password pages: a link to choose a password
    (a new one, when the account has one) and the login page. Those pages answer alike for every address."""
    customer = Customer.objects.get(email__iexact=email.to_email)
    return {
        "customer": customer,
        "has_password": customer.has_usable_password(),
        "set_password_url": password_link(customer),
        "login_url": f"{settings.SITE_URL}{reverse('accounts:login')}",
        "site_url": settings.SITE_URL,
    }


def claim_expiring(email):
    """The recipient's reminder that their code expires soon: the code and link again, as in the delivery."""
    gift = email.gift
    return {**_gift_context(gift), "code": gift.code, "redeem_link": redeem_link(gift)}


def term_ending(email):
    """The recipient's reminder that the term of their gift subscription (the one the email's gift started)
    ends soon, with what happens then: the renewal charge, or how to keep access. Read when sent, so it says
    what is true then. The rules are the renewal engine's (accounts/renewals.py)."""
    subscription = Subscription.objects.select_related("offer", "customer").get(pk=email.gift.subscription_id)
    customer = subscription.customer
    merchant_gift = subscription.gifts.filter(source=Gift.Source.MERCHANT).exists()
    renewable = subscription.status == Subscription.Status.ACTIVE and not merchant_gift
    has_card = customer.payment_methods.filter(is_default=True).exists()
    return {
        "subscription": subscription,
        "offer": subscription.offer,
        "customer": customer,
        "zone": customer.zone().key,
        "renews": renewable and subscription.auto_renew and has_card,
        "renewable": renewable,
        "price": subscription.offer.price,
        "currency": subscription.offer.currency,
        "payment_methods_url": f"{settings.SITE_URL}{reverse('accounts:payment_methods')}",
        "set_password_url": set_password_url(customer),
        "site_url": settings.SITE_URL,
    }


def gift_expired(email):
    """The gifter's notice that their gift expired unredeemed, with a link to it on their account."""
    gift = email.gift
    return {
        **_gift_context(gift),
        "gift_url": f"{settings.SITE_URL}{reverse('accounts:gifts')}#gift-{gift.pk}",
        "set_password_url": set_password_url(gift.gifter),
    }


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


RENDERERS = {
    Email.Kind.SET_PASSWORD: set_password,
    Email.Kind.GIFT_DELIVERY: gift_delivery,
    Email.Kind.GIFT_DELIVERED: gift_delivered,
    Email.Kind.GIFT_RECEIPT: gift_receipt,
    Email.Kind.GIFT_REDEEMED: gift_redeemed,
    Email.Kind.ORDER_RECEIPT: order_receipt,
    Email.Kind.CLAIM_EXPIRING: claim_expiring,
    Email.Kind.TERM_ENDING: term_ending,
    Email.Kind.GIFT_EXPIRED: gift_expired,
    Email.Kind.GIFT_BOUNCED: gift_bounced,
}


def render(email):
    """The message for an outbox row. User text goes only into bodies (escaped in HTML), never headers."""
    context = RENDERERS[email.kind](email)
    name = f"emails/{email.kind.replace('_', '-')}"
    subject = " ".join(render_to_string(f"{name}-subject.txt", context).split())
    message = EmailMultiAlternatives(
        subject=subject,
        body=render_to_string(f"{name}-body.txt", context),
        from_email=_site().effective_sender,
        to=[email.to_email],
        headers={"X-Giftshop-Email-Key": email.key},
    )
    message.attach_alternative(render_to_string(f"{name}-body.html", context), "text/html")
    # Providers that de-duplicate on a key (anymail passes metadata through) can drop a resend after a crash.
    message.metadata = {"email_key": email.key}
    return message


# --- sending ---------------------------------------------------------------------------------------------


def _is_permanent(error):
    if isinstance(error, (AnymailRecipientsRefused, AnymailInvalidAddress, smtplib.SMTPRecipientsRefused)):
        return True
    if isinstance(error, AnymailAPIError) and error.status_code is not None:
        return 400 <= error.status_code < 500 and error.status_code not in (408, 429)
    return False


def _send_one(email, provider):
    """Sends one claimed row. A failure is written at once; a success only to the row in memory, for
    _record_sent to write with the rest of its group."""
    try:
        message = render(email)
        message.connection = provider
        message.send()
    except SoftTimeLimitExceeded:
        # The task's time is up, not the provider's fault: stop here (the caller records what went out) rather
        # than go on until the hard limit kills the process mid-group. This row may have been accepted, so it
        # stays `sending` for the stuck reset, which says a duplicate is possible.
        raise
    except Exception as error:
        _record_failure(email, error)
        return False
    status = getattr(message, "anymail_status", None)
    email.status, email.sent_at, email.last_error = Email.Status.SENT, timezone.now(), ""
    email.provider_message_id = str((status.message_id or "") if status else "")
    return True


# Sent rows are written a group at a time. The price: a worker killed mid-group leaves up to this many sent
# rows in `sending`, which the stuck-row reset sends again.
SENT_GROUP = 10


def _record_sent(emails):
    """Marks a group of sent rows in one UPDATE, conditional on `sending` like every write to a claimed row.
    Plain SQL because the ORM's bulk_update() resolves an expression per row and field, which costs more CPU
    than sending the emails; only placeholders are formatted into it."""
    if not emails:
        return
    sent_at = Email._meta.get_field("sent_at")
    whens = " ".join(["WHEN %s THEN %s"] * len(emails))
    params = [value for e in emails for value in (e.pk, sent_at.get_db_prep_value(e.sent_at, connection))]
    params += [value for e in emails for value in (e.pk, e.provider_message_id)]
    params += [e.pk for e in emails]
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE gifts_email SET status = 'sent', last_error = '', sent_at = CASE id {whens} END,"  # noqa: S608
            f" provider_message_id = CASE id {whens} END"
            f" WHERE status = 'sending' AND id IN ({', '.join(['%s'] * len(emails))})",
            params,
        )


def _no_answer(error):
    """Whether the provider may have accepted the message although we saw no success: the request went out and its
    answer was lost (a dropped connection, a read timeout). Such a retry can deliver twice."""
    if isinstance(error, requests.ConnectTimeout):  # never reached the provider
        return False
    return isinstance(error, (requests.RequestException, smtplib.SMTPServerDisconnected, TimeoutError))


def _record_failure(email, error):
    now = timezone.now()
    permanent = _is_permanent(error)
    if permanent or email.attempts >= MAX_ATTEMPTS:
        logger.error(
            "email %s (gift %s) failed for good after %s attempt(s): %r",
            email.key,
            email.gift_id,
            email.attempts,
            error,
        )
        failed = Email.objects.filter(pk=email.pk, status=Email.Status.SENDING).update(
            status=Email.Status.FAILED, last_error=repr(error)[:2000]
        )
        if failed:
            from gifts.bounces import delivery_undeliverable  # bounces builds on the outbox, not the reverse

            with transaction.atomic():
                delivery_undeliverable(email=email, status=Email.Status.FAILED, now=now)
        return
    what = "failed, will retry"
    if _no_answer(error):
        what = "got no answer from the provider, will retry; a duplicate is possible"
    logger.warning("email %s attempt %s %s: %r", email.key, email.attempts, what, error)
    Email.objects.filter(pk=email.pk, status=Email.Status.SENDING).update(
        status=Email.Status.PENDING, next_attempt_at=now + backoff(email.attempts), last_error=repr(error)[:2000]
    )


def _with_relations(ids):
    # Prefetched rather than joined: a delivery batch's emails share gifts (two each), one offer and a few
    # gifters, and building each of those once is cheaper than the few extra queries.
    return list(
        Email.objects.filter(pk__in=ids, status=Email.Status.SENDING)
        .prefetch_related("gift__offer", "gift__gifter", "gift__order", "gift__invoice", "order__offer")
        .order_by("pk")
    )


def send_claimed_emails(emails):
    """Sends rows this worker already moved to `sending`, over one provider connection and with the site
    settings loaded once."""
    sent, unrecorded = 0, []
    loaded = _batch_site.set(SiteSettings.load())
    try:
        with get_connection() as provider:
            for email in _with_relations([e.pk for e in emails]):
                if _send_one(email, provider):
                    sent += 1
                    unrecorded.append(email)
                if len(unrecorded) >= SENT_GROUP:
                    _record_sent(unrecorded)
                    unrecorded = []
    finally:
        _batch_site.reset(loaded)
        # Also when the loop is cut short (a time limit): what went out is recorded as sent.
        _record_sent(unrecorded)
    return sent


def email_send(email_id):
    """Sends one outbox row if it is still pending (the task's entry point: a duplicate call sends nothing)."""
    now = timezone.now()
    claimed = Email.objects.filter(pk=email_id, status=Email.Status.PENDING).update(
        status=Email.Status.SENDING, sending_started_at=now, attempts=F("attempts") + 1
    )
    return send_claimed_emails([Email(pk=email_id)]) if claimed else 0


def _send_alone(stuck, *, now):
    """Gives back rows a lost worker left in `sending` and sends each in a task of its own. One of them may be
    what killed the worker (a message that crashes whoever sends it): alone, it takes down only itself, and the
    rest of its batch neither waits for it nor spends attempts with it. The batch sweep leaves them to their tasks
    for STUCK_AFTER, then takes any whose task was lost too."""
    from gifts.tasks import send_email  # tasks import this module

    for _pk, key in stuck:
        logger.warning("email %s was stuck in sending (worker lost?); retrying, a duplicate is possible", key)
    ids = [pk for pk, _key in stuck]
    Email.objects.filter(pk__in=ids, status=Email.Status.SENDING).update(
        status=Email.Status.PENDING, next_attempt_at=now + STUCK_AFTER
    )
    for pk in ids:
        # Not inside a transaction, so this publishes now; a failed publish is only logged (the sweep catches up).
        transaction.on_commit(partial(send_email.delay, pk), robust=True)


def send_due_emails(*, now=None, batch_size=200):
    """The outbox sweep: gives back rows stuck in `sending`, then sends every pending row that is due (a lost
    task, a retry after a failure). Returns the number sent."""
    now = now or timezone.now()
    stuck = Email.objects.filter(status=Email.Status.SENDING, sending_started_at__lt=now - STUCK_AFTER)
    # The retry budget holds for lost workers too, or a message that kills its worker is retried forever.
    spent = stuck.filter(attempts__gte=MAX_ATTEMPTS)
    for key in spent.values_list("key", flat=True):
        logger.error("email %s was lost in sending on its last attempt; failed for good", key)
    spent.update(status=Email.Status.FAILED, last_error="Worker lost during the last attempt.")
    _send_alone(list(stuck.values_list("pk", "key")), now=now)
    sent = 0
    while True:
        with transaction.atomic():
            ids = list(
                Email.objects.select_for_update(skip_locked=True)
                .filter(status=Email.Status.PENDING, next_attempt_at__lte=now)
                .order_by("next_attempt_at", "pk")
                .values_list("pk", flat=True)[:batch_size]
            )
            Email.objects.filter(pk__in=ids).update(
                status=Email.Status.SENDING, sending_started_at=timezone.now(), attempts=F("attempts") + 1
            )
        if not ids:
            return sent
        sent += send_claimed_emails([Email(pk=pk) for pk in ids])
        if len(ids) < batch_size:
            return sent
