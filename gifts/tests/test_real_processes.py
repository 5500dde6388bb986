"""Gifts through real processes (RELIABILITY.md, "Prove it"): Celery workers and beats as subprocesses on Redis and
the test's PostgreSQL database, sending through anymail's Postmark backend to a fake Postmark on loopback
(gifts/tests/fake_postmark.py). Two beats at once (CEL-6), a worker SIGKILLed before (CEL-7) or after (CEL-8) the
provider call and the rows it left in `sending` (CEL-15), a provider down past the retry budget (CEL-11), the
running worker's delivery settings (CEL-13), a sweep cut short by its soft time limit, Redis stopped during a
purchase and restarted (CEL-3), PostgreSQL dropping the worker's connections mid-sweep. Each ends with every
gift delivered exactly once: nothing lost, nothing stuck. The chaos run (TOOL-5) adds, on a Redis of its own, a
worker's pool or only its main process SIGKILLed mid-sweep, a warm shutdown mid-sweep, Redis restarted mid-sweep and
a message that kills its worker every time, each ending with the run bounded (`Chaos.assert_bounded`).

The subprocesses run with short timings (FAST): sweeps every 2 s, a `sending` row taken for a dead worker's after
10 s (and so tasks killed after 9 s), retries a second or two apart."""

import logging
import os
import re
import shutil
import signal
import sys
import threading
import time
from collections import Counter
from contextlib import contextmanager
from urllib.parse import urlsplit

import kombu.pools
import psycopg
import pytest
import redis
from django.conf import settings
from django.db import connection
from django.db.models import Min
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from kombu.exceptions import OperationalError

from accounts.tests.factories import CustomerFactory
from billing.services import order_create, order_pay, order_update
from emails.models import Email
from emails.services import send_due_emails
from gifts import services
from gifts.models import Gift, GiftStatus
from gifts.tests.factories import GiftFactory, GuestFactory
from gifts.tests.fake_postmark import FakePostmark, children, running
from gifts.tests.merchant import MerchantClient, gift_params, gifter_with_card
from giftshop.celery import app
from giftshop.tests.processes import RedisServer, start_logged, stop_process, wait_for
from offers.tests.factories import OfferFactory

pytestmark = [pytest.mark.slow, pytest.mark.real_broker, pytest.mark.django_db(transaction=True)]

CELERY = [sys.executable, "-m", "celery", "--app", "giftshop"]
SWEEP_INTERVAL, STUCK_AFTER = 2, 10
FAST = {
    "SWEEP_INTERVAL": str(SWEEP_INTERVAL),
    "EMAIL_STUCK_AFTER": str(STUCK_AFTER),
    "CELERY_TASK_SOFT_TIME_LIMIT": "8",
    "CELERY_TASK_TIME_LIMIT": "9",
    "EMAIL_BACKOFF_BASE": "1",
    "EMAIL_BACKOFF_CAP": "2",
}


class CeleryProcesses:
    """Workers and beats as subprocesses, each in a process group of its own (so a test can SIGKILL one with its
    pool), each logging into `<name>.log` in the test's tmp dir, appended to when it is started again."""

    def __init__(self, tmp_path, env):
        self.tmp_path, self.env, self.processes = tmp_path, env, {}

    def start(self, name, *, concurrency=2):
        """Starts (or starts again) `worker…` (with `concurrency` pool processes) or `beat…`, as the name begins."""
        if name in self.processes:
            stop_process(self.processes[name])
        if name.startswith("beat"):
            command = [*CELERY, "beat", "--loglevel", "INFO", "--schedule", str(self.tmp_path / f"{name}-schedule")]
        else:
            command = [*CELERY, "worker", "--concurrency", str(concurrency), "--loglevel", "INFO"]
            command += ["--hostname", f"{name}@%h"]
        self.processes[name] = start_logged(command, env=self.env, log_path=self.log_path(name), cwd=settings.BASE_DIR)
        return self.processes[name]

    def log_path(self, name):
        return self.tmp_path / f"{name}.log"

    def log(self, name):
        return self.log_path(name).read_text()

    def wait_ready(self, name):
        assert wait_for(lambda: " ready." in self.log(name), timeout=30), f"{name} did not start"

    def alive(self):
        return all(process.poll() is None for process in self.processes.values())

    def stop(self):
        for process in self.processes.values():  # all at once: each warm shutdown takes a moment
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes.values():
            stop_process(process)


