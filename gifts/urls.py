from django.urls import path

from gifts import certificate_views, views

app_name = "gifts"
urlpatterns = [
    path("redeem/", views.redeem, name="redeem"),
    path("redeem/done/<int:gift_id>/", views.redeemed, name="redeemed"),
    path("account/gifts/", views.gifts, name="gifts"),
    path("account/gifts/<int:gift_id>/edit/", views.gift_edit, name="gift_edit"),
    path("account/gifts/<int:gift_id>/recipient/", views.correct_recipient, name="correct_recipient"),
    path("account/gifts/<int:gift_id>/certificate/", certificate_views.certificate, name="certificate"),
    path("gifts/designs/<slug:slug>/image", certificate_views.design_image, name="design_image"),
]
