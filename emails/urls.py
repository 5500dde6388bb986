"""The ESPs' tracking webhooks (/anymail/<esp>/tracking/), checked by anymail and received by emails/receivers.py;
they exist only when ANYMAIL_WEBHOOK_SECRET is set."""

from functools import wraps

from anymail import urls as anymail_urls
from django.conf import settings
from django.http import Http404
from django.urls import URLPattern


def _only_with_a_webhook_secret(view):
    """Without ANYMAIL_WEBHOOK_SECRET anymail accepts unsigned posts (a warning, then 200), so anyone could mark a
    delivery bounced: the tracking webhooks then do not exist. Read per request, so settings can change in tests."""

    @wraps(view)
    def guarded(request, *args, **kwargs):
        if not settings.ANYMAIL.get("WEBHOOK_SECRET"):
            raise Http404("No email tracking webhooks are configured.")
        return view(request, *args, **kwargs)

    return guarded


app_name = anymail_urls.app_name
urlpatterns = [
    URLPattern(pattern.pattern, _only_with_a_webhook_secret(pattern.callback), pattern.default_args, pattern.name)
    for pattern in anymail_urls.urlpatterns
]
