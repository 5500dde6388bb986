"""Scale: two worker processes deliver 100,000 due gifts concurrently, then two expire them all.

    .venv/bin/python bench/scale.py                  # 100,000 gifts
    .venv/bin/python bench/scale.py --gifts 20000    # a smaller run

Seeds the gifts in bulk (bench/common.py), then starts two processes (multiprocessing, spawn) that each run
gifts.services.deliver_due_gifts() (the beat task's code: SKIP LOCKED batches, so they share the work) until
nothing is due. Then it moves every gift's claim_expiry_date into the past and two processes run
gifts.services.expire_due_gifts() the same way. Per phase it prints gifts/s (wall clock from the moment both
workers are ready to the moment both are done) and each worker's share and peak RSS (VmHWM of /proc/self/status,
read in the worker at its end, set-up included). Checks afterwards: every gift expired, one delivery and one
delivered email row each, and across both workers no email sent twice and every email sent once.
Target: peak worker RSS at most 200 MB.

Emails go to anymail's test backend with a stand-in `mail.outbox` that appends each sent message's outbox key to
a file of its worker (see bench/delivery.py: the backend's own list would hold every message in memory and number
them with a linear search), so the worker's memory is the app's own.
"""

import argparse
import multiprocessing
import os
import sys
import tempfile
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import common

TARGET_RSS_MB = 200
WORKERS = 2


class FileOutbox(list):
    """Stands in for mail.outbox under anymail's test backend: each sent message's outbox key goes to a file,
    nothing stays in memory."""

    def __init__(self, path):
        super().__init__()
        self.file, self.count = open(path, "a"), 0  # noqa: SIM115 (closed by close())

    def append(self, message):
        self.file.write(message.extra_headers["X-Giftshop-Email-Key"] + "\n")
        self.count += 1

    def index(self, message, *args):
        return self.count - 1  # the backend looks up the message it has just appended

    def close(self):
        self.file.close()


