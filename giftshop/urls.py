from django.contrib import admin
from django.urls import include, path

from accounts import urls as accounts_urls
from billing import urls as billing_urls
from giftshop import views

urlpatterns = [
    path("", include("billing.urls")),
    path("", include("gifts.urls")),
    # The account's pages, with billing's saved-card pages under the same namespace ("accounts:payment_methods").
    path("", include(([*accounts_urls.urlpatterns, *billing_urls.account_urlpatterns], accounts_urls.app_name))),
    path("healthz", views.healthz, name="healthz"),
    path("admin/", admin.site.urls),
    # The ESPs' tracking webhooks (/anymail/<esp>/tracking/), checked by anymail; emails/receivers.py receives them.
    path("anymail/", include("anymail.urls")),
    path("mediastore/", include("giftshop.mediastore_urls")),
    path("api/v2/", include("giftshop.merchant_urls")),
]
