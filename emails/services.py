"""The outbox: queueing an email (a row written in the caller's transaction), sending it after commit, retrying,
the sweep of due and stuck rows, and recording the provider's tracking events (bounces; delivered, opened, clicked,
complained).

An email row is sent only by whoever moved it to `sending` (a conditional UPDATE), so a duplicate task or a
second sweeper sends nothing. Transient provider failures put it back to `pending` with a growing delay;
permanent ones, or running out of attempts, mark it `failed` for support to act on.

Each app renders its own emails: settings.EMAIL_KINDS names, per kind, the function that builds a message's
context (templates/emails/<kind>-subject.txt, -body.txt and -body.html) and, optionally, the one told when the
provider accepted such an email ("sent") and the one told when it will not arrive ("undeliverable"). All are read by
their dotted path, so the outbox imports none of the apps it serves.

ESPs deliver tracking webhooks at least once, so recording a bounce is idempotent: the row moves only from a state
that a bounce can follow (a duplicate finds it moved and changes nothing)."""

import logging
import smtplib
import threading
import time
from collections import defaultdict
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from contextvars import ContextVar
from datetime import timedelta
from functools import cache, partial

import requests
from anymail.exceptions import AnymailAPIError, AnymailInvalidAddress, AnymailRecipientsRefused
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.db import IntegrityError, connection, transaction
from django.db.models import F, Prefetch
from django.db.models.functions import Greatest
from django.template.loader import render_to_string
from django.utils import timezone, translation
from django.utils.module_loading import import_string

from emails import metrics, tasks, throttle
from emails.models import Email
from emails.personal_data import NOT_SENT, is_erased_address
from giftshop.models import SiteSettings

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


# --- queueing -------------------------------------------------------------------------------------------


def email_queue(*, kind, key, to, gift=None, order=None):
    """Records one email (at most once per key) in the current transaction; a worker sends it after commit."""
    email, created = Email.objects.get_or_create(
        key=key, defaults={"kind": kind, "to_email": to, "gift": gift, "order": order}
    )
    if created:
        transaction.on_commit(lambda: tasks.send_email.delay(email.pk), robust=True)
    return email


# --- rendering ------------------------------------------------------------------------------------------


@cache
def _kind_hook(kind, name):
    """The function settings.EMAIL_KINDS registers for `kind` under `name` ("render", "sent", "undeliverable"), or
    None."""
    path = settings.EMAIL_KINDS[kind].get(name)
    return import_string(path) if path else None


# The site settings of the batch being sent (set by send_claimed_emails), so its emails share one look-up.
_batch_site = ContextVar("batch_site", default=None)


def site_settings():
    """The site settings, for renderers: the batch's while a batch is being sent, else read now."""
    return _batch_site.get() or SiteSettings.load()


# The batch being rendered: its addresses, and what renderers looked up for all of them at once (batch_lookup).
_batch_lookups = ContextVar("batch_lookups", default=None)


def batch_lookup(name, load):
    """For renderers: `load(addresses)`, run once for every address of the batch being rendered and kept for the
    rest of it, so a look-up per email (the reader's language) is one query a batch; None outside a batch."""
    state = _batch_lookups.get()
    if state is None:
        return None
    addresses, found = state
    if name not in found:
        found[name] = load(addresses)
    return found[name]


def email_language(email):
    """The language its reader reads the email in: what its kind's "language" function (settings.EMAIL_KINDS; the
    app that owns the kind knows whom it is for) or else settings.EMAIL_LANGUAGE answers, else the site's default.
    Never the language of whoever caused it: emails are rendered by a worker, for someone else."""
    language = _kind_hook(email.kind, "language") or _default_language()
    return language(email) or settings.LANGUAGE_CODE


@cache
def _default_language():
    return import_string(settings.EMAIL_LANGUAGE)


def render(email):
    """The message for an outbox row, in its reader's language (context, subject and bodies alike: a render
    function may word or format things itself). User text goes only into bodies (escaped in HTML), never headers."""
    with translation.override(email_language(email)):
        context = _kind_hook(email.kind, "render")(email)
        name = f"emails/{email.kind.replace('_', '-')}"
        subject = " ".join(render_to_string(f"{name}-subject.txt", context).split())
        message = EmailMultiAlternatives(
            subject=subject,
            body=render_to_string(f"{name}-body.txt", context),
            from_email=site_settings().effective_sender,
            to=[email.to_email],
            headers={"X-Giftshop-Email-Key": email.key},
        )
        message.attach_alternative(render_to_string(f"{name}-body.html", context), "text/html")
    # Providers that de-duplicate on a key (anymail passes metadata through) can drop a resend after a crash.
    message.metadata = {"email_key": email.key}
    return message