@pytest.fixture
def celery(transactional_db, tmp_path, request):
    """Starts nothing yet: tests add to `.env` (a provider, timings, a broker) and then start what they need. The
    subprocesses use the test database (pytest-django's `test_` name, which they would not guess) and the test's
    Redis db; their logs are printed when the test fails."""
    database_url = urlsplit(os.environ["DATABASE_URL"])._replace(path=f"/{settings.DATABASES['default']['NAME']}")
    env = {
        **os.environ,
        "DATABASE_URL": database_url.geturl(),
        "REDIS_URL": settings.REDIS_URL,
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "CELERY_RESULT_BACKEND": settings.CELERY_RESULT_BACKEND,
        "PYTHONUNBUFFERED": "1",
        **FAST,
    }
    app.control.purge()  # messages other tests left in this Redis db would reach our worker first
    processes = CeleryProcesses(tmp_path, env)
    failed_before = request.session.testsfailed
    try:
        yield processes
    finally:
        processes.stop()
        if request.session.testsfailed > failed_before:
            for name, process in processes.processes.items():
                print(f"----- {name} (exit code {process.returncode}) -----\n{processes.log(name)}")


@pytest.fixture
def provider(celery):
    """The fake Postmark the workers send through; like SMTP (no de-duplication) unless a test turns it on."""
    with FakePostmark(dedupe=False) as fake:
        celery.env.update(fake.env())
        yield fake


def due_gifts(count):
    """`count` gifts due now, committed (the workers' connections see them), each to its own recipient."""
    return GiftFactory.create_batch(count, gifter=GuestFactory(), offer=OfferFactory(), scheduled_at=timezone.now())


def delivery_keys(gifts):
    """The emails a delivery writes: the recipient's (code and link) and the gifter's "delivered" note."""
    return [f"gift:{gift.pk}:{kind}" for gift in gifts for kind in ("delivery", "delivered")]


def all_sent(keys):
    return Email.objects.filter(key__in=keys, status=Email.Status.SENT).count() == len(keys)


def assert_nothing_lost_or_stuck(gifts, provider, *, once=True, log=None):
    """Every gift delivered (unclaimed, with sent_at), each of its emails `sent`, no email left pending or
    sending; each recipient got their delivery email and nothing else, each note reached the gifter. `once`:
    the provider also accepted each email exactly once (no resend at all, not even a de-duplicated one). `log` (a
    worker's) allows what a lost worker may cause instead: the provider accepted an email twice, never more, and
    then only after the stuck reset named it in `log` as a possible duplicate; a provider that does not
    de-duplicate delivered those twice."""
    gifts = Gift.objects.filter(pk__in=[gift.pk for gift in gifts])
    assert {(gift.status, gift.sent_at is not None) for gift in gifts} == {(GiftStatus.UNCLAIMED, True)}
    keys = delivery_keys(gifts)
    statuses = dict(Email.objects.filter(key__in=keys).values_list("key", "status"))
    assert statuses == dict.fromkeys(keys, Email.Status.SENT)
    assert not Email.objects.filter(status__in=[Email.Status.PENDING, Email.Status.SENDING]).exists()
    accepted = Counter(key for key, _ in provider.accepted if key in keys)
    twice = set()
    if log is not None:
        assert set(accepted.values()) <= {1, 2}, "an email was accepted more than twice"
        twice = {key for key, count in accepted.items() if count == 2}
        unlogged = {key for key in twice if _possible_duplicate(key) not in log}
        assert not unlogged, "sent twice without a warning"
    elif once:
        assert accepted == dict.fromkeys(keys, 1)
    copies = {key: 2 if key in twice and not provider.dedupe else 1 for key in keys}
    for gift in gifts:
        delivery = f"gift:{gift.pk}:delivery"
        assert provider.inbox_of(gift.recipient_email) == {delivery: copies[delivery]}
    assert Counter(key for key, _ in provider.inbox if key in keys) == copies


def _possible_duplicate(key):
    return f"email {key} was stuck in sending (worker lost?); retrying, a duplicate is possible"


