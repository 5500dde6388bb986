from django.contrib import admin
from django.urls import include, path

from giftshop import views

urlpatterns = [
    path("", include("offers.urls")),
    path("", include("billing.urls")),
    path("", include("gifts.urls")),
    path("", include("accounts.urls")),
    path("healthz", views.healthz, name="healthz"),
    path("admin/", admin.site.urls),
    # The ESPs' tracking webhooks (/anymail/<esp>/tracking/), checked by anymail; gifts/bounces.py receives them.
    path("anymail/", include("anymail.urls")),
    path("mediastore/", include("giftshop.mediastore_urls")),
    path("api/v2/", include("giftshop.merchant_urls")),
]
