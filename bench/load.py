"""HTTP load on loopback: gunicorn (4 workers) serving a mix of verify, redeem, order and merchant gift requests.

    .venv/bin/python bench/load.py                        # 100 users, 60 s mix, then 15 s of each solo phase
    .venv/bin/python bench/load.py --users 50 --duration 30 --solo 10

Starts `gunicorn giftshop.wsgi --workers 4` on 127.0.0.1 (a free port) with the bench environment (DEBUG off, the
bench database and Redis db), seeds customers with JWTs, an offer, delivered gifts and merchant gifters with a
sandbox card, then runs, from threads of this process, only to 127.0.0.1:

1. the mix (--duration s): storefront verify (GET /mediastore/gifts/verification/{code}), redeem (POST
   /mediastore/gifts/redeem/{code}, each code once, each by its own customer), order creation (POST
   /mediastore/orders) and merchant gift creation (POST /api/v2/gifts, API key, sandbox card, an idempotency key
   per gift; one request in ten repeats an earlier key and body, which must be replayed);
2. verify alone and the baseline alone (--solo s each, same users): the baseline is GET /mediastore/v2/offers/{id},
   an existing public DRF endpoint reading one row (no authentication, no rate limit): the stack's floor.

Per operation it prints req/s, p50/p95/p99 latency and the count of 5xx and of other unexpected answers, then
verify's solo throughput as a share of the baseline's, and checks the database: each gift redeemed at most once,
subscriptions created == gifts claimed, one idempotency row per key used, one merchant gift per key.
The code-attempt limiter counts per client address and everything here comes from 127.0.0.1, so the run sets
GIFT_CODE_ATTEMPT_LIMIT (and the merchant API's per-key MERCHANT_API_RATE_LIMIT) to 10,000,000.
Targets: no error at all; verify at least 50 % of the baseline's throughput.
"""

import argparse
import base64
import http.client
import itertools
import json
import math
import random
import signal
import socket
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict, deque
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlencode

import common

WORKERS = 4
UNLIMITED = "10000000"
TARGET_SHARE = 0.5
MIX = {"verify": 4, "redeem": 2, "order": 2, "merchant": 2}  # weights of the mixed phase


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_gunicorn(port, env, log_path):
    command = ["gunicorn", "giftshop.wsgi", "--bind", f"127.0.0.1:{port}", "--workers", str(WORKERS)]
    return common.start_process(command, env=env, log_path=log_path)