def test_a_gift_due_now_is_emailed_once_by_beat_and_a_real_worker_configured_for_redelivery(celery, provider):
    [gift] = due_gifts(1)
    celery.start("worker")
    celery.start("beat")

    assert wait_for(lambda: all_sent(delivery_keys([gift])) or not celery.alive(), timeout=30), "not delivered"
    assert celery.alive(), "the worker or beat exited"
    time.sleep(2 * SWEEP_INTERVAL)  # later sweeps find nothing left to deliver
    assert_nothing_lost_or_stuck([gift], provider)

    # CEL-13, on the running worker: late acks, redelivery of a killed worker's task, one message at a time,
    # UTC, and Redis's visibility timeout longer than any task may run.
    [table] = app.control.inspect(timeout=5, limit=1).conf().values()
    conf = {key.lower().removeprefix("celery_"): value for key, value in table.items()}  # Django's CELERY_ names
    assert conf["task_acks_late"] and conf["task_reject_on_worker_lost"]
    assert conf["worker_prefetch_multiplier"] == 1 and conf["timezone"] == "UTC"
    assert conf["broker_transport_options"]["visibility_timeout"] > conf["task_time_limit"]


def test_two_beats_by_mistake_still_send_each_of_30_gifts_once(celery, provider):
    """CEL-6: two beats send every sweep twice, to two workers of two processes each; the sweeps compete for the
    same gifts (SKIP LOCKED and conditional updates)."""
    gifts = due_gifts(30)
    for name in ("worker-1", "worker-2", "beat-1", "beat-2"):
        celery.start(name)

    assert wait_for(lambda: all_sent(delivery_keys(gifts)) or not celery.alive(), timeout=45), "not delivered"
    assert celery.alive()
    time.sleep(2 * SWEEP_INTERVAL)
    for beat in ("beat-1", "beat-2"):  # both kept sending the sweeps
        assert celery.log(beat).count("Sending due task deliver-due-gifts") >= 2
    assert_nothing_lost_or_stuck(gifts, provider)


def test_a_worker_killed_before_the_provider_call_leaves_its_emails_to_the_stuck_reset_which_sends_each_once(
    celery, provider
):
    """CEL-7 and CEL-15: the whole worker (pool included) dies as its first email reaches the provider, which never
    accepts it. The gifts were delivered (committed before sending); their emails stay `sending` until the stuck
    timeout, then go out once (the others, sent at the same time by the worker's other senders, may have been
    accepted before it died: sent again, each named as a possible duplicate, de-duplicated by the provider)."""
    gifts = due_gifts(3)
    first = f"gift:{gifts[0].pk}:delivery"
    provider.kill_on(first, celery.start("worker"), accepted=False)
    celery.start("beat")

    assert provider.killed.wait(timeout=30), "the delivery email never reached the provider"
    assert wait_for(lambda: celery.processes["worker"].poll() is not None, timeout=10)
    assert Email.objects.get(key=first).status == Email.Status.SENDING
    assert provider.accepted_of(first) == 0
    assert set(Gift.objects.filter(pk__in=[g.pk for g in gifts]).values_list("status", flat=True)) == {"unclaimed"}

    celery.start("worker")
    assert wait_for(lambda: all_sent(delivery_keys(gifts)), timeout=STUCK_AFTER + 30), "not sent after restart"
    assert f"email {first} was stuck in sending" in celery.log("worker")
    assert provider.accepted_of(first) == 1
    assert_nothing_lost_or_stuck(gifts, provider, log=celery.log("worker"))


