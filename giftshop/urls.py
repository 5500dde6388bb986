from django.contrib import admin
from django.templatetags.static import static
from django.urls import include, path
from django.utils.functional import lazy
from django.views.generic import RedirectView

from accounts import urls as accounts_urls
from accounts import views as accounts_views
from billing import urls as billing_urls
from giftshop import metrics, views

urlpatterns = [
    path("", include("billing.urls")),
    path("", include("gifts.urls")),
    # The account's pages, with billing's saved-card pages under the same namespace ("accounts:payment_methods").
    path("", include(([*accounts_urls.urlpatterns, *billing_urls.account_urlpatterns], accounts_urls.app_name))),
    path("healthz", views.healthz, name="healthz"),
    path("health/live", views.live, name="health_live"),
    path("health/ready", views.ready, name="health_ready"),
    path("metrics", metrics.metrics, name="metrics"),
    # Browsers ask for /favicon.ico on every page, the admin's and the API docs' too. Lazy: the hashed name of the
    # static file is known only once the storage is ready. Not permanent, as the hashed name changes with the file.
    path("favicon.ico", RedirectView.as_view(url=lazy(static, str)("favicon.svg"))),
    # The language switcher (base.html): a cookie, never a URL prefix (settings.LANGUAGES says why).
    path("language", accounts_views.set_language, name="set_language"),
    path("admin/login/", accounts_views.admin_login),  # admin.site.login under the login attempt limits
    path("admin/", admin.site.urls),
    path("anymail/", include("emails.urls")),
    path("mediastore/", include("giftshop.mediastore_urls")),
    path("api/v2/", include("giftshop.merchant_urls")),
]