def _undeliverable(email, *, status, now):
    """Tells the app that owns the email's kind, if it asked to be told, that the email will not arrive. In the
    caller's transaction, so what it queues (e.g. a notice) exists only if the status change does."""
    told = _kind_hook(email.kind, "undeliverable")
    if told is not None:
        told(email=email, status=status, now=now)


# --- sending ---------------------------------------------------------------------------------------------


class AddresseeErased(Exception):
    """The email is addressed to an erased customer's pseudonym (emails/personal_data.py): it can never arrive, so
    it fails for good without a provider call, as a refused address would (its kind's "undeliverable" hook runs)."""

    def __init__(self):
        super().__init__(NOT_SENT)


def _is_permanent(error):
    if isinstance(
        error, (AddresseeErased, AnymailRecipientsRefused, AnymailInvalidAddress, smtplib.SMTPRecipientsRefused)
    ):
        return True
    if isinstance(error, AnymailAPIError) and error.status_code is not None:
        return 400 <= error.status_code < 500 and error.status_code not in (408, 429)
    return False


class Throttled(Exception):
    """The provider kept saying "too many requests": the email goes back to the queue, its attempt not counted."""

    def __init__(self, retry_after):
        super().__init__(f"throttled by the provider; retry after {retry_after:.1f} s")
        self.retry_after = retry_after


# A throttled request is tried again this many times (each after the pause the provider asked for, which every
# sender honours) before its email goes back to the queue.
THROTTLED_TRIES = 5