@pytest.mark.parametrize("dedupe", [True, False], ids=["deduping-provider", "smtp-like-provider"])
def test_a_worker_killed_after_the_provider_accepted_sends_again_and_says_a_duplicate_is_possible(
    celery, provider, dedupe
):
    """CEL-8: the provider accepts the first email, then the worker dies before marking it sent. The stuck reset
    sends it again: a provider de-duplicating on the email key delivers it once, an SMTP-like one twice (never
    more), and the worker's log names the possible duplicate. No gift is lost. (The worker's other senders may have
    had emails accepted in the same moments: the same holds for each of those.)"""
    provider.dedupe = dedupe
    gifts = due_gifts(3)
    first = f"gift:{gifts[0].pk}:delivery"
    provider.kill_on(first, celery.start("worker"), accepted=True)
    celery.start("beat")

    assert provider.killed.wait(timeout=30), "the delivery email never reached the provider"
    assert provider.delivered(first) == 1
    assert wait_for(lambda: celery.processes["worker"].poll() is not None, timeout=10)
    assert Email.objects.get(key=first).status == Email.Status.SENDING

    celery.start("worker")
    assert wait_for(lambda: all_sent(delivery_keys(gifts)), timeout=STUCK_AFTER + 30), "not sent after restart"
    assert provider.accepted_of(first) == 2 and len(provider.accepted) >= len(delivery_keys(gifts)) + 1
    assert provider.inbox_of(gifts[0].recipient_email) == {first: 1 if dedupe else 2}
    assert_nothing_lost_or_stuck(gifts, provider, log=celery.log("worker"))


def test_a_provider_down_past_the_retry_budget_fails_the_email_alerts_and_leaves_the_gift_to_support(celery, provider):
    """CEL-11 with a budget of 3 attempts: the delivery email ends `failed`, an ERROR line names it and its gift,
    later sweeps never send it again; support's resend reaches the recipient and the code still redeems."""
    celery.env["EMAIL_MAX_ATTEMPTS"] = "3"
    provider.down = True
    [gift] = due_gifts(1)
    delivery = f"gift:{gift.pk}:delivery"
    celery.start("worker")
    celery.start("beat")

    failed = Email.objects.filter(key=delivery, status=Email.Status.FAILED)
    assert wait_for(failed.exists, timeout=45), "the delivery email did not fail"
    assert failed.get().attempts == 3 and provider.requests_of(delivery) == 3
    alert = f"ERROR emails.services email {delivery} (gift {gift.pk}) failed for good after 3 attempt(s)"
    assert alert in celery.log("worker")
    time.sleep(3 * SWEEP_INTERVAL)
    assert provider.requests_of(delivery) == 3 and failed.exists()

    provider.down = False
    resend = services.gift_resend(gift_id=gift.pk, actor="support")
    assert wait_for(lambda: all_sent([resend.key]), timeout=20), "the resend was not sent"
    assert provider.inbox_of(gift.recipient_email) == {resend.key: 1}
    gift.refresh_from_db()
    assert gift.status == GiftStatus.UNCLAIMED and gift.sent_at
    assert wait_for(
        lambda: not Email.objects.filter(status__in=[Email.Status.PENDING, Email.Status.SENDING]).exists(), timeout=20
    )
    assert Email.objects.get(key=delivery).status == Email.Status.FAILED
    redeemed = services.gift_redeem(customer=GuestFactory(email=gift.recipient_email), code=gift.code)
    assert redeemed.gift.status == GiftStatus.CLAIMED


def test_a_sweep_whose_database_connections_are_dropped_midway_still_delivers_each_of_300_gifts_once(celery, provider):
    """PostgreSQL ends every connection of the worker (pg_terminate_backend) while it is sending the first batch:
    that sweep fails, the next ones reconnect, and the stuck reset sends what the failed one left `sending`
    (de-duplicated by the provider where it had already accepted them)."""
    provider.dedupe = True
    gifts = due_gifts(300)
    database = settings.DATABASES["default"]
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        [own] = cursor.fetchone()
    terminated = []

    def drop_connections():
        with psycopg.connect(
            host=database["HOST"], port=database["PORT"], user=database["USER"], password=database["PASSWORD"],
            dbname=database["NAME"], autocommit=True,
        ) as admin:  # fmt: skip
            rows = admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = %s AND pid <> pg_backend_pid() AND pid <> %s",
                [database["NAME"], own],
            ).fetchall()
        terminated.extend(rows)

    provider.on_request(100, drop_connections)
    celery.start("worker")
    celery.start("beat")

    assert wait_for(lambda: all_sent(delivery_keys(gifts)), timeout=STUCK_AFTER + 60), "not all sent"
    assert terminated, "no connection was dropped"
    # PostgreSQL's notice, or, when the worker was waiting on the provider as its connection went, the client's.
    dropped = ("terminating connection due to administrator command", "server closed the connection unexpectedly")
    assert any(text in celery.log("worker") for text in dropped)
    assert not Gift.objects.filter(status=GiftStatus.SCHEDULED).exists()
    assert_nothing_lost_or_stuck(gifts, provider, once=False)


