from django.core.management.base import BaseCommand

from giftshop.models import ApiKey
from giftshop.services import api_key_create


class Command(BaseCommand):
    help = "Creates a merchant API key and prints it once (only its hash is kept)."

    def add_arguments(self, parser):
        parser.add_argument("name", help="What the key is for, e.g. 'back office'.")
        parser.add_argument("--read-only", action="store_true", help="Allow GET requests only.")

    def handle(self, *args, name, read_only, **options):
        api_key, raw = api_key_create(name=name, kind=ApiKey.Kind.READ_ONLY if read_only else ApiKey.Kind.FULL)
        self.stdout.write(f"{api_key.get_kind_display()} API key '{name}' (shown once, store it now):")
        self.stdout.write(raw)
