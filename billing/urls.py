from django.urls import path

from billing import views

app_name = "billing"
urlpatterns = [
    path("checkout/<str:offer_id>/", views.checkout, name="checkout"),
    path("checkout/<str:offer_id>/gift/", views.checkout, {"as_gift": True}, name="gift_checkout"),
    path("checkout/<str:offer_id>/price/", views.price, name="price"),
    path("thanks/<int:order_id>/", views.thanks, name="thanks"),
]
