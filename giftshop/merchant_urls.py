"""The merchant API (Chargebee API v2 contract), mounted at /api/v2/."""

from django.urls import path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from accounts import merchant_api as accounts_api
from billing import merchant_api as billing_api
from gifts import merchant_api as gifts_api
from giftshop.chargebee import unknown_path
from offers import merchant_api as offers_api

app_name = "merchant"
urlpatterns = [
    path("gifts", billing_api.GiftsView.as_view(), name="gifts"),  # GET: gifts_api's list; POST: the purchase
    path("gifts/<str:gift_id>", gifts_api.GiftView.as_view(), name="gift"),
    path("gifts/<str:gift_id>/claim", gifts_api.GiftClaimView.as_view(), name="gift-claim"),
    path("gifts/<str:gift_id>/cancel", billing_api.GiftCancelView.as_view(), name="gift-cancel"),
    path("gifts/<str:gift_id>/update_gift", gifts_api.GiftUpdateView.as_view(), name="gift-update"),
    path("events", gifts_api.EventsView.as_view(), name="events"),
    path("events/<str:event_id>", gifts_api.EventView.as_view(), name="event"),
    path("customers", accounts_api.CustomersView.as_view(), name="customers"),
    path("customers/<str:customer_id>", accounts_api.CustomerView.as_view(), name="customer"),
    path("payment_sources", billing_api.PaymentSourcesView.as_view(), name="payment-sources"),
    path("payment_sources/create_card", billing_api.CreateCardView.as_view(), name="payment-source-card"),
    path("payment_sources/create_using_token", billing_api.CreateUsingTokenView.as_view(), name="payment-source-token"),
    path("payment_sources/<str:source_id>", billing_api.PaymentSourceView.as_view(), name="payment-source"),
    path("subscriptions", accounts_api.SubscriptionsView.as_view(), name="subscriptions"),
    path("subscriptions/<str:subscription_id>", accounts_api.SubscriptionView.as_view(), name="subscription"),
    path("plans", offers_api.PlansView.as_view(), name="plans"),
    path("plans/<str:plan_id>", offers_api.PlanView.as_view(), name="plan"),
    path("invoices", billing_api.InvoicesView.as_view(), name="invoices"),
    path("invoices/<str:invoice_id>", billing_api.InvoiceView.as_view(), name="invoice"),
    path(
        "schema",
        SpectacularAPIView.as_view(
            urlconf="giftshop.merchant_urls",
            custom_settings={
                "SERVERS": [{"url": "/api/v2"}],
                "TITLE": "Giftshop merchant API (Chargebee v2)",
                "POSTPROCESSING_HOOKS": [
                    "drf_spectacular.hooks.postprocess_schema_enums",
                    "giftshop.chargebee.empty_means_unset",
                ],
            },
        ),
        name="schema",
    ),
    path("docs", SpectacularSwaggerSplitView.as_view(url_name="merchant:schema"), name="docs"),
    re_path(r"^[\s\S]*$", unknown_path),  # [\s\S], not ".": a path with an encoded newline is unknown too
]
