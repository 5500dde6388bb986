"""HTTP load on loopback: gunicorn (4 workers) serving a mix of verify, redeem, order and merchant gift requests.

    .venv/bin/python bench/load.py                        # 100 users, 60 s mix, then 15 s of each solo phase
    .venv/bin/python bench/load.py --users 50 --duration 30 --solo 10

Starts `gunicorn giftshop.wsgi --workers 4` on 127.0.0.1 (a free port) with the bench environment (DEBUG off, the
bench database and Redis db), seeds customers with JWTs, an offer, delivered gifts and merchant gifters with a
sandbox card, then runs locust headless (`bench/locustfile.py`, FastHttpUser, one locust process per phase), only
to 127.0.0.1:

1. the mix (--duration s): storefront verify (GET /mediastore/gifts/verification/{code}), redeem (POST
   /mediastore/gifts/redeem/{code}, each code once, each by its own customer), order creation (POST
   /mediastore/orders) and merchant gift creation (POST /api/v2/gifts, API key, sandbox card, an idempotency key
   per gift; one request in ten repeats an earlier key and body, which must be replayed);
2. verify alone and the baseline alone (--solo s each, same users): the baseline is GET /mediastore/v2/offers/{id},
   an existing public DRF endpoint reading one row (no authentication, no rate limit): the stack's floor.

Per operation it prints locust's req/s and p50/p95/p99 latency and the count of 5xx and of other unexpected
answers, then verify's solo throughput as a share of the baseline's, and checks the database: each gift redeemed at
most once, subscriptions created == gifts claimed, one idempotency row per key used, one merchant gift per key.
The code-attempt limiter counts per client address and everything here comes from 127.0.0.1, so the run sets
GIFT_CODE_ATTEMPT_LIMIT (and the merchant API's per-key MERCHANT_API_RATE_LIMIT) to 10,000,000.
Targets: no error at all; verify at least 50 % of the baseline's throughput.
"""

import argparse
import base64
import http.client
import json
import math
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import common

WORKERS = 4
UNLIMITED = "10000000"
TARGET_SHARE = 0.5
MIX = {"verify": 4, "redeem": 2, "order": 2, "merchant": 2}  # weights of the mixed phase
LOCUSTFILE = Path(__file__).with_name("locustfile.py")
STOP_TIMEOUT = 60  # s a user may take, once the phase's time is up, to finish the request it is waiting on


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_gunicorn(port, env, log_path):
    command = ["gunicorn", "giftshop.wsgi", "--bind", f"127.0.0.1:{port}", "--workers", str(WORKERS)]
    return common.start_process(command, env=env, log_path=log_path)


def healthy(port):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("GET", "/healthz", headers={"Host": "localhost"})
        return connection.getresponse().status == 200
    finally:
        connection.close()


def wait_until_up(port, process, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {process.returncode}")
        try:
            if healthy(port):
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
    from gifts.models import Gift
    from gifts.services import deliver_due_gifts
    from giftshop.mediastore import issue_jwt
    from giftshop.services import api_key_create

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
        "redeem": [
            (gift.code, gift.pk, issue_jwt(customer)) for gift, customer in zip(gifts[:codes], redeemers, strict=True)
        ],
        "verify": [gift.code for gift in gifts[codes:]],
        "shoppers": [issue_jwt(c) for c in shoppers],
        "redeemer_ids": [c.pk for c in redeemers],
        "gifter_ids": [g.pk for g in gifters],
        "basic": "Basic " + base64.b64encode(f"{raw_key}:".encode()).decode(),
    }


# --- the load ------------------------------------------------------------------------------------------------


