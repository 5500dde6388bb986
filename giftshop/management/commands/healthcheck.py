"""`manage.py healthcheck`: the readiness checks from the command line, for the worker and beat containers (which
serve no HTTP). Exit status 0 when every check passes, 1 otherwise; one line per check."""

from django.core.management.base import BaseCommand, CommandError

from giftshop import health


class Command(BaseCommand):
    help = "Runs the readiness checks (settings.HEALTH_CHECKS); exits 1 if any fails."

    def add_arguments(self, parser):
        parser.add_argument("--only", nargs="*", help="run only these checks (e.g. database broker)")

    def handle(self, *args, only=None, **options):
        checks = health.readiness(only=only)
        for name, check in checks.items():
            mark = "ok  " if check["ok"] else "FAIL"
            self.stdout.write(f"{mark} {name:<11} {check['detail']} ({check['ms']} ms)")
        if not all(check["ok"] for check in checks.values()):
            raise CommandError("not ready")