def request(port, method, path, *, headers=None, body=None):
    """One request on a new connection (gunicorn's sync workers close it after each answer): (status, headers,
    body)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        connection.request(method, path, body=body, headers={"Host": "localhost", **(headers or {})})
        response = connection.getresponse()
        return response.status, response, response.read()
    finally:
        connection.close()


def wait_until_up(port, process, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {process.returncode}")
        try:
            if request(port, "GET", "/healthz")[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"gunicorn did not answer /healthz within {timeout} s")


# --- seeding -------------------------------------------------------------------------------------------------


def seed(codes):
    """An offer, `codes` delivered gifts to redeem (one customer each), 200 delivered gifts to verify, 200
    storefront customers, 50 merchant gifters with a sandbox card and one API key."""
    from django.utils import timezone

    from accounts.models import Customer, PaymentMethod
    from accounts.services import api_key_create
    from gifts.models import Gift
    from gifts.services import deliver_due_gifts
    from giftshop.mediastore import issue_jwt

    due = timezone.now() - timedelta(minutes=5)
    ids = common.seed_gifts([due + timedelta(milliseconds=n) for n in range(codes + 200)])
    deliver_due_gifts(send=False)  # unclaimed, as delivery leaves them (their emails are not needed here)
    gifts = list(Gift.objects.filter(pk__in=ids).select_related("offer").order_by("pk"))
    offer = gifts[0].offer
    redeemers = Customer.objects.bulk_create(
        [Customer(email=f"redeemer{n}@example.com", password=common.UNUSABLE) for n in range(codes)]
    )
    shoppers = Customer.objects.bulk_create(
        [Customer(email=f"shopper{n}@example.com", password=common.UNUSABLE) for n in range(200)]
    )
    gifters = Customer.objects.bulk_create(
        [Customer(email=f"merchant-gifter{n}@example.com", password=common.UNUSABLE) for n in range(50)]
    )
    PaymentMethod.objects.bulk_create(
        [
            PaymentMethod(
                customer=g,
                token=f"tok_sandbox_success_bench{g.pk}",
                brand="Visa",
                last4="4242",
                exp_month=12,
                exp_year=2030,
                is_default=True,
            )
            for g in gifters
        ]
    )
    raw_key = api_key_create(name="bench")[1]
    return {
        "offer_id": offer.long_id,
        "redeem": deque(
            (gift.code, gift.pk, issue_jwt(customer)) for gift, customer in zip(gifts[:codes], redeemers, strict=True)
        ),
        "verify": [gift.code for gift in gifts[codes:]],
        "shoppers": [issue_jwt(c) for c in shoppers],
        "redeemer_ids": [c.pk for c in redeemers],
        "gifter_ids": [g.pk for g in gifters],
        "basic": "Basic " + base64.b64encode(f"{raw_key}:".encode()).decode(),
    }


# --- the load ------------------------------------------------------------------------------------------------


class Run:
    """What one phase's users share: the deadline, the request budget, the results."""

    def __init__(self, port, data, weights, *, seconds, max_requests):
        self.port, self.data, self.weights = port, data, weights
        self.deadline = time.monotonic() + seconds
        self.budget = itertools.count()
        self.max_requests = max_requests
        self.lock = threading.Lock()
        self.latencies = defaultdict(list)
        self.statuses = defaultdict(Counter)
        self.unexpected = []  # (operation, status, start of the body)
        self.redeemed = []  # (gift id, customer JWT) answered 200
        self.keys = {}  # idempotency key -> gift id of its first answer
        self.replays = Counter()  # "replayed" / "not replayed" / "other gift"
        self.orders = 0
        self.started = self.ended = None

    def record(self, operation, status, seconds, body, expected=200):
        with self.lock:
            self.latencies[operation].append(seconds)
            self.statuses[operation][status] += 1
            if status != expected and len(self.unexpected) < 20:
                self.unexpected.append((operation, status, body[:200]))

    def user(self, seed):
        rng = random.Random(seed)
        operations, weights = list(self.weights), list(self.weights.values())
        sent = []  # this user's merchant (key, body, gift id), for replays
        while time.monotonic() < self.deadline and next(self.budget) < self.max_requests:
            operation = rng.choices(operations, weights)[0]
            try:
                getattr(self, operation)(rng, sent)
            except OSError as error:
                self.record(operation, "connection error", 0.0, repr(error).encode())

    def timed(self, operation, method, path, *, headers=None, body=None):
        started = time.perf_counter()
        status, response, content = request(self.port, method, path, headers=headers, body=body)
        self.record(operation, status, time.perf_counter() - started, content)
        return status, response, content

    def baseline(self, rng, sent):
        self.timed("baseline", "GET", f"/mediastore/v2/offers/{self.data['offer_id']}")

    def verify(self, rng, sent):
        code, token = rng.choice(self.data["verify"]), rng.choice(self.data["shoppers"])
        self.timed(
            "verify", "GET", f"/mediastore/gifts/verification/{code}", headers={"Authorization": f"Bearer {token}"}
        )

    def redeem(self, rng, sent):
        try:
            code, gift_id, token = self.data["redeem"].popleft()
        except IndexError:
            return self.verify(rng, sent)  # every code is spent: the mix goes on without redeems
        status, _, _ = self.timed(
            "redeem", "POST", f"/mediastore/gifts/redeem/{code}", headers={"Authorization": f"Bearer {token}"}
        )
        if status == 200:
            with self.lock:
                self.redeemed.append(gift_id)

    def order(self, rng, sent):
        token = rng.choice(self.data["shoppers"])
        body = json.dumps({"offerId": self.data["offer_id"], "buyAsAGift": True})
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        status, _, _ = self.timed("order", "POST", "/mediastore/orders", headers=headers, body=body)
        if status == 200:
            with self.lock:
                self.orders += 1

    def merchant(self, rng, sent):
        replay = sent and rng.random() < 0.1
        if replay:
            key, body, gift_id = rng.choice(sent)
        else:
            key = f"bench-{rng.getrandbits(64):016x}"
            body = urlencode(
                {
                    "gifter[customer_id]": rng.choice(self.data["gifter_ids"]),
                    "gift_receiver[email]": f"friend-{key}@example.com",
                    "subscription[plan_id]": self.data["offer_id"],
                }
            )
        headers = {
            "Authorization": self.data["basic"],
            "Content-Type": "application/x-www-form-urlencoded",
            "chargebee-idempotency-key": key,
        }
        status, response, content = self.timed("merchant", "POST", "/api/v2/gifts", headers=headers, body=body)
        if status != 200:
            return
        answered = json.loads(content)["gift"]["id"]
        with self.lock:
            if not replay:
                self.keys[key] = answered
                sent.append((key, body, answered))
            elif response.getheader("chargebee-idempotency-replayed") != "true":
                self.replays["not marked replayed"] += 1
            elif answered != gift_id:
                self.replays["another gift"] += 1
            else:
                self.replays["replayed"] += 1

    def go(self, users):
        threads = [threading.Thread(target=self.user, args=(n,), daemon=True) for n in range(users)]
        self.started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        self.ended = time.perf_counter()
        return self


