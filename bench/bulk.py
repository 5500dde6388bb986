"""Bulk gift lists (issue 18): validate a 5,000-row CSV, then make its gifts as the background task does.

    .venv/bin/python bench/bulk.py                 # 5,000 rows, once
    .venv/bin/python bench/bulk.py --rows 5000 --repeat 3

Every run starts from an empty bench database (see bench/common.py). The file is written to a temporary file and
read as an upload is (a binary stream, decoded and checked as it is read). The list is then marked paid (the one
charge is not what is measured) and gifts/bulk.bulk_gifts_create() makes its gifts, batch by batch, as the task
does. Prints the validation time, gifts/s (wall clock and the process's CPU), and the peak RSS of the process after
each phase; checks that every row has exactly one gift with its `scheduled` timeline row and event.
Targets: validation ≤ 3 s, creation ≥ 500 gifts/s, memory flat (the peak grows by little between 1,000 and 5,000).
"""

import argparse
import resource
import sys
import tempfile
import time

import common

TARGET_VALIDATE_SECONDS, TARGET_RATE = 3.0, 500


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: kilobytes


def write_csv(path, rows):
    with open(path, "w", encoding="utf-8", newline="") as out:
        out.write("\ufeffemail,first_name,message,date,time,time_zone,language\n")  # as Excel's "CSV UTF-8" writes it
        for n in range(rows):
            out.write(f"person{n}@example.com,Person {n},Happy holidays from all of us!,,,Europe/Paris,en\n")


def run_one(rows):
    common.setup()
    from django.db.models import Count
    from django.utils import timezone

    from accounts.models import Customer
    from billing.models import Order
    from gifts import bulk
    from gifts.models import BulkList, BulkRow, Gift, GiftTimeline
    from giftshop.models import Event
    from offers.models import Offer

    offer = Offer.objects.create(
        title="Premium, one month", period="month", price="9.99", currency="USD", giftable=True, tags=["premium"]
    )
    gifter = Customer.objects.create(email="hr@example.com", password=common.UNUSABLE, time_zone="Europe/Paris")
    rss_start = peak_rss_mb()
    with tempfile.NamedTemporaryFile(suffix=".csv") as file:
        write_csv(file.name, rows)
        with open(file.name, "rb") as upload:
            started = time.perf_counter()
            bulk_list = bulk.bulk_list_create(gifter=gifter, offer=offer, source=upload, name="bench.csv")
            validate_seconds = time.perf_counter() - started
    rss_validated = peak_rss_mb()
    summary = bulk.bulk_list_summary(bulk_list)

    now = timezone.now()
    order = Order.objects.create(
        customer=gifter, offer=offer, quantity=rows, currency="USD", offer_price=0, total_price=0, buy_as_gift=True
    )
    BulkList.objects.filter(pk=bulk_list.pk).update(status="paid", order=order, paid_at=now, gifts_to_create=rows)
    started, cpu_started = time.perf_counter(), time.process_time()
    made, done = bulk.bulk_gifts_create(list_id=bulk_list.pk)
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    rss_created = peak_rss_mb()

    problems = []
    if summary["valid"] != rows:
        problems.append(f"{summary['valid']} valid rows of {rows}")
    if (made, done) != (rows, True):
        problems.append(f"bulk_gifts_create() returned {(made, done)}")
    per_row = BulkRow.objects.filter(bulk_list=bulk_list, gift__isnull=False).values("gift").distinct().count()
    timelines = GiftTimeline.objects.filter(gift__bulk_row__bulk_list=bulk_list, status="scheduled").count()
    events = Event.objects.filter(event_type="gift_scheduled").count()
    if not (per_row == timelines == events == Gift.objects.count() == rows):
        problems.append(
            f"rows with a gift {per_row}, timelines {timelines}, events {events}, gifts {Gift.objects.count()}"
        )
    doubles = Gift.objects.values("bulk_row").annotate(n=Count("pk")).filter(n__gt=1).count()
    if doubles:
        problems.append(f"{doubles} rows with more than one gift")
    return {
        "rows": rows,
        "validate_s": validate_seconds,
        "create_s": seconds,
        "create_cpu_s": cpu_seconds,
        "rate": rows / seconds,
        "rss_start_mb": rss_start,
        "rss_validated_mb": rss_validated,
        "rss_created_mb": rss_created,
        "problems": problems,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    results = [run_one(args.rows) for _ in range(args.repeat)]
    failed = False
    for result in results:
        print(
            f"{result['rows']:,} rows: validated in {result['validate_s']:.2f} s; "
            f"gifts made in {result['create_s']:.2f} s "
            f"= {result['rate']:,.0f} gifts/s (CPU {result['create_cpu_s']:.2f} s); peak RSS "
            f"{result['rss_start_mb']:.0f} MB at start, {result['rss_validated_mb']:.0f} MB validated, "
            f"{result['rss_created_mb']:.0f} MB created"
        )
        for problem in result["problems"]:
            print(f"  PROBLEM: {problem}")
            failed = True
    best_validate = min(r["validate_s"] for r in results)
    best_rate = max(r["rate"] for r in results)
    print(
        f"best: validation {best_validate:.2f} s (target ≤ {TARGET_VALIDATE_SECONDS:.0f} s: "
        f"{'met' if best_validate <= TARGET_VALIDATE_SECONDS else 'NOT met'}); creation {best_rate:,.0f} gifts/s "
        f"(target ≥ {TARGET_RATE}: {'met' if best_rate >= TARGET_RATE else 'NOT met'})"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
