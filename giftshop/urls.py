from functools import wraps

from anymail import urls as anymail_urls
from django.conf import settings
from django.contrib import admin
from django.http import Http404
from django.urls import URLPattern, include, path

from accounts import views as accounts_views
from giftshop import views


def _only_with_a_webhook_secret(view):
    """Without ANYMAIL_WEBHOOK_SECRET anymail accepts unsigned posts (a warning, then 200), so anyone could mark a
    delivery bounced: the tracking webhooks then do not exist. Read per request, so settings can change in tests."""

    @wraps(view)
    def guarded(request, *args, **kwargs):
        if not settings.ANYMAIL.get("WEBHOOK_SECRET"):
            raise Http404("No email tracking webhooks are configured.")
        return view(request, *args, **kwargs)

    return guarded


anymail_tracking = [
    URLPattern(pattern.pattern, _only_with_a_webhook_secret(pattern.callback), pattern.default_args, pattern.name)
    for pattern in anymail_urls.urlpatterns
]

urlpatterns = [
    path("", include("offers.urls")),
    path("", include("billing.urls")),
    path("", include("gifts.urls")),
    path("", include("accounts.urls")),
    path("healthz", views.healthz, name="healthz"),
    path("admin/login/", accounts_views.admin_login),  # admin.site.login under the login attempt limits
    path("admin/", admin.site.urls),
    # The ESPs' tracking webhooks (/anymail/<esp>/tracking/), checked by anymail; gifts/bounces.py receives them.
    path("anymail/", include((anymail_tracking, anymail_urls.app_name))),
    path("mediastore/", include("giftshop.mediastore_urls")),
    path("api/v2/", include("giftshop.merchant_urls")),
]
