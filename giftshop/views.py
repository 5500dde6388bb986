import hmac

from django.conf import settings
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from giftshop import health


@require_GET
@never_cache
def healthz(request):
    """For load balancers: answers 200 once the database answers."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok"})


@require_GET
@never_cache
def live(request):
    """The process is up and serving (no dependency asked): for a restart policy."""
    return JsonResponse({"status": "ok"})


@require_GET
@never_cache
def ready(request):
    """Whether this deployment can serve (settings.HEALTH_CHECKS): 200 or 503. Each check's result only with the
    HEALTH_TOKEN as a bearer token: the details name the infrastructure."""
    checks = health.readiness()
    ok = all(check["ok"] for check in checks.values())
    body = {"status": "ok" if ok else "unavailable"}
    given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
    if settings.HEALTH_TOKEN and hmac.compare_digest(given.encode(), settings.HEALTH_TOKEN.encode()):
        body["checks"] = checks
    return JsonResponse(body, status=200 if ok else 503)