class _Senders:
    """EMAIL_SEND_CONCURRENCY threads that send rendered messages, each over a provider connection of its own
    (anymail's backends hold a requests session, which is not shared between threads), each request in its turn
    under the provider's rate limit. A backend with a batch call (`send_batch`, emails/backends.py) gets up to
    EMAIL_BATCH_SIZE messages a request; any other, one. Only the HTTP call runs in a thread: rendering and every
    database write stay in the task's own thread. A concurrency of 1 sends in the task's own thread."""

    def __init__(self, size):
        self._pool = ThreadPoolExecutor(max_workers=size, thread_name_prefix="email-send") if size > 1 else None
        self._local = threading.local()
        self._connections, self._lock = [], threading.Lock()
        batching = callable(getattr(get_connection(), "send_batch", None))
        self.group_size = max(settings.EMAIL_BATCH_SIZE, 1) if batching else 1

    def submit(self, messages):
        """Sends `messages` (one request); the future's result is, per message, None (accepted) or the error that
        refused it. An error of the whole request is the future's exception."""
        if self._pool is not None:
            return self._pool.submit(self._send, messages)
        done = Future()
        try:
            done.set_result(self._send(messages))
        except SoftTimeLimitExceeded:
            raise  # the task's time is up (raised here, in the task's thread): not these emails' failure
        except Exception as error:
            done.set_exception(error)
        return done

    def _send(self, messages):
        connection_ = getattr(self._local, "connection", None)
        if connection_ is None:
            connection_ = self._local.connection = get_connection()
            with self._lock:
                self._connections.append(connection_)
        for _try in range(THROTTLED_TRIES):
            throttle.wait_turn()
            try:
                with metrics.provider_request():
                    if self.group_size > 1:
                        return connection_.send_batch(messages)
                    messages[0].connection = connection_
                    messages[0].send()
                    return [None]
            except SoftTimeLimitExceeded:
                raise
            except Exception as error:
                wait = throttle.retry_after(error)
                if wait is None:
                    raise
                throttle.pause(wait)
        raise Throttled(wait)

    def close(self):
        """Waits for the requests under way (never more than one each, so a few hundred ms), drops those not yet
        started, and closes the connections."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
        for connection_ in self._connections:
            connection_.close()


def _sent(email, message):
    """A success, written only to the row in memory, for _record_sent to write with the rest of its group."""
    status = getattr(message, "anymail_status", None)
    email.status, email.sent_at, email.last_error = Email.Status.SENT, timezone.now(), ""
    email.provider_message_id = str((status.message_id or "") if status else "")


def _give_back(emails, *, delay=timedelta(0), error=""):
    """Claimed rows that were not sent (their task ran out of time before they started, or the provider throttled
    them): pending again at once (or after `delay`), and the attempt they were claimed with not counted."""
    if emails:
        logger.info("%s email(s) not sent by this task: back in the queue (%s)", len(emails), error or "out of time")
        Email.objects.filter(pk__in=[e.pk for e in emails], status=Email.Status.SENDING).update(
            status=Email.Status.PENDING,
            next_attempt_at=timezone.now() + delay,
            attempts=Greatest(F("attempts") - 1, 0),
            last_error=error,
        )


# Sent rows are written a group at a time. The price: a worker killed mid-group leaves up to this many sent
# rows in `sending`, which the stuck-row reset sends again.
SENT_GROUP = 10


def _record_sent(emails, *, again=True):
    """Marks a group of sent rows in one UPDATE, conditional on `sending` like every write to a claimed row, and
    in the same transaction tells the apps that asked (see _accepted), so what follows from an accepted email exists
    only if its `sent` does. Returns the emails that follow, claimed for this worker to send.
    Plain SQL because the ORM's bulk_update() resolves an expression per row and field, which costs more CPU
    than sending the emails; only placeholders are formatted into it."""
    if not emails:
        return []
    sent_at = Email._meta.get_field("sent_at")
    whens = " ".join(["WHEN %s THEN %s"] * len(emails))
    params = [value for e in emails for value in (e.pk, sent_at.get_db_prep_value(e.sent_at, connection))]
    params += [value for e in emails for value in (e.pk, e.provider_message_id)]
    params += [e.pk for e in emails]
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE gifts_email SET status = 'sent', last_error = '', sent_at = CASE id {whens} END,"  # noqa: S608
                f" provider_message_id = CASE id {whens} END"
                f" WHERE status = 'sending' AND id IN ({', '.join(['%s'] * len(emails))}) RETURNING id",
                params,
            )
            # Not a row a bounce webhook moved first (it beat this write): that one did not arrive.
            moved = {pk for (pk,) in cursor.fetchall()}
            accepted = [e for e in emails if e.pk in moved]
            for email in accepted:
                logger.info(
                    "email %s sent (message id %r)",
                    email.key,
                    email.provider_message_id,
                    extra={"gift_id": email.gift_id},
                )
            return _accepted(accepted)
    except IntegrityError:
        if not again:
            raise
        # Another worker wrote a follow-up's key since _claim_new looked (two delivery emails of one gift accepted at
        # the same moment; its unique index made us wait for its commit): once more, and the key is taken.
        return _record_sent(emails, again=False)


def _accepted(emails):
    """Tells each kind's "sent" hook, if it has one, that the provider accepted these emails, and writes the emails
    it answers with (e.g. for a gift's delivery email, the gifter's notice that it went out: only now, so a gifter
    whose recipient's address is refused hears only that). Returns them, saved."""
    now = timezone.now()
    by_kind = defaultdict(list)
    for email in emails:
        by_kind[email.kind].append(email)
    follow_ups = []
    for kind, group in by_kind.items():
        told = _kind_hook(kind, "sent")
        if told is not None:
            follow_ups += told(emails=group, now=now)
    return _claim_new(follow_ups, now=now)


def _claim_new(emails, *, now):
    """Writes unsaved rows, at most once per key as email_queue does, already claimed by this worker, and returns
    those it wrote. The caller sends them over its open connection rather than publishing a task each (a delivery
    batch's notices would cost it a broker round trip per gift); if it dies first, the stuck-row reset sends them."""
    # In key order, so two workers writing overlapping keys wait for each other rather than deadlock.
    emails = sorted({e.key: e for e in emails}.values(), key=lambda e: e.key)
    taken = set(Email.objects.filter(key__in=[e.key for e in emails]).values_list("key", flat=True))
    emails = [e for e in emails if e.key not in taken]
    for email in emails:
        email.status, email.attempts, email.sending_started_at = Email.Status.SENDING, 1, now
        email.next_attempt_at = email.created_at = now
    return Email.objects.bulk_create(emails) if emails else []


def _no_answer(error):
    """Whether the provider may have accepted the message although we saw no success: the request went out and its
    answer was lost (a dropped connection, a read timeout). Such a retry can deliver twice."""
    if isinstance(error, requests.ConnectTimeout):  # never reached the provider
        return False
    return isinstance(error, (requests.RequestException, smtplib.SMTPServerDisconnected, TimeoutError))


def describe(error):
    """An error as support and the logs need it: its type, the provider's HTTP status and the provider's own words
    (anymail's errors carry the answer in their text; their repr() is often just `AnymailRequestsAPIError()`)."""
    if isinstance(error, AddresseeErased):
        return str(error)  # ours, not a provider's
    status = getattr(error, "status_code", None)
    words = " ".join(str(error).split()) or repr(error)
    return f"{type(error).__name__}{f' (HTTP {status})' if status else ''}: {words}"[:2000]


def _record_failure(email, error):
    now = timezone.now()
    permanent = _is_permanent(error)
    metrics.email_failed(email, for_good=permanent or email.attempts >= MAX_ATTEMPTS)
    if permanent or email.attempts >= MAX_ATTEMPTS:
        logger.log(
            logging.INFO if isinstance(error, AddresseeErased) else logging.ERROR,  # as asked, not a fault to alert on
            "email %s (gift %s) failed for good after %s attempt(s): %s",
            email.key,
            email.gift_id,
            email.attempts,
            describe(error),
        )
        failed = Email.objects.filter(pk=email.pk, status=Email.Status.SENDING).update(
            status=Email.Status.FAILED, last_error=describe(error)
        )
        if failed:
            with transaction.atomic():
                _undeliverable(email, status=Email.Status.FAILED, now=now)
        return
    what = "failed, will retry"
    if _no_answer(error):
        what = "got no answer from the provider, will retry; a duplicate is possible"
    logger.warning("email %s attempt %s %s: %s", email.key, email.attempts, what, describe(error))
    Email.objects.filter(pk=email.pk, status=Email.Status.SENDING).update(
        status=Email.Status.PENDING, next_attempt_at=now + backoff(email.attempts), last_error=describe(error)
    )


def _designs():
    """The gifts' designs, without their images (an email names a design's image by URL); the model is found by the
    relation, as the outbox imports none of the apps it serves."""
    design = Email.gift.field.related_model.design.field.related_model
    return Prefetch("gift__design", queryset=design.objects.defer("image"))


def _with_relations(ids):
    # Prefetched rather than joined: a delivery batch's emails share gifts (two each), one offer and a few
    # gifters, and building each of those once is cheaper than the few extra queries.
    return list(
        Email.objects.filter(pk__in=ids, status=Email.Status.SENDING)
        .prefetch_related("gift__offer", "gift__gifter", "gift__order", "gift__invoice", "order__offer", _designs())
        .order_by("pk")
    )


def send_claimed_emails(emails):
    """Sends rows this worker already moved to `sending`, EMAIL_SEND_CONCURRENCY requests at a time, with the site
    settings loaded once; then, the same way, the emails their acceptance brought (_record_sent's follow-ups, with
    the relations their hook gave them). Cut short (the task's time limit), it records what went out and gives back
    at once what had not started, so nothing waits for the stuck-row reset but the requests under way."""
    sent, unrecorded, in_flight, unstarted = 0, [], {}, []
    loaded = _batch_site.set(SiteSettings.load())
    senders = _Senders(settings.EMAIL_SEND_CONCURRENCY)
    try:
        unstarted = list(emails)  # should the time limit strike even before the first is loaded
        batch = _with_relations([e.pk for e in emails])
        while batch:
            unstarted, rendered = list(batch), []
            lookups = _batch_lookups.set(({email.to_email.lower() for email in batch}, {}))
            for email in batch:
                try:
                    if is_erased_address(email.to_email):
                        raise AddresseeErased
                    rendered.append((email, render(email)))
                except Exception as error:  # a template or data error, an erased addressee: that email's own failure
                    unstarted.remove(email)
                    _record_failure(email, error)
            _batch_lookups.reset(lookups)  # (a time limit striking inside leaves it: the finally below clears it)
            for start in range(0, len(rendered), senders.group_size):
                group = rendered[start : start + senders.group_size]
                # Out of `unstarted` first: should the time limit strike during this send (in the task's thread at
                # a concurrency of 1), these may have reached the provider, so they stay `sending` for the stuck
                # reset, which warns of a possible duplicate.
                for email, _message in group:
                    unstarted.remove(email)
                in_flight[senders.submit([message for _email, message in group])] = group
            follow_ups = []
            for future in as_completed(list(in_flight)):
                group = in_flight.pop(future)
                for email, accepted in _outcomes(group, future):
                    if accepted:
                        sent += 1
                        unrecorded.append(email)
                if len(unrecorded) >= SENT_GROUP:
                    follow_ups += _record_sent(unrecorded)
                    unrecorded = []
            follow_ups += _record_sent(unrecorded)
            batch, unrecorded = follow_ups, []
    finally:
        senders.close()  # what had not started is cancelled; what was under way has finished
        for future, group in in_flight.items():
            if not future.cancelled():
                for email, accepted in _outcomes(group, future):
                    if accepted:
                        sent += 1
                        unrecorded.append(email)
        cancelled = [email for future, group in in_flight.items() if future.cancelled() for email, _message in group]
        _give_back(unstarted + cancelled)
        _batch_site.reset(loaded)
        _batch_lookups.set(None)
        # Also when the loop is cut short (a time limit): what went out is recorded as sent. A second record of a
        # group is harmless (the UPDATE moves only `sending` rows); follow-ups written here wait for the stuck reset.
        _record_sent(unrecorded)
    return sent


def _outcomes(group, future):
    """A finished request's emails, each with whether the provider accepted it (recorded in memory); a refusal, a
    failure of the whole request or a throttle is written now."""
    try:
        results = future.result()
    except Throttled as throttled:
        logger.warning("%s email(s) throttled by the provider; back in the queue", len(group))
        emails = [email for email, _message in group]
        _give_back(emails, delay=timedelta(seconds=throttled.retry_after), error=str(throttled))
        return [(email, False) for email in emails]
    except Exception as error:
        results = [error] * len(group)
    outcomes = []
    for (email, message), error in zip(group, results, strict=True):
        if error is None:
            _sent(email, message)
            metrics.email_sent(email)
        else:
            _record_failure(email, error)
        outcomes.append((email, error is None))
    return outcomes


def email_send(email_id):
    """Sends one outbox row if it is still pending (the task's entry point: a duplicate call sends nothing)."""
    return emails_send([email_id])


def emails_send(email_ids):
    """Sends those of these outbox rows that are still pending, claiming them first (a duplicate task, or the
    outbox sweep that took them meanwhile, leaves this one nothing to send)."""
    with transaction.atomic():
        claimed = list(
            Email.objects.select_for_update(skip_locked=True)
            .filter(pk__in=email_ids, status=Email.Status.PENDING)
            .values_list("pk", flat=True)
        )
        Email.objects.filter(pk__in=claimed).update(
            status=Email.Status.SENDING, sending_started_at=timezone.now(), attempts=F("attempts") + 1
        )
    return send_claimed_emails([Email(pk=pk) for pk in claimed]) if claimed else 0


def hand_off(email_ids):
    """Gives written `pending` emails to the workers' send tasks, EMAIL_SEND_CHUNK to a task, so the caller (the
    delivery sweep) goes on at once and every worker process sends. A lost publish is only logged: the outbox sweep
    takes the email after its grace."""
    chunk = max(settings.EMAIL_SEND_CHUNK, 1)
    for start in range(0, len(email_ids), chunk):
        ids = email_ids[start : start + chunk]
        transaction.on_commit(partial(tasks.send_emails.delay, ids), robust=True)


def _send_alone(stuck, *, now):
    """Gives back rows a lost worker left in `sending` and sends each in a task of its own. One of them may be
    what killed the worker (a message that crashes whoever sends it): alone, it takes down only itself, and the
    rest of its batch neither waits for it nor spends attempts with it. The batch sweep leaves them to their tasks
    for STUCK_AFTER, then takes any whose task was lost too."""
    for _pk, key in stuck:
        logger.warning("email %s was stuck in sending (worker lost?); retrying, a duplicate is possible", key)
    ids = [pk for pk, _key in stuck]
    Email.objects.filter(pk__in=ids, status=Email.Status.SENDING).update(
        status=Email.Status.PENDING, next_attempt_at=now + STUCK_AFTER
    )
    for pk in ids:
        # Not inside a transaction, so this publishes now; a failed publish is only logged (the sweep catches up).
        transaction.on_commit(partial(tasks.send_email.delay, pk), robust=True)


# The outbox sweep stops after this many seconds (the next one goes on), well inside the task's time limit.
SWEEP_BUDGET = 60


def send_due_emails(*, now=None, batch_size=200, budget=SWEEP_BUDGET):
    """The outbox sweep: gives back rows stuck in `sending`, then sends pending rows that are due (a lost task, a
    retry after a failure) for up to `budget` seconds. Returns the number sent."""
    now, started = now or timezone.now(), time.monotonic()
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
        if len(ids) < batch_size or time.monotonic() - started >= budget:
            return sent


# --- bounces ---------------------------------------------------------------------------------------------

# anymail's normalized event types that mean the message did not (and will not) reach the recipient. Not a
# complaint: that email did arrive, at the right address (asking its gifter to correct it would be wrong); it is
# timed (email_tracked), and the gifts' nudges go to the address no more (gifts/reminders.py).
STATUS_FOR_EVENT = {
    "bounced": Email.Status.BOUNCED,
    "rejected": Email.Status.BOUNCED,
    "failed": Email.Status.FAILED,
}


def _email_for(message_id, email_key):
    """The outbox row an ESP event is about: by the key we sent as metadata (ESPs that echo it), else by the
    message id the ESP gave when it accepted the message (with or without the <> some ESPs add)."""
    if email_key:
        email = Email.objects.filter(key=email_key).first()
        if email is not None:
            return email
    if message_id:
        bare = str(message_id).strip().strip("<>")
        return Email.objects.filter(provider_message_id__in=[bare, f"<{bare}>"]).order_by("-pk").first()
    return None


# anymail's normalized event types that we time on the email, each the first time it is reported (the admin's
# funnel reads them; a gift's path on "My gifts" shows them).
TRACKED_FIELD_FOR_EVENT = {
    "delivered": "delivered_at",
    "opened": "opened_at",
    "clicked": "clicked_at",
    "complained": "complained_at",
}


def email_tracked(*, message_id=None, email_key=None, event_type, when=None, now=None):
    """Records when the provider reported an email delivered, opened, clicked or complained about: the first report
    only. ESPs send events more than once and out of order; the conditional UPDATE (WHERE <field> IS NULL) makes a
    repeat, even one racing the first, change nothing. Returns whether this call recorded it."""
    field = TRACKED_FIELD_FOR_EVENT.get(event_type)
    email = _email_for(message_id, email_key) if field else None
    if email is None:
        if field:
            logger.info("%s event for an unknown email (message id %r, key %r)", event_type, message_id, email_key)
        return False
    # The provider's time of the event when it gives one (a webhook retried an hour later is still about then).
    when = when or now or timezone.now()
    recorded = Email.objects.filter(pk=email.pk, **{f"{field}__isnull": True}).update(**{field: when})
    if recorded and event_type == "complained":
        logger.warning("email %s was marked as spam by its recipient", email.key)
    return bool(recorded)


@transaction.atomic
def email_bounced(*, message_id=None, email_key=None, recipient, event_type, description, now=None):
    """Records that an email did not arrive, and tells the app that owns its kind (a gift's delivery email: a
    gift_updated event and ONE email to the gifter asking for a corrected address). Returns the row it moved, or
    None (not ours, not a bounce, or already recorded)."""
    now = now or timezone.now()
    status = STATUS_FOR_EVENT.get(event_type)
    email = _email_for(message_id, email_key) if status else None
    if email is None:
        if status:
            logger.info("%s event for an unknown email (message id %r, key %r)", event_type, message_id, email_key)
        return None
    # `sending` too: the webhook can beat the worker's write of `sent`, which is conditional on `sending` and so
    # leaves the bounce in place.
    moved = Email.objects.filter(pk=email.pk, status__in=[Email.Status.SENDING, Email.Status.SENT]).update(
        status=status, last_error=f"{event_type} ({recipient}): {description}"[:2000]
    )
    if not moved:
        return None
    logger.warning("email %s to %s %s: %s", email.key, recipient or email.to_email, event_type, description)
    _undeliverable(email, status=status, now=now)
    email.refresh_from_db()
    return email