def test_a_send_cut_short_by_its_soft_time_limit_gives_back_what_it_had_not_started_which_goes_out_once_soon(
    celery, provider
):
    """A provider slow enough that a send task (here 400 emails to a task, one request at a time) outlasts its soft
    time limit (8 s; the hard one is 9 s): the task stops there, records what it sent (the request under way
    finishes first) and gives back at once what it had not started, which the outbox sweep sends within seconds,
    not after the stuck timeout; it is not killed at the hard limit."""
    celery.env.update(EMAIL_SEND_CHUNK="400", EMAIL_SEND_CONCURRENCY="1")
    provider.dedupe, provider.delay = True, 0.025
    gifts = due_gifts(300)
    celery.start("worker")
    celery.start("beat")

    assert wait_for(lambda: all_sent(delivery_keys(gifts)), timeout=STUCK_AFTER + 60), "not all sent"
    log = celery.log("worker")
    assert "SoftTimeLimitExceeded" in log
    assert "Hard time limit" not in log and "WorkerLostError" not in log
    assert "not sent by this task: back in the queue (out of time)" in log
    # The one request under way when the limit struck may have been accepted: sent again, named in the log.
    assert_nothing_lost_or_stuck(gifts, provider, log=log)


# --- Redis --------------------------------------------------------------------------------------------------


@contextmanager
def _broker_at(url):
    """Points this process's task publishing at `url`. Kombu pools producers per broker URL and the app caches
    its pools, so those are dropped on the way in and on the way out."""
    overrides = {
        "broker_url": url,
        "broker_write_url": url,  # what publishing reads (Celery 5.6 fills it from broker_url at start-up)
        # Publishing keeps the product's retry policy; these only bound each attempt, should the port ever drop
        # packets instead of refusing them. (broker_connection_retry* configure the worker's consumer, not this.)
        "broker_transport_options": {
            **app.conf.broker_transport_options,
            "socket_connect_timeout": 1,
            "max_retries": 1,
        },
    }
    previous = {key: app.conf[key] for key in overrides}

    def drop_pools():
        if app._pool is not None:
            app._pool.force_close_all()
        app._pool = None
        app.amqp._producer_pool = None
        kombu.pools.reset()  # closed pools must not stay registered for later tests' threads

    drop_pools()
    app.conf.update(overrides)
    try:
        yield
    finally:
        app.conf.update(previous)
        drop_pools()


def test_a_purchase_while_the_broker_is_down_commits_and_the_sweep_sends_the_receipt_later(caplog, mailoutbox):
    gifter = CustomerFactory()
    order = order_create(customer=gifter, offer=OfferFactory(), buy_as_gift=True)
    order_update(order=order, recipient_email="friend@example.com")

    with _broker_at("redis://127.0.0.1:1/0"):  # nothing listens there
        started = time.monotonic()
        result = order_pay(order=order, card_token="tok_visa")
        took = time.monotonic() - started

    assert took < 10
    # The receipt's task was published after commit, failed, and was only logged.
    assert any(r.exc_info and isinstance(r.exc_info[1], OperationalError) for r in caplog.records), caplog.text
    gift = Gift.objects.get(pk=result.gift.pk)
    assert gift.status == Gift.Status.SCHEDULED and gift.order.status == "paid"
    receipt = Email.objects.get(gift=gift, kind=Email.Kind.GIFT_RECEIPT)
    assert receipt.status == Email.Status.PENDING and receipt.to_email == gifter.email
    assert mailoutbox == []

    with app.connection_for_write() as broker:  # the broker is back for this process
        broker.ensure_connection(max_retries=1)
    assert send_due_emails() == 1
    assert [message.to for message in mailoutbox] == [[gifter.email]]
    receipt.refresh_from_db()
    assert receipt.status == Email.Status.SENT
    assert send_due_emails() == 0 and len(mailoutbox) == 1


@pytest.fixture
def private_redis(tmp_path):
    if not shutil.which("redis-server"):
        pytest.fail("redis-server is needed: apt-get install redis-server")
    server = RedisServer(tmp_path / "redis.log")
    server.start()
    yield server
    server.stop()


