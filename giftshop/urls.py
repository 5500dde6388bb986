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
    path("mediastore/", include("giftshop.mediastore_urls")),
    path("api/v2/", include("giftshop.merchant_urls")),
]
