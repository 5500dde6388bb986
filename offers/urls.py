from django.urls import path

from offers import views

app_name = "offers"
urlpatterns = [
    path("", views.catalogue, name="catalogue"),
    path("offers/<str:offer_id>/", views.offer_detail, name="detail"),
]
