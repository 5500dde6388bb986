from decimal import Decimal

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from accounts.models import Customer
from giftshop.models import SiteSettings
from offers.models import Offer

# (short id, title, period, price, giftable, tags, description)
DEMO_OFFERS = [
    ("S100000001", "Premium — monthly", "month", "9.99", True, ["premium"], "Everything, billed every month."),
    ("S100000003", "Premium — 3 months", "3months", "27.99", True, ["premium"], "Everything for a quarter."),
    ("S100000006", "Premium — 6 months", "6months", "52.99", True, ["premium"], "Everything for half a year."),
    ("S100000012", "Premium — yearly", "year", "99.99", True, ["premium"], "Everything for a year: two months free."),
    ("S100000101", "Reader — monthly", "month", "4.99", True, ["reader"], "All articles, no video."),
    ("S100000007", "Premium — weekly pass", "week", "2.99", False, ["premium"], "A week of everything."),
    ("S100000099", "Season pass", "season", "59.99", False, ["premium", "sports"], "The whole season, live."),
]

ADMIN_EMAIL, ADMIN_PASSWORD = "admin@example.com", "giftshop-admin"
DEMO_EMAIL, DEMO_PASSWORD = "demo@example.com", "giftshop-demo"


class Command(BaseCommand):
    help = "Loads demo offers, an admin and a demo customer (safe to run again: it updates, never duplicates)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--force", action="store_true", help="Load the demo data even with DEBUG off (never on a live site)."
        )

    @transaction.atomic
    def handle(self, *args, force=False, **options):
        if not settings.DEBUG and not force:
            # It makes admin@example.com a superuser with a published password: never on a production database.
            raise CommandError(
                "load_demo_data makes a superuser with a published password, so it refuses to run with DEBUG off. "
                "Use it on a local demo (DEBUG=true), or pass --force if this really is a throwaway database."
            )
        for short_id, title, period, price, giftable, tags, description in DEMO_OFFERS:
            Offer.objects.update_or_create(
                short_id=short_id,
                defaults={
                    "title": title,
                    "period": period,
                    "price": Decimal(price),
                    "currency": "USD",
                    "giftable": giftable,
                    "tags": tags,
                    "description": description,
                    "active": True,
                },
            )
        SiteSettings.load()
        admin = self._customer(ADMIN_EMAIL, ADMIN_PASSWORD, first_name="Ada", last_name="Admin")
        Customer.objects.filter(pk=admin.pk).update(is_staff=True, is_superuser=True)
        self._customer(DEMO_EMAIL, DEMO_PASSWORD, first_name="Dora", last_name="Demo")
        self.stdout.write(self.style.SUCCESS(f"Loaded {len(DEMO_OFFERS)} demo offers."))
        self.stdout.write(f"  admin:    {ADMIN_EMAIL} / {ADMIN_PASSWORD}  (/admin/)")
        self.stdout.write(f"  customer: {DEMO_EMAIL} / {DEMO_PASSWORD}")

    def _customer(self, email, password, **names):
        customer = Customer.objects.owning(email).first()
        if customer is None:
            customer = Customer.objects.create_user(email, password, **names)
        return customer