def memory_kib(field):
    """VmHWM (peak) or VmRSS (now) of this process, in KiB. Not getrusage()'s ru_maxrss: Linux keeps that across
    exec, so a spawned child reports the peak of the parent it was forked from (372 MB here after seeding 100k)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def worker(task, outbox_path, ready, go, results):
    """One worker process: Django set up on the bench environment (no migrate or flush), then `task` once."""
    os.environ.update(common.environment())
    sys.path.insert(0, str(common.ROOT))
    import django

    django.setup()
    from django.core import mail
    from django.db import connection

    from gifts.services import deliver_due_gifts, expire_due_gifts

    outbox = mail.outbox = FileOutbox(outbox_path)
    connection.ensure_connection()
    rss_ready = memory_kib("VmRSS")
    ready.release()
    go.wait()
    started = time.perf_counter()
    done = deliver_due_gifts() if task == "deliver" else expire_due_gifts()
    seconds = time.perf_counter() - started
    outbox.close()
    connection.close()
    peak = memory_kib("VmHWM")
    results.put({"pid": os.getpid(), "done": done, "seconds": seconds, "rss_ready": rss_ready, "rss_peak": peak})


def phase(task, outbox_dir):
    """Runs `task` in two spawned processes at once; returns (wall seconds, their results)."""
    context = multiprocessing.get_context("spawn")
    ready, go, results = context.Semaphore(0), context.Event(), context.Queue()
    processes = [
        context.Process(target=worker, args=(task, outbox_dir / f"{task}-{n}.keys", ready, go, results))
        for n in range(WORKERS)
    ]
    for process in processes:
        process.start()
    try:
        for _ in processes:
            if not ready.acquire(timeout=120):
                raise RuntimeError("a worker did not get ready within 120 s")
        started = time.perf_counter()
        go.set()
        finished = [results.get(timeout=1800) for _ in processes]
        seconds = time.perf_counter() - started
        for process in processes:
            process.join(timeout=60)
            if process.exitcode != 0:
                raise RuntimeError(f"worker {process.pid} exited with {process.exitcode}")
    finally:
        for process in processes:
            if process.is_alive():
                process.terminate()
                process.join()
    return seconds, finished


def report(title, size, seconds, finished):
    print(f"{title}: {size:,} gifts in {seconds:.1f} s, {size / seconds:,.0f} gifts/s")
    for result in finished:
        print(
            f"  worker {result['pid']}: {result['done']:,} gifts in {result['seconds']:.1f} s,"
            f" peak RSS {result['rss_peak'] / 1024:.0f} MB ({result['rss_ready'] / 1024:.0f} MB once set up)"
        )
    return max(result["rss_peak"] for result in finished) / 1024


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gifts", type=int, default=100_000, help="how many gifts (default 100,000)")
    args = parser.parse_args()
    size = args.gifts

    common.setup()
    from django.db import connections
    from django.db.models import Count
    from django.utils import timezone

    from emails.models import Email
    from gifts.models import Gift

    started = time.perf_counter()
    due = timezone.now() - timedelta(minutes=5)
    ids = common.seed_gifts([due + timedelta(milliseconds=n) for n in range(size)])
    first, last = ids[0], ids[-1]
    del ids
    print(f"seeded {size:,} due gifts in {time.perf_counter() - started:.1f} s")
    connections.close_all()

    problems = []
    with tempfile.TemporaryDirectory(prefix="giftshop-scale-") as outbox_dir:
        outbox_dir = Path(outbox_dir)
        seconds, finished = phase("deliver", outbox_dir)
        peak_deliver = report("delivery by 2 workers", size, seconds, finished)
        if sum(r["done"] for r in finished) != size:
            problems.append(f"deliver_due_gifts() returned {[r['done'] for r in finished]}, expected {size} in all")

        sent = Counter()
        for path in outbox_dir.glob("deliver-*.keys"):
            with path.open() as keys:
                sent.update(line.rstrip("\n") for line in keys)

        started = time.perf_counter()
        Gift.objects.filter(pk__gte=first, pk__lte=last).update(claim_expiry_date=timezone.now() - timedelta(days=1))
        print(f"claim_expiry_date moved into the past for all in {time.perf_counter() - started:.1f} s")
        connections.close_all()
        seconds, finished = phase("expire", outbox_dir)
        peak_expire = report("expiry by 2 workers", size, seconds, finished)
        if sum(r["done"] for r in finished) != size:
            problems.append(f"expire_due_gifts() returned {[r['done'] for r in finished]}, expected {size} in all")

    gifts = Gift.objects.filter(pk__gte=first, pk__lte=last)
    statuses = Counter(dict(gifts.values("status").annotate(n=Count("pk")).values_list("status", "n")))
    if statuses != {"expired": size}:
        problems.append(f"gift statuses {dict(statuses)}")
    for kind in (Email.Kind.GIFT_DELIVERY, Email.Kind.GIFT_DELIVERED):
        rows = Email.objects.filter(gift_id__gte=first, gift_id__lte=last, kind=kind)
        per_gift = Counter(rows.values("gift_id").annotate(n=Count("pk")).values_list("n", flat=True))
        if per_gift != {1: size}:
            problems.append(f"{kind}: gifts by number of rows {dict(per_gift)}, expected one row per gift")
        not_sent = rows.exclude(status=Email.Status.SENT).count()
        if not_sent:
            problems.append(f"{kind}: {not_sent} rows not `sent`")
    twice = [key for key, times in sent.items() if times > 1]
    if twice:
        problems.append(f"{len(twice)} emails sent more than once, e.g. {twice[:3]}")
    delivery_keys = {f"gift:{pk}:delivery" for pk in range(first, last + 1)}
    if len(sent) != 2 * size or not delivery_keys <= set(sent):
        problems.append(f"{len(sent):,} distinct emails sent, expected {2 * size:,} with every gift's delivery email")

    peak = max(peak_deliver, peak_expire)
    print(
        f"peak worker RSS {peak:.0f} MB  (target <= {TARGET_RSS_MB} MB: {'ok' if peak <= TARGET_RSS_MB else 'MISSED'})"
    )
    for problem in problems:
        print(f"FAILED CHECK: {problem}")
    if not problems:
        print(
            f"checked: all {size:,} gifts expired; one delivery and one delivered email row each, all `sent`;"
            f" {len(sent):,} emails sent, none twice"
        )
    return 1 if problems or peak > TARGET_RSS_MB else 0


if __name__ == "__main__":
    sys.exit(main())
