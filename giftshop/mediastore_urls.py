"""The storefront API (Cleeng MediaStore contract), mounted under /mediastore/."""

from django.urls import path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from accounts import api as accounts_api
from billing import api as billing_api
from billing import bulk_api, withdrawal_api
from gifts import api as gifts_api
from giftshop.mediastore import not_found
from offers import api as offers_api

app_name = "mediastore"
urlpatterns = [
    path("auths", accounts_api.LoginView.as_view(), name="auths"),
    path("auths/refresh_token", accounts_api.RefreshView.as_view(), name="refresh-token"),
    path("customers", accounts_api.CustomersView.as_view(), name="customers"),
    path("customers/passwords", accounts_api.PasswordResetView.as_view(), name="password-reset"),
    path("locales", accounts_api.LocalesView.as_view(), name="locales"),
    path("publishers/<str:publisher_id>/consents", accounts_api.PublisherConsentsView.as_view(), name="consents"),
    path("customers/<str:customer_id>/consents", accounts_api.CustomerConsentsView.as_view(), name="customer-consents"),
    path("customers/<str:customer_id>/capture/status", accounts_api.CaptureStatusView.as_view(), name="capture-status"),
    path("customers/<str:customer_id>/capture", accounts_api.CaptureView.as_view(), name="capture"),
    path("customers/<str:customer_id>", accounts_api.CustomerView.as_view(), name="customer"),
    path("customers/<str:customer_id>/transactions", accounts_api.TransactionsView.as_view(), name="transactions"),
    path("customers/<str:customer_id>/subscriptions", accounts_api.SubscriptionsView.as_view(), name="subscriptions"),
    path("customers/<str:customer_id>/offers", accounts_api.CustomerOffersView.as_view(), name="customer-offers"),
    path(
        "customers/<str:customer_id>/payment-details", billing_api.PaymentDetailsView.as_view(), name="payment-details"
    ),
    # Cleeng's own spelling, which its SDK calls; the hyphenated one above stays for existing clients.
    path(
        "customers/<str:customer_id>/payment_details",
        billing_api.CleengPaymentDetailsView.as_view(),
        name="payment-details-cleeng",
    ),
    path("payment-details/<int:payment_detail_id>", billing_api.PaymentDetailView.as_view(), name="payment-detail"),
    path("v2/offers/<str:offer_id>", offers_api.OfferView.as_view(), name="offer"),
    path("offers", offers_api.OffersView.as_view(), name="offers"),
    path(
        "customers/<str:customer_id>/subscription_switches/<str:offer_id>/availability",
        accounts_api.SwitchAvailabilityView.as_view(),
        name="switch-availability",
    ),
    path("subscription_switches", accounts_api.SwitchesView.as_view(), name="switches"),
    path(
        "offers/<str:offer_id>/customers/<str:email>",
        accounts_api.OfferForCustomerView.as_view(),
        name="offer-for-customer",
    ),
    path("orders", billing_api.OrdersView.as_view(), name="orders"),
    path("orders/<int:order_id>", billing_api.OrderView.as_view(), name="order"),
    path("payment-methods", billing_api.PaymentMethodsView.as_view(), name="payment-methods"),
    path("payments", billing_api.PaymentsView.as_view(), name="payments"),
    path("gifts/verification/<str:code>", gifts_api.VerificationView.as_view(), name="gift-verification"),
    path("gifts/redeem/<str:code>", gifts_api.RedeemView.as_view(), name="gift-redeem"),
    path("gifts/decline/<str:code>", gifts_api.DeclineView.as_view(), name="gift-decline"),  # issue 16
    path("gifts/<int:gift_id>", gifts_api.GiftView.as_view(), name="gift"),
    path("gifts/<int:gift_id>/withdraw", withdrawal_api.GiftWithdrawView.as_view(), name="gift-withdraw"),  # issue 16
    path("gifts/<int:gift_id>/send-to", gifts_api.GiftSendElsewhereView.as_view(), name="gift-send-to"),  # issue 16
    # Bulk gift lists (issue 18).
    path("gift-lists", bulk_api.ListsView.as_view(), name="gift-lists"),
    path("gift-lists/<int:list_id>", bulk_api.ListView.as_view(), name="gift-list"),
    path("gift-lists/<int:list_id>/payment", bulk_api.ListPaymentView.as_view(), name="gift-list-payment"),
    path("gift-lists/<int:list_id>/gifts", bulk_api.ListGiftsView.as_view(), name="gift-list-gifts"),
    path(
        "schema",
        # Paths are relative to this mount point; without a server entry clients would call them at the site root.
        SpectacularAPIView.as_view(
            urlconf="giftshop.mediastore_urls", custom_settings={"SERVERS": [{"url": "/mediastore"}]}
        ),
        name="schema",
    ),
    path("docs", SpectacularSwaggerSplitView.as_view(url_name="mediastore:schema"), name="docs"),
    re_path(r"^[\s\S]*$", not_found),  # [\s\S], not ".": a path with an encoded newline is unknown too
]