def percentile(ordered, p):
    """Nearest rank: the smallest value with at least p% of the values at or below it."""
    return ordered[max(math.ceil(p / 100 * len(ordered)) - 1, 0)]


def report(title, run):
    seconds = run.ended - run.started
    total = sum(len(v) for v in run.latencies.values())
    print(f"\n{title}: {total:,} requests in {seconds:.1f} s ({total / seconds:.0f} req/s)")
    columns = ("requests", "req/s", "p50 ms", "p95 ms", "p99 ms")
    print(
        f"  {'operation':<10} {columns[0]:>8} " + " ".join(f"{c:>7}" for c in columns[1:]) + f" {'5xx':>5} {'other':>5}"
    )
    rates = {}
    for operation in sorted(run.latencies):
        ordered = sorted(run.latencies[operation])
        statuses = run.statuses[operation]
        server_errors = sum(n for s, n in statuses.items() if isinstance(s, int) and s >= 500)
        other = sum(statuses.values()) - statuses[200] - server_errors
        rates[operation] = len(ordered) / seconds
        p50, p95, p99 = (1000 * percentile(ordered, p) for p in (50, 95, 99))
        print(
            f"  {operation:<10} {len(ordered):>8,} {rates[operation]:>7.1f} {p50:>7.0f} {p95:>7.0f} {p99:>7.0f}"
            f" {server_errors:>5} {other:>5}"
        )
    for operation, status, body in run.unexpected:
        print(f"  unexpected: {operation} {status} {body!r}")
    return rates


def errors_of(*runs):
    return sum(n for run in runs for counter in run.statuses.values() for s, n in counter.items() if s != 200)


# --- the invariants ------------------------------------------------------------------------------------------


