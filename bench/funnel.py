"""The admin's gift funnel at scale: how long the funnel page (and its CSV) takes to build over 100,000 gifts.

    .venv/bin/python bench/funnel.py                  # 100,000 gifts
    .venv/bin/python bench/funnel.py --gifts 20000    # a smaller run

Seeds, in bulk, `--gifts` gifts sold over the last 8 ISO weeks across three offers, each with a delivery email
whose provider tracking (delivered, opened, clicked) is filled for a share of them, and a resend for one in ten;
a third of them redeemed with a subscription each, a third of those renewed for payment (a renewal ledger row) and
some declined. Then it times, best of `--repeat`, gifts.funnel.funnel_report() alone and the whole admin page
(GET /admin/gifts/gift/funnel/ as a superuser, through Django's test client: the query, the template, the
middleware), for all offers and for one, and the CSV export. Target: the page in under 1 s at 100,000 gifts.
"""

import argparse
import sys
import time
from datetime import timedelta

import common

TARGET_SECONDS = 1.0
WEEKS = 8
SIMPLE_STATIC = "django.contrib.staticfiles.storage.StaticFilesStorage"


def seed(count):
    from django.utils import timezone

    from accounts.models import Customer, Subscription, Transaction
    from emails.models import Email
    from gifts.models import Gift, GiftStatus
    from gifts.reports import week_start
    from offers.models import Offer

    now = timezone.now()
    start = week_start(now) - (WEEKS - 1) * timedelta(weeks=1)
    span = (now - start).total_seconds()
    offers = [
        Offer.objects.create(title=title, period=period, price="9.99", currency="USD", giftable=True, tags=["p"])
        for title, period in [("Monthly", "month"), ("Quarterly", "3months"), ("Yearly", "year")]
    ]
    customers = Customer.objects.bulk_create(
        [Customer(email=f"funnel{n}@example.com", password=common.UNUSABLE) for n in range(max(1, count // 50))]
    )
    gifts = []
    for n in range(count):
        created = start + timedelta(seconds=span * n / count)
        sent = created + timedelta(hours=1)
        state = {"status": GiftStatus.UNCLAIMED, "sent_at": sent}
        if n % 3 == 0:
            claimed_at = sent + timedelta(hours=n % 97)
            state = {
                "status": GiftStatus.CLAIMED,
                "sent_at": sent,
                "claimed_at": claimed_at,
                "receiver": customers[n % len(customers)],
            }
        elif n % 17 == 0:
            state = {"status": GiftStatus.DECLINED, "sent_at": sent, "declined_at": sent + timedelta(hours=5)}
        gift = Gift(
            gifter=customers[n % len(customers)],
            offer=offers[n % 3],
            recipient_email=f"r{n}@example.com",
            scheduled_at=created,
            claim_expiry_date=created + timedelta(days=365),
            created_at=created,
            updated_at=created,
            **state,
        )
        gift.assign_code()
        gifts.append(gift)
    gifts = Gift.objects.bulk_create(gifts, batch_size=2000)

    emails = []
    for n, gift in enumerate(gifts):
        delivered = gift.sent_at + timedelta(minutes=1) if n % 10 else None
        opened = gift.sent_at + timedelta(minutes=n % 600) if n % 2 else None
        clicked = opened + timedelta(minutes=3) if opened and n % 4 == 1 else None
        for attempt in range(2 if n % 10 == 0 else 1):  # one in ten resent
            emails.append(
                Email(
                    key=f"gift:{gift.pk}:delivery:{attempt}",
                    kind=Email.Kind.GIFT_DELIVERY,
                    to_email=gift.recipient_email,
                    gift=gift,
                    status=Email.Status.SENT,
                    sent_at=gift.sent_at,
                    delivered_at=delivered,
                    opened_at=opened,
                    clicked_at=clicked,
                )
            )
    Email.objects.bulk_create(emails, batch_size=2000)

    claimed = [gift for gift in gifts if gift.claimed_at]
    subscriptions = Subscription.objects.bulk_create(
        [
            Subscription(
                customer=gift.gifter,
                offer=gift.offer,
                term_start=gift.claimed_at,
                term_end=gift.claimed_at + timedelta(days=30),
                origin=Subscription.Origin.GIFT,
            )
            for gift in claimed
        ],
        batch_size=2000,
    )
    for gift, subscription in zip(claimed, subscriptions, strict=True):
        gift.subscription = subscription
    Gift.objects.bulk_update(claimed, ["subscription"], batch_size=2000)
    Transaction.objects.bulk_create(
        [
            Transaction(
                customer=gift.gifter,
                kind=Transaction.Kind.RENEWAL,
                offer=gift.offer,
                amount="9.99",
                currency="USD",
                target_type=Transaction.TargetType.SUBSCRIPTION,
                target_id=str(gift.subscription_id),
                occurred_at=gift.claimed_at + timedelta(days=30),
            )
            for gift in claimed[::3]
        ],
        batch_size=2000,
    )
    return offers


def best(repeat, run):
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        run()
        times.append(time.perf_counter() - began)
    return min(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gifts", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    common.setup()
    from django.conf import settings
    from django.db import connection
    from django.test import Client, override_settings
    from django.urls import reverse

    from accounts.models import Customer
    from gifts.funnel import funnel_report

    began = time.perf_counter()
    offers = seed(args.gifts)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    print(f"seeded {args.gifts:,} gifts in {time.perf_counter() - began:.0f} s")

    # The pages' static URLs without a collectstatic manifest, as the tests do (conftest.py): not what is timed.
    override_settings(STORAGES={**settings.STORAGES, "staticfiles": {"BACKEND": SIMPLE_STATIC}}).enable()
    client = Client(HTTP_HOST="localhost")  # the bench allows that host only
    client.force_login(Customer.objects.create(email="boss@example.com", is_staff=True, is_superuser=True))
    page, export = reverse("admin:gifts_gift_funnel"), reverse("admin:gifts_gift_funnel_export")

    def get(url, **query):
        response = client.get(url, query)
        assert response.status_code == 200, response.status_code
        b"".join(response.streaming_content) if response.streaming else response.content

    report = funnel_report()
    assert sum(step.count for step in report.totals[:1]) == args.gifts, report.totals
    print("totals: " + ", ".join(f"{step.label} {step.count:,}" for step in report.totals))
    figures = {
        "funnel_report(), all offers": best(args.repeat, funnel_report),
        "the page, all offers": best(args.repeat, lambda: get(page)),
        "the page, one offer": best(args.repeat, lambda: get(page, offer=offers[0].pk)),
        "the page, 52 weeks": best(args.repeat, lambda: get(page, weeks=52)),
        "the CSV export": best(args.repeat, lambda: get(export)),
    }
    for name, seconds in figures.items():
        print(f"{name}: {seconds * 1000:.0f} ms")
    slowest = max(figures.values())
    print(f"target: every figure under {TARGET_SECONDS:.1f} s: {'met' if slowest < TARGET_SECONDS else 'MISSED'}")
    return 0 if slowest < TARGET_SECONDS else 1


if __name__ == "__main__":
    sys.exit(main())
