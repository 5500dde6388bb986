"""The outbox's readiness check (settings.HEALTH_CHECKS): no email waits past its time for longer than
HEALTH_OUTBOX_MAX_AGE seconds (a worker missing, or a provider down for that long), and none is stuck `sending`."""

from django.conf import settings
from django.db.models import Min
from django.utils import timezone

from emails.models import Email
from emails.services import STUCK_AFTER


def outbox():
    now = timezone.now()
    oldest = Email.objects.filter(status=Email.Status.PENDING, next_attempt_at__lte=now).aggregate(
        due=Min("next_attempt_at")
    )["due"]
    stuck = Email.objects.filter(status=Email.Status.SENDING, sending_started_at__lt=now - STUCK_AFTER).count()
    age = (now - oldest).total_seconds() if oldest else 0
    ok = age <= settings.HEALTH_OUTBOX_MAX_AGE and not stuck
    return ok, f"oldest due email waiting {age:.0f} s; {stuck} stuck sending"