def test_a_purchase_over_the_api_while_redis_is_stopped_succeeds_and_its_emails_go_out_once_after_a_restart(
    private_redis, celery, provider, settings, caplog
):
    """CEL-3 with a real Redis (broker and cache): worker and beat connected to it, Redis stopped, a merchant
    API purchase answers success (the per-key rate limit fails open, the task publish is only logged) while a
    gift code typed meanwhile is refused (its attempt limiter fails closed), Redis starts again empty, and the
    worker and beat reconnect: the sweeps send the receipt and the delivery once."""
    celery.env.update(REDIS_URL=private_redis.url, CELERY_BROKER_URL=private_redis.url)
    celery.env.update(CELERY_RESULT_BACKEND=private_redis.url)
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": private_redis.url}
    }
    api, gifter, offer = MerchantClient(), gifter_with_card(), OfferFactory()
    other = GiftFactory(status=GiftStatus.UNCLAIMED)
    browser = Client(raise_request_exception=False)
    browser.force_login(GuestFactory(email=other.recipient_email))
    celery.start("worker")
    celery.start("beat")
    celery.wait_ready("worker")

    private_redis.stop()
    with _broker_at(private_redis.url), caplog.at_level(logging.WARNING):
        response = api.post("gifts", gift_params(gifter, offer))
    assert response.status_code == 200, response.content
    assert "rate limit not applied" in caplog.text
    gift = Gift.objects.get(gifter=gifter)
    keys = [f"gift:{gift.pk}:{kind}" for kind in ("receipt", "delivery", "delivered")]
    assert gift.status == GiftStatus.SCHEDULED and provider.requests == []
    typed = browser.post(reverse("gifts:redeem"), {"code": other.code, "action": "confirm"})
    assert typed.status_code >= 400
    other.refresh_from_db()
    assert other.status == GiftStatus.UNCLAIMED

    private_redis.start()
    assert wait_for(lambda: all_sent(keys) or not celery.alive(), timeout=60), "not sent after Redis restarted"
    assert celery.alive()
    assert celery.log("worker").count("Connected to redis://") >= 2  # it lost Redis and found it again
    time.sleep(2 * SWEEP_INTERVAL)
    assert Counter(key for key, _ in provider.accepted) == dict.fromkeys(keys, 1)
    assert_nothing_lost_or_stuck([gift], provider, once=False)


# --- TOOL-5: chaos ------------------------------------------------------------------------------------------

# How long an email may stay `sending` when its worker is lost: the stuck timeout and one sweep, plus slack for a
# busy machine (a worker restarting, a sweep queued behind another).
SENDING_AT_MOST = STUCK_AFTER + SWEEP_INTERVAL + 8


class SendingWatch:
    """Samples twice a second, in a thread with a database connection of its own, how long the oldest email has
    been `sending`; `longest` is the most it saw."""

    def __init__(self):
        self.longest = 0.0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc_info):
        self._done.set()
        self._thread.join(timeout=10)

    def _watch(self):
        sending = Email.objects.filter(status=Email.Status.SENDING)
        try:
            while not self._done.wait(0.5):
                oldest = sending.aggregate(oldest=Min("sending_started_at"))["oldest"]
                if oldest:
                    self.longest = max(self.longest, (timezone.now() - oldest).total_seconds())
        finally:
            connection.close()


class Chaos:
    """A worker and a beat on a Redis of the test's own, which a test may stop and start and whose queue it
    counts, with the time emails spend `sending` watched throughout."""

    def __init__(self, celery, provider, broker, watch):
        self.celery, self.provider, self.broker, self.watch = celery, provider, broker, watch

    def assert_survived(self, gifts, *, once=False):
        """TOOL-5's invariants: every email of `gifts` ends `sent`; the run is bounded (`assert_bounded`); nothing
        lost or stuck, with at most a logged duplicate per email (or, `once`, none at all)."""
        keys = delivery_keys(gifts)
        assert wait_for(lambda: all_sent(keys), timeout=STUCK_AFTER + 45), "not all sent"
        self.assert_bounded(keys)
        log = self.celery.log("worker")
        assert_nothing_lost_or_stuck(gifts, self.provider, **({"once": True} if once else {"log": log}))

    def assert_bounded(self, keys):
        """Once the emails with `keys` are done: with beat stopped the worker empties the queue (no task requeues
        itself forever), the provider got each email at most twice, and none stayed `sending` much longer than
        the stuck timeout."""
        stop_process(self.celery.processes["beat"])
        queue = redis.Redis.from_url(self.broker.url)
        # A killed worker's unacknowledged messages (prefetch 1, 2 processes) wait for the visibility timeout.
        assert wait_for(lambda: queue.llen("celery") == 0 and queue.hlen("unacked") <= 2, timeout=30), "still queued"
        requests = Counter(key for key, _ in self.provider.requests)
        assert set(requests) <= set(keys) and max(requests.values()) <= 2, "an email was sent more than twice"
        assert self.watch.longest < SENDING_AT_MOST