def run_phase(name, weights, *, port, data_path, users, seconds, tmp):
    """One headless locust run of `weights`' operations (bench/locustfile.py): locust's stats entry per operation
    (its JSON file, written at exit) and what its users recorded (see the locustfile)."""
    stats, results = tmp / name, tmp / f"{name}-results.json"
    command = [
        sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "--host", f"http://127.0.0.1:{port}",
        "--users", str(users), "--spawn-rate", str(users), "--run-time", f"{seconds}s",
        "--stop-timeout", str(STOP_TIMEOUT), "--json-file", str(stats), "--only-summary", "--loglevel", "WARNING",
    ]  # fmt: skip
    env = {
        **os.environ,
        "BENCH_LOAD_DATA": str(data_path),
        "BENCH_LOAD_WEIGHTS": json.dumps(weights),
        "BENCH_LOAD_RESULTS": str(results),
    }
    log_path = tmp / f"{name}.log"
    with log_path.open("w") as log:
        done = subprocess.run(
            command, cwd=common.ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, timeout=seconds + STOP_TIMEOUT + 60
        )
    # locust exits with 1 when any request failed, which the figures show; anything else is locust's own trouble.
    if done.returncode not in (0, 1) or not results.exists():
        raise RuntimeError(f"locust ({name}) exited with {done.returncode}:\n{log_path.read_text()[-3000:]}")
    phase = json.loads(results.read_text())
    phase["statuses"] = {op: Counter({int(s): n for s, n in c.items()}) for op, c in phase["statuses"].items()}
    phase["entries"] = {e["name"]: e for e in json.loads(Path(f"{stats}.json").read_text())}
    return phase


def percentile(histogram, p):
    """Nearest rank over locust's histogram (ms, rounded to 2 significant digits from 100 ms): the smallest time
    with at least p% of the requests at or below it."""
    rank, seen = max(math.ceil(p / 100 * sum(histogram.values())), 1), 0
    for ms in sorted(histogram):
        seen += histogram[ms]
        if seen >= rank:
            return ms


def report(title, phase):
    """Prints the phase's figures; returns req/s per operation. The phase lasts from its first request's start to
    its last one's end, as locust timed them (spawning included, as all users start within the first second)."""
    entries = phase["entries"]
    seconds = max(e["last_request_timestamp"] for e in entries.values()) - min(
        e["start_time"] for e in entries.values()
    )
    total = sum(e["num_requests"] for e in entries.values())
    print(f"\n{title}: {total:,} requests in {seconds:.1f} s ({total / seconds:.0f} req/s)")
    columns = ("requests", "req/s", "p50 ms", "p95 ms", "p99 ms")
    print(
        f"  {'operation':<10} {columns[0]:>8} " + " ".join(f"{c:>7}" for c in columns[1:]) + f" {'5xx':>5} {'other':>5}"
    )
    rates = {}
    for operation in sorted(entries):
        entry, statuses = entries[operation], phase["statuses"][operation]
        server_errors = sum(n for s, n in statuses.items() if s >= 500)
        other = sum(statuses.values()) - statuses[200] - server_errors  # status 0: no answer at all
        rates[operation] = entry["num_requests"] / seconds
        histogram = {float(ms): n for ms, n in entry["response_times"].items()}
        p50, p95, p99 = (percentile(histogram, p) for p in (50, 95, 99))
        print(
            f"  {operation:<10} {entry['num_requests']:>8,} {rates[operation]:>7.1f} {p50:>7.0f} {p95:>7.0f}"
            f" {p99:>7.0f} {server_errors:>5} {other:>5}"
        )
    for operation, status, body in phase["unexpected"]:
        print(f"  unexpected: {operation} {status} {body!r}")
    return rates


def errors_of(*phases):
    return sum(n for phase in phases for counter in phase["statuses"].values() for s, n in counter.items() if s != 200)


# --- the invariants ------------------------------------------------------------------------------------------


