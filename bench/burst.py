"""A burst of due gifts through a provider that takes its time: real worker and beat processes, a fake Postmark.

    .venv/bin/python bench/burst.py                                  # 20,000 gifts due at once, 150 ms provider
    .venv/bin/python bench/burst.py --gifts 2000 --latency 0.3
    .venv/bin/python bench/burst.py --gifts 5000 --rate-limit 400    # the provider answers 429 above 400 requests/s
    .venv/bin/python bench/burst.py --gifts 5000 --errors 0.01       # 1 % of requests answered 503
    .venv/bin/python bench/burst.py --gifts 3000 --spread 120        # due over two minutes (steady state)
    .venv/bin/python bench/burst.py --processes 1                    # one worker process instead of two
    .venv/bin/python bench/burst.py --batch 50                       # Postmark's batch API, 50 messages a request

Starts a fake Postmark on loopback in a process of its own (its send API `/email` and batch API `/email/batch`, as
anymail's Postmark backend calls them: each answer after `--latency` seconds; above `--rate-limit` requests a second
(a bucket of that many tokens, refilled as many a second) it answers 429 with Retry-After; `--errors` of the
requests answered 503), then `celery worker --concurrency N` and `celery beat` as an operator would (the product's
own settings: EMAIL_SEND_CONCURRENCY, EMAIL_RATE_LIMIT set to the provider's limit, DELIVERY_INTERVAL), seeds the
gifts to fall due a few seconds later (all at once, or evenly over `--spread` seconds), and waits until both emails
of every gift (the recipient's delivery, the gifter's "delivered" notice) are accepted.

Prints gifts/s end to end (from the moment the first gift fell due to the last email accepted), the lateness of
the recipient's email (sent_at - scheduled_at) p50/p99/max, the provider's requests in flight at most, its 429 and
503 answers, the worker processes' peak RSS, and checks: every gift delivered once, every email row `sent`, no
email accepted twice by the provider (it counts the outbox key of every message), and the accepted requests never
over the rate limit (replayed through the provider's own bucket)."""

import argparse
import json
import multiprocessing
import random
import signal
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import common

TARGET_RATE, TARGET_P99_STEADY = 300, 5.0
SERVER_TOKEN = "bench-postmark-token"  # noqa: S105 - the fake provider's, on loopback


# --- the fake provider (its own process) ---------------------------------------------------------------------


class Provider:
    def __init__(self, latency, rate_limit, errors):
        self.latency, self.rate_limit, self.errors = latency, rate_limit, errors
        self.lock = threading.Lock()
        self.in_flight = self.peak = 0
        self.accepted = Counter()  # outbox key -> times accepted
        self.accepted_at = []  # arrival time of every accepted request
        self.throttled = self.failed = self.requests = 0
        self.tokens, self.refilled = float(rate_limit or 0), time.monotonic()
        self.random = random.Random(7)

    def take_token(self, now):
        """The provider's limit: a bucket of `rate_limit` tokens, `rate_limit` more a second."""
        if not self.rate_limit:
            return True
        self.tokens = min(self.rate_limit, self.tokens + (now - self.refilled) * self.rate_limit)
        self.refilled = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True

    def handle(self, messages):
        """(status, body, headers) for a request carrying `messages` (one, or a batch)."""
        arrived = time.monotonic()
        with self.lock:
            self.requests += 1
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
            allowed = self.take_token(arrived)
            fail = self.errors and self.random.random() < self.errors
        try:
            time.sleep(self.latency)
            with self.lock:
                if not allowed:
                    self.throttled += 1
                    return 429, {"ErrorCode": 429, "Message": "Rate limit exceeded"}, {"Retry-After": "1"}
                if fail:
                    self.failed += 1
                    return 503, {"ErrorCode": 0, "Message": "Service Unavailable"}, {}
                self.accepted_at.append(arrived)
                answers = []
                for message in messages:
                    self.accepted[message.get("Metadata", {}).get("email_key", "")] += 1
                    message_id = f"m-{self.requests}-{len(answers)}"
                    answers.append({"To": message["To"], "MessageID": message_id, "ErrorCode": 0, "Message": "OK"})
            return 200, answers, {}
        finally:
            with self.lock:
                self.in_flight -= 1

    def stats(self):
        with self.lock:
            return {
                "requests": self.requests,
                "peak_in_flight": self.peak,
                "throttled": self.throttled,
                "failed": self.failed,
                "accepted": dict(self.accepted),
                "accepted_at": list(self.accepted_at),
            }