@pytest.fixture
def chaos(private_redis, celery, provider):
    celery.env.update(REDIS_URL=private_redis.url, CELERY_BROKER_URL=private_redis.url)
    celery.env.update(CELERY_RESULT_BACKEND=private_redis.url)
    with SendingWatch() as watch:
        yield Chaos(celery, provider, private_redis, watch)


@pytest.mark.parametrize("dedupe", [True, False], ids=["deduping-provider", "smtp-like-provider"])
def test_a_worker_whose_pool_processes_are_killed_mid_sweep_replaces_them_and_sends_each_email_at_most_twice(
    chaos, celery, provider, dedupe
):
    """The pool processes die (SIGKILL, as the OOM killer does) just after the provider accepted the 13th delivery
    email, others accepted around it but not yet recorded (SENT_GROUP, and the other senders' requests under way).
    The main process survives, fails the task with WorkerLostError, requeues its message (reject_on_worker_lost)
    and forks new processes; the stuck reset sends the accepted but unrecorded emails again, with a warning each
    (and the notices written but not yet sent, once)."""
    provider.dedupe = dedupe
    gifts = due_gifts(20)
    worker = celery.start("worker")
    provider.kill_on(f"gift:{gifts[12].pk}:delivery", worker, accepted=True, target="pool")
    celery.start("beat")

    assert provider.killed.wait(timeout=30), "the email never reached the provider"
    assert wait_for(lambda: "WorkerLostError" in celery.log("worker"), timeout=20)
    chaos.assert_survived(gifts)
    assert worker.poll() is None, "the main process died too"
    assert len(children(worker.pid)) == 2
    tasks = r"Task ((?:gifts\.deliver_due_gifts|emails\.send_emails)\[[-\w]+\]) received"
    received = Counter(re.findall(tasks, celery.log("worker")))
    assert 2 in received.values(), "the lost task was not delivered again"
    assert sum(count == 2 for count in Counter(key for key, _ in provider.accepted).values()) >= 1


def test_a_worker_killed_in_its_main_process_mid_sweep_takes_its_pool_along_and_after_a_restart_sends_again(
    chaos, celery, provider
):
    """Only the main process is SIGKILLed, just after the provider accepted the 25th email: its pool processes
    must not live on as orphans (no longer bound by the time limits their parent enforced), they die with it.
    After a restart the stuck reset sends the accepted but unrecorded emails again, each with a warning."""
    gifts = due_gifts(20)
    worker = celery.start("worker")
    celery.wait_ready("worker")
    pool = children(worker.pid)
    provider.kill_on(f"gift:{gifts[12].pk}:delivery", worker, accepted=True, target="main")
    celery.start("beat")

    assert provider.killed.wait(timeout=30), "the email never reached the provider"
    assert wait_for(lambda: worker.poll() is not None and not any(map(running, pool)), timeout=10), "orphans"
    celery.start("worker")
    chaos.assert_survived(gifts)