def check(data, mix):
    from django.db.models import Count

    from accounts.models import Subscription
    from billing.models import Order
    from gifts.models import Gift, GiftStatus, GiftTimeline
    from giftshop.models import IdempotencyRecord

    problems = []
    redeemed, keys = mix["redeemed"], mix["keys"]
    claimed = Gift.objects.filter(status=GiftStatus.CLAIMED)
    if claimed.count() != len(redeemed) or set(claimed.values_list("pk", flat=True)) != set(redeemed):
        problems.append(f"{claimed.count()} gifts claimed, {len(redeemed)} redeems answered 200")
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
    if not subscriptions == linked == len(redeemed):
        problems.append(
            f"subscriptions created {subscriptions}, distinct ones on claimed gifts {linked}, gifts claimed"
            f" {len(redeemed)}"
        )
    records = IdempotencyRecord.objects.all()
    duplicated = records.values("api_key_id", "key").annotate(n=Count("pk")).filter(n__gt=1).count()
    if duplicated or records.count() != len(keys) or set(records.values_list("key", flat=True)) != set(keys):
        problems.append(
            f"idempotency rows {records.count()} ({duplicated} keys with several) for {len(keys)} keys used"
        )
    merchant_gifts = Gift.objects.filter(source=Gift.Source.MERCHANT)
    if merchant_gifts.count() != len(keys):
        problems.append(f"{merchant_gifts.count()} merchant gifts for {len(keys)} idempotency keys")
    if set(mix["replays"]) - {"replayed"}:
        problems.append(f"replays: {mix['replays']}")
    if Order.objects.count() != mix["orders"]:
        problems.append(f"{Order.objects.count()} orders, {mix['orders']} created with 200")
    return problems


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100, help="concurrent locust users (default 100)")
    parser.add_argument("--duration", type=int, default=60, help="seconds of the mixed load (default 60)")
    parser.add_argument("--solo", type=int, default=15, help="seconds of verify alone and baseline alone")
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
        data_path = tmp / "data.json"
        data_path.write_text(json.dumps(data))
        print(
            f"seeded {args.codes:,} gifts to redeem, {len(data['verify'])} to verify, 200 shoppers, 50 merchant"
            f" gifters in {time.perf_counter() - started:.1f} s"
        )
        port = free_port()
        log_path = tmp / "gunicorn.log"
        gunicorn = start_gunicorn(port, common.environment(GIFTSHOP_DATA_DIR=str(tmp), **limits), log_path)
        try:
            wait_until_up(port, gunicorn)
            print(
                f"gunicorn: {WORKERS} workers on 127.0.0.1:{port}; {args.users} locust users; limits raised: {limits}"
            )
            print(f"load average before the phases: {' '.join(f'{n:.2f}' for n in os.getloadavg())}")
            phase = {"port": port, "data_path": data_path, "tmp": tmp}
            # Warm-up (not counted): every worker imports and connects before the figures start.
            run_phase("warmup", {"baseline": 1, "verify": 1}, users=min(args.users, 16), seconds=3, **phase)
            mix = run_phase("mix", MIX, users=args.users, seconds=args.duration, **phase)
            verify = run_phase("verify", {"verify": 1}, users=args.users, seconds=args.solo, **phase)
            baseline = run_phase("baseline", {"baseline": 1}, users=args.users, seconds=args.solo, **phase)
            print(f"load average after the phases: {' '.join(f'{n:.2f}' for n in os.getloadavg())}")
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
    print(f"merchant replays of an earlier idempotency key: {mix['replays'] or 'none'}")
    print(f"gunicorn log: {tracebacks} tracebacks")
    if tracebacks:
        print(log[-3000:])
    problems = check(data, mix)
    for problem in problems:
        print(f"FAILED CHECK: {problem}")
    if not problems:
        print(
            f"checked: {len(mix['redeemed']):,} gifts claimed, each once, by the redeems answered 200; as many new"
            f" subscriptions; {len(mix['keys']):,} idempotency rows, one per key, one merchant gift per key;"
            f" {mix['orders']:,} orders"
        )
    return 1 if problems or errors or tracebacks or share < TARGET_SHARE else 0


if __name__ == "__main__":
    sys.exit(main())
