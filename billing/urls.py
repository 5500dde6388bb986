from django.urls import path

from billing import bulk_views, stripe_views, stripe_webhooks, views, withdrawal_views

app_name = "billing"
urlpatterns = [
    path("", views.catalogue, name="catalogue"),
    path("offers/<str:offer_id>/", views.offer_detail, name="offer_detail"),
    path("checkout/<str:offer_id>/", views.checkout, name="checkout"),
    path("checkout/<str:offer_id>/gift/", views.checkout, {"as_gift": True}, name="gift_checkout"),
    path("checkout/<str:offer_id>/price/", views.price, name="price"),
    path("thanks/<int:order_id>/", views.thanks, name="thanks"),
    # Stripe (PAYMENT_GATEWAY=stripe): the payment step, the emailed renewal confirmation, the webhook.
    path("checkout/pay/<int:order_id>/", stripe_views.pay, name="stripe_pay"),
    path("checkout/pay/<int:order_id>/done/", stripe_views.pay_return, name="stripe_return"),
    path("payments/confirm/<str:token>/", stripe_views.authenticate, name="stripe_authenticate"),
    path("payments/confirm/<str:token>/done/", stripe_views.authenticated, name="stripe_authenticated"),
    path("payments/stripe/webhook/", stripe_webhooks.stripe_webhook, name="stripe_webhook"),
    # Bulk gift lists before payment (issue 18).
    path("checkout/<str:offer_id>/list/", bulk_views.bulk_new, name="bulk_new"),
    path("lists/<int:list_id>/", bulk_views.bulk_review, name="bulk_review"),
    path("checkout/<str:offer_id>/group/", bulk_views.group_new, name="group_new"),
    # The gifter's "Withdraw and refund" (issue 16).
    path("account/gifts/<int:gift_id>/withdraw/", withdrawal_views.gift_withdraw, name="gift_withdraw"),
]

# The account's saved-card pages: giftshop/urls.py mounts them in the account's namespace (accounts:payment_methods).
account_urlpatterns = [
    path("account/payment-methods/", views.payment_methods, name="payment_methods"),
    path("account/payment-methods/<int:pk>/remove/", views.payment_method_remove, name="payment_method_remove"),
]