def test_a_warm_shutdown_mid_sweep_records_every_email_it_sent_and_after_a_restart_nothing_goes_out_twice(
    chaos, celery, provider
):
    """SIGTERM to the worker (a deploy) while its sweep sends 200 emails: it stops taking tasks, finishes the
    sweep within its time limits and exits. Nothing was cut mid-send, so even a provider that does not
    de-duplicate gets no email twice, now or after the restart."""
    gifts = due_gifts(100)
    worker = celery.start("worker")
    provider.on_request(60, lambda: worker.send_signal(signal.SIGTERM))
    celery.start("beat")

    assert wait_for(lambda: worker.poll() is not None, timeout=45), "the worker did not stop"
    assert worker.returncode == 0
    accepted = {key for key, _ in provider.accepted}
    assert len(accepted) >= 60
    assert set(Email.objects.filter(status=Email.Status.SENT).values_list("key", flat=True)) == accepted
    assert not Email.objects.filter(status=Email.Status.SENDING).exists()
    log = celery.log("worker")
    assert "WorkerLostError" not in log and "TimeLimitExceeded" not in log and "Time limit" not in log

    celery.start("worker")
    chaos.assert_survived(gifts, once=True)


def test_redis_restarted_mid_sweep_loses_nothing_worker_and_beat_reconnect_and_gifts_due_meanwhile_go_out_once(
    chaos, celery, provider, private_redis
):
    """Redis (broker) stops while the worker sends a sweep and starts again empty. The sweep, which needs only
    PostgreSQL and the provider, finishes; its acknowledgement is lost with the old connection, and so is its
    message, so nothing runs twice. Worker and beat reconnect and deliver the gifts that fell due meanwhile."""
    gifts = due_gifts(20)
    worker = celery.start("worker")
    celery.start("beat")
    provider.on_request(25, private_redis.stop)

    assert wait_for(lambda: "Connection to broker lost" in celery.log("worker"), timeout=30), "Redis did not stop"
    later = due_gifts(5)
    private_redis.start()
    assert wait_for(
        lambda: celery.log("worker").count("Connected to redis://") >= 2 or worker.poll() is not None, timeout=30
    ), "the worker did not reconnect"
    assert worker.poll() is None, "the worker exited when it lost Redis"
    chaos.assert_survived([*gifts, *later], once=True)


def test_an_email_that_kills_its_worker_every_time_fails_alone_after_its_attempts_instead_of_looping(
    chaos, celery, provider
):
    """A poison message: the pool dies whenever one delivery email reaches the provider. Celery requeues a lost
    task every time (reject_on_worker_lost), so what ends the loop is ours: the retry budget, which lost attempts
    spend too. After EMAIL_MAX_ATTEMPTS (2) the email is `failed`, with an ERROR, and the queue drains. The emails
    sent or claimed alongside it go out, at most twice: the stuck reset sends each in a task of its own."""
    celery.env.update(EMAIL_MAX_ATTEMPTS="2", EMAIL_STUCK_AFTER="6")
    celery.env.update(CELERY_TASK_SOFT_TIME_LIMIT="4", CELERY_TASK_TIME_LIMIT="5")
    gifts = due_gifts(3)
    poison = f"gift:{gifts[1].pk}:delivery"  # the second email of the sweep, after one accepted but unrecorded
    # One pool process, so killing the pool kills exactly the process that sent the poison, as a crash would.
    worker = celery.start("worker", concurrency=1)
    provider.kill_on(poison, worker, accepted=False, target="pool", every_time=True)
    celery.start("beat")

    unsettled = Email.objects.filter(status__in=[Email.Status.PENDING, Email.Status.SENDING])
    assert wait_for(lambda: Email.objects.exists() and not unsettled.exists(), timeout=45), "not settled"
    keys = delivery_keys(gifts)
    chaos.assert_bounded(keys)
    assert provider.requests_of(poison) == 2 and provider.accepted_of(poison) == 0
    log = celery.log("worker")
    statuses = dict(Email.objects.filter(key__in=keys).values_list("key", "status"))
    failed = sorted(key for key, status in statuses.items() if status == Email.Status.FAILED)
    assert poison in failed and set(statuses.values()) <= {Email.Status.SENT, Email.Status.FAILED}
    for key in failed:
        assert f"ERROR emails.services email {key} was lost in sending on its last attempt; failed for good" in log
    assert failed == [poison], "emails claimed with the poison one failed with it"
    assert_nothing_lost_or_stuck([gifts[0], gifts[2]], provider, log=log)
    # Its gifter is not told the gift went out: the provider never accepted it.
    never_sent = f"gift:{gifts[1].pk}:delivered"
    assert statuses == {**dict.fromkeys(set(keys) - {never_sent}, Email.Status.SENT), poison: Email.Status.FAILED}