def serve(port_queue, latency, rate_limit, errors):
    provider = Provider(latency, rate_limit, errors)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as a real provider's API

        def do_GET(self):
            self.answer(200, provider.stats(), {})

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            if self.headers.get("X-Postmark-Server-Token") != SERVER_TOKEN:
                return self.answer(401, {"ErrorCode": 10, "Message": "Bad or missing Server API token."}, {})
            batch = self.path.rstrip("/") == "/email/batch"
            status, answers, headers = provider.handle(body if batch else [body])
            if status == 200 and not batch:
                answers = answers[0]
            return self.answer(status, answers, headers)

        def answer(self, status, body, headers):
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.request_queue_size = 512
    port_queue.put(server.server_address[1])
    server.serve_forever()


def provider_stats(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/stats", timeout=30) as answer:
        return json.load(answer)


# --- the run -----------------------------------------------------------------------------------------------


def rss_mb(pid):
    """Resident memory of `pid` and its children (a prefork worker's pool), in MB."""
    total = 0
    for process in [pid, *children(pid)]:
        try:
            for line in Path(f"/proc/{process}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total = max(total, int(line.split()[1]) // 1024)
        except FileNotFoundError:
            pass
    return total


def children(pid):
    try:
        return [int(c) for tasks in Path(f"/proc/{pid}/task").glob("*/children") for c in tasks.read_text().split()]
    except FileNotFoundError:
        return []


def within_limit(arrivals, limit):
    """Replays the accepted requests' arrival times through a bucket of `limit` tokens refilled `limit` a second:
    whether it never ran dry."""
    if not limit:
        return True
    tokens, last = float(limit), None
    for arrived in sorted(arrivals):
        if last is not None:
            tokens = min(limit, tokens + (arrived - last) * limit)
        last = arrived
        tokens -= 1
        if tokens < -1e-6:
            return False
    return True


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gifts", type=int, default=20_000)
    parser.add_argument("--spread", type=float, default=0, help="seconds their due times span (0: all at once)")
    parser.add_argument("--latency", type=float, default=0.15, help="the provider's answer time, seconds")
    parser.add_argument("--rate-limit", type=float, default=0, help="the provider's requests/s (0: none)")
    parser.add_argument("--errors", type=float, default=0, help="share of requests answered 503")
    parser.add_argument("--processes", type=int, default=2, help="worker processes (celery --concurrency)")
    parser.add_argument(
        "--send-concurrency", type=int, default=None, help="EMAIL_SEND_CONCURRENCY (default: the product's)"
    )
    parser.add_argument(
        "--batch", type=int, default=0, help="send through Postmark's batch API, this many messages a request (0: one)"
    )
    parser.add_argument("--timeout", type=float, default=900)
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    ports = multiprocessing.Queue()
    server = multiprocessing.Process(
        target=serve, args=(ports, args.latency, args.rate_limit, args.errors), daemon=True
    )
    server.start()
    port = ports.get(timeout=10)

    with tempfile.TemporaryDirectory(prefix="giftshop-burst-") as tmp:
        tmp = Path(tmp)
        extra = {
            "GIFTSHOP_DATA_DIR": str(tmp),
            "EMAIL_BACKEND": "anymail.backends.postmark.EmailBackend",
            "ANYMAIL_POSTMARK_API_URL": f"http://127.0.0.1:{port}/",
            "ANYMAIL_POSTMARK_SERVER_TOKEN": SERVER_TOKEN,
            "EMAIL_RATE_LIMIT": str(args.rate_limit),
            "EMAIL_BACKOFF_BASE": "2",  # a 503 is retried after 2 s (30 s by default): the run measures the retry
        }
        if args.batch:
            extra.update(EMAIL_BACKEND="emails.backends.PostmarkBatchBackend", EMAIL_BATCH_SIZE=str(args.batch))
        if args.send_concurrency:
            extra["EMAIL_SEND_CONCURRENCY"] = str(args.send_concurrency)
        env = common.environment(**extra)
        common.setup(**extra)
        import redis
        from django.db.models import F
        from django.utils import timezone

        from emails.models import Email
        from gifts.models import Gift

        redis.Redis.from_url(common.REDIS_URL).flushdb()
        processes, peak_rss = {}, 0
        try:
            commands = {
                "worker": ["worker", "--concurrency", str(args.processes), "--hostname", "bench-burst@%h"],
                "beat": ["beat", "--schedule", str(tmp / "celerybeat-schedule")],
            }
            for name, command in commands.items():
                processes[name] = common.start_process(
                    ["celery", "--app", "giftshop", *command, "--loglevel", "WARNING"],
                    env=env,
                    log_path=tmp / f"{name}.log",
                )
            common.wait_for_worker(processes["worker"])

            print(f"seeding {args.gifts} gifts …", flush=True)
            due = timezone.now() + timedelta(seconds=max(5, args.gifts / 4000))
            step = args.spread / max(args.gifts - 1, 1)
            ids = common.seed_gifts([due + timedelta(seconds=n * step) for n in range(args.gifts)])
            spread = f" over {args.spread:.0f} s" if args.spread else " at once"
            print(f"{len(ids)} gifts due from {due:%H:%M:%S}{spread}", flush=True)
            emails = Email.objects.filter(gift_id__in=ids)
            deadline = time.monotonic() + args.timeout + args.spread
            last_report = 0
            while (done := emails.filter(status=Email.Status.SENT).count()) < 2 * len(ids):
                for name, process in processes.items():
                    if process.poll() is not None:
                        raise RuntimeError(f"the {name} exited with {process.returncode}")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"timed out with {done} of {2 * len(ids)} emails sent")
                peak_rss = max(peak_rss, rss_mb(processes["worker"].pid))
                if time.monotonic() - last_report >= 10:
                    print(f"  {done:>7} of {2 * len(ids)} emails sent", flush=True)
                    last_report = time.monotonic()
                time.sleep(0.5)
            last_sent = max(emails.values_list("sent_at", flat=True))
            stats = provider_stats(port)
        except Exception:
            for name in processes:
                print(f"--- end of the {name}'s log ---\n{(tmp / f'{name}.log').read_text()[-3000:]}")
            raise
        finally:
            for name in ("beat", "worker"):
                if name in processes:
                    common.stop(processes[name])
            server.terminate()

        problems = []
        statuses = Counter(Gift.objects.filter(pk__in=ids).values_list("status", flat=True))
        if statuses != {"unclaimed": len(ids)}:
            problems.append(f"gift statuses {dict(statuses)}")
        kinds = Counter(emails.values_list("kind", "status"))
        if kinds != {("gift_delivery", "sent"): len(ids), ("gift_delivered", "sent"): len(ids)}:
            problems.append(f"emails {dict(kinds)}")
        keys = set(emails.values_list("key", flat=True))
        accepted = {key: count for key, count in stats["accepted"].items() if key in keys}
        twice = sum(1 for count in accepted.values() if count > 1)
        if len(accepted) != len(keys):
            problems.append(f"the provider accepted {len(accepted)} of {len(keys)} emails")
        if twice:
            problems.append(f"{twice} emails accepted more than once")
        if not within_limit(stats["accepted_at"], args.rate_limit):
            problems.append("the accepted requests went over the provider's rate limit")
        lateness = sorted(
            (sent - scheduled).total_seconds()
            for sent, scheduled in emails.filter(kind="gift_delivery")
            .annotate(scheduled=F("gift__scheduled_at"))
            .values_list("sent_at", "scheduled")
        )
        first_due = min(Gift.objects.filter(pk__in=ids).values_list("scheduled_at", flat=True))
        seconds = (last_sent - first_due).total_seconds()

    rate = len(ids) / seconds
    print(
        f"\n{len(ids)} gifts, provider latency {args.latency * 1000:.0f} ms"
        f"{f', limit {args.rate_limit:.0f}/s' if args.rate_limit else ''}"
        f"{f', {args.errors:.0%} 503s' if args.errors else ''}, {args.processes} worker process(es)"
        f"{f', batches of {args.batch}' if args.batch else ', one message a request'}"
    )
    print(f"  end to end      {seconds:8.1f} s   {rate:8.1f} gifts/s   ({2 * rate:.0f} emails/s)")
    print(
        f"  lateness        p50 {common.percentile(lateness, 50):.1f} s   p99 {common.percentile(lateness, 99):.1f} s"
        f"   max {lateness[-1]:.1f} s"
    )
    print(
        f"  provider        {stats['requests']} requests, {stats['peak_in_flight']} in flight at most,"
        f" {stats['throttled']} answered 429, {stats['failed']} answered 503"
    )
    print(f"  worker RSS      {peak_rss} MB at most (largest process)")
    if args.spread:
        met = common.percentile(lateness, 99) <= TARGET_P99_STEADY
        target = f"p99 lateness <= {TARGET_P99_STEADY:.0f} s: {'ok' if met else 'MISSED'}"
    else:
        target = f">= {TARGET_RATE} gifts/s: {'ok' if rate >= TARGET_RATE else 'MISSED'}"
    print(f"  target          {target}")
    for problem in problems:
        print(f"  PROBLEM: {problem}")
    if not problems:
        print("  checked: every gift delivered once, both emails sent, none accepted twice, the limit kept")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