def check(data, mix):
    from django.db.models import Count

    from accounts.models import IdempotencyRecord, Subscription
    from billing.models import Order
    from gifts.models import Gift, GiftStatus, GiftTimeline

    problems = []
    claimed = Gift.objects.filter(status=GiftStatus.CLAIMED)
    if claimed.count() != len(mix.redeemed) or set(claimed.values_list("pk", flat=True)) != set(mix.redeemed):
        problems.append(f"{claimed.count()} gifts claimed, {len(mix.redeemed)} redeems answered 200")
    twice = (
        GiftTimeline.objects.filter(status=GiftStatus.CLAIMED)
        .values("gift_id")
        .annotate(n=Count("pk"))
        .filter(n__gt=1)
        .count()
    )
    if twice:
        problems.append(f"{twice} gifts redeemed more than once (timeline)")
    subscriptions = Subscription.objects.filter(customer_id__in=data["redeemer_ids"]).count()
    linked = claimed.values("subscription_id").distinct().count()
    if not subscriptions == linked == len(mix.redeemed):
        problems.append(
            f"subscriptions created {subscriptions}, distinct ones on claimed gifts {linked}, gifts claimed"
            f" {len(mix.redeemed)}"
        )
    records = IdempotencyRecord.objects.all()
    duplicated = records.values("api_key_id", "key").annotate(n=Count("pk")).filter(n__gt=1).count()
    keys = set(records.values_list("key", flat=True))
    if duplicated or records.count() != len(mix.keys) or keys != set(mix.keys):
        problems.append(
            f"idempotency rows {records.count()} ({duplicated} keys with several) for {len(mix.keys)} keys used"
        )
    merchant_gifts = Gift.objects.filter(source=Gift.Source.MERCHANT)
    if merchant_gifts.count() != len(mix.keys):
        problems.append(f"{merchant_gifts.count()} merchant gifts for {len(mix.keys)} idempotency keys")
    if set(mix.replays) - {"replayed"}:
        problems.append(f"replays: {dict(mix.replays)}")
    if Order.objects.count() != mix.orders:
        problems.append(f"{Order.objects.count()} orders, {mix.orders} created with 200")
    return problems


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100, help="concurrent users (threads; default 100)")
    parser.add_argument("--duration", type=float, default=60, help="seconds of the mixed load (default 60)")
    parser.add_argument("--solo", type=float, default=15, help="seconds of verify alone and baseline alone")
    parser.add_argument("--max-requests", type=int, default=200_000, help="request budget per phase")
    parser.add_argument("--codes", type=int, default=6000, help="gifts to redeem (each code once; default 6000)")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    limits = {"GIFT_CODE_ATTEMPT_LIMIT": UNLIMITED, "MERCHANT_API_RATE_LIMIT": UNLIMITED}
    with tempfile.TemporaryDirectory(prefix="giftshop-load-") as tmp:
        tmp = Path(tmp)
        common.setup(GIFTSHOP_DATA_DIR=str(tmp), **limits)
        import redis
        from django.db import connections

        redis.Redis.from_url(common.REDIS_URL).flushdb()  # the bench's own db: no counters or tasks from a past run
        started = time.perf_counter()
        data = seed(args.codes)
        connections.close_all()
        print(
            f"seeded {args.codes:,} gifts to redeem, {len(data['verify'])} to verify, 200 shoppers, 50 merchant"
            f" gifters in {time.perf_counter() - started:.1f} s"
        )
        port = free_port()
        log_path = tmp / "gunicorn.log"
        gunicorn = start_gunicorn(port, common.environment(GIFTSHOP_DATA_DIR=str(tmp), **limits), log_path)
        try:
            wait_until_up(port, gunicorn)
            print(f"gunicorn: {WORKERS} workers on 127.0.0.1:{port}; {args.users} users; limits raised: {limits}")
            # Warm-up (not counted): every worker imports and connects before the clock starts.
            Run(port, data, {"baseline": 1, "verify": 1}, seconds=3, max_requests=400).go(min(args.users, 16))
            mix = Run(port, data, MIX, seconds=args.duration, max_requests=args.max_requests).go(args.users)
            verify = Run(port, data, {"verify": 1}, seconds=args.solo, max_requests=args.max_requests).go(args.users)
            baseline = Run(port, data, {"baseline": 1}, seconds=args.solo, max_requests=args.max_requests)
            baseline.go(args.users)
        finally:
            common.stop(gunicorn)
            log = log_path.read_text()
        tracebacks = log.count("Traceback")

    report(f"mix ({', '.join(f'{k} {v}' for k, v in MIX.items())} by weight)", mix)
    verify_rate = report("verify alone", verify)["verify"]
    baseline_rate = report("baseline alone: GET /mediastore/v2/offers/{id}", baseline)["baseline"]
    share = verify_rate / baseline_rate
    errors = errors_of(mix, verify, baseline)
    print(
        f"\nverify / baseline throughput: {share:.0%}  (target >= {TARGET_SHARE:.0%}: "
        f"{'ok' if share >= TARGET_SHARE else 'MISSED'})"
    )
    print(f"errors (any answer but 200, or no answer): {errors}  (target 0: {'ok' if not errors else 'MISSED'})")
    print(f"merchant replays of an earlier idempotency key: {dict(mix.replays) or 'none'}")
    print(f"gunicorn log: {tracebacks} tracebacks")
    if tracebacks:
        print(log[-3000:])
    problems = check(data, mix)
    for problem in problems:
        print(f"FAILED CHECK: {problem}")
    if not problems:
        print(
            f"checked: {len(mix.redeemed):,} gifts claimed, each once, by the redeems answered 200; as many new"
            f" subscriptions; {len(mix.keys):,} idempotency rows, one per key, one merchant gift per key;"
            f" {mix.orders:,} orders"
        )
    return 1 if problems or errors or tracebacks or share < TARGET_SHARE else 0


if __name__ == "__main__":
    sys.exit(main())
