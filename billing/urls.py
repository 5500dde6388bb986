from django.urls import path

from billing import views

app_name = "billing"
urlpatterns = [
    path("", views.catalogue, name="catalogue"),
    path("offers/<str:offer_id>/", views.offer_detail, name="offer_detail"),
    path("checkout/<str:offer_id>/", views.checkout, name="checkout"),
    path("checkout/<str:offer_id>/gift/", views.checkout, {"as_gift": True}, name="gift_checkout"),
    path("checkout/<str:offer_id>/price/", views.price, name="price"),
    path("thanks/<int:order_id>/", views.thanks, name="thanks"),
]

# The account's saved-card pages: giftshop/urls.py mounts them in the account's namespace (accounts:payment_methods).
account_urlpatterns = [
    path("account/payment-methods/", views.payment_methods, name="payment_methods"),
    path("account/payment-methods/<int:pk>/remove/", views.payment_method_remove, name="payment_method_remove"),
]
