"""A database built by the previous version (before the outbox, the site plumbing and the merchant events moved
apps, and before subscriptions said themselves whether they renew) migrates forward and keeps every row."""

from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

# The last migration of each app in the version before issue 15 (apps that did not exist yet: none).
PREVIOUS = [
    ("accounts", "0005_subscription_renewal_retries"),
    ("billing", "0002_order_checkout_key"),
    ("gifts", "0005_timeline_repeatable_unclaimed"),
    ("offers", "0002_offer_same_access_policy"),
    ("emails", None),
    ("giftshop", None),
]
WHEN = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)


def migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    targets = targets or executor.loader.graph.leaf_nodes()
    executor.migrate(targets)
    return executor.loader.project_state([node for node in targets if node[1]]).apps


def fill_as_the_previous_version_did(apps):
    Customer, Subscription = apps.get_model("accounts", "Customer"), apps.get_model("accounts", "Subscription")
    Offer, Gift = apps.get_model("offers", "Offer"), apps.get_model("gifts", "Gift")
    offer = Offer.objects.create(
        short_id="S100000001", title="Premium", period="month", price="9.99", currency="USD", giftable=True
    )
    gifter = Customer.objects.create(email="gifter@example.com", password="!")
    receiver = Customer.objects.create(email="robin@example.com", password="!")

    def subscription(customer):
        return Subscription.objects.create(
            customer=customer, offer=offer, status="future", term_start=WHEN, term_end=WHEN + timedelta(days=30)
        )

    merchant_subscription, bought = subscription(receiver), subscription(gifter)
    gift = Gift.objects.create(
        source="merchant", code_digest="d" * 64, code_last4="ABCD", gifter=gifter, offer=offer,
        recipient_email=receiver.email, receiver=receiver, scheduled_at=WHEN, subscription=merchant_subscription,
    )  # fmt: skip
    apps.get_model("gifts", "Email").objects.create(
        key=f"gift:{gift.pk}:delivery", kind="gift_delivery", to_email=receiver.email, gift=gift, status="sent",
        sent_at=WHEN, provider_message_id="<m1@example.com>",
    )  # fmt: skip
    event = apps.get_model("gifts", "Event").objects.create(
        event_type="gift_scheduled", gift=gift, occurred_at=WHEN, content={"gift": {"id": str(gift.pk)}}
    )
    endpoint = apps.get_model("gifts", "WebhookEndpoint").objects.create(
        url="https://merchant.example/hook", secret="s"
    )
    apps.get_model("gifts", "WebhookDelivery").objects.create(event=event, endpoint=endpoint, status="delivered")
    apps.get_model("accounts", "SiteSettings").objects.create(
        pk=1, default_claim_expiry_days=90, time_zone="Europe/Berlin"
    )
    key = apps.get_model("accounts", "ApiKey").objects.create(
        name="Back office", prefix="live_abc", key_digest="k" * 64
    )
    apps.get_model("accounts", "IdempotencyRecord").objects.create(
        api_key=key, key="retry-1", method="POST", path="/api/v2/gifts", fingerprint="f" * 64, status_code=200
    )
    return gift.pk, merchant_subscription.pk, bought.pk


@pytest.mark.django_db(transaction=True)
def test_a_database_made_by_the_previous_version_migrates_forward_with_every_row():
    try:
        gift_id, merchant_subscription_id, bought_id = fill_as_the_previous_version_did(migrate(PREVIOUS))
        apps = migrate(None)
    finally:
        migrate(None)  # whatever happened, the next test gets the current schema

    Email, Event = apps.get_model("emails", "Email"), apps.get_model("giftshop", "Event")
    email = Email.objects.get(key=f"gift:{gift_id}:delivery")
    assert (email.gift_id, email.status, email.provider_message_id) == (gift_id, "sent", "<m1@example.com>")
    event = Event.objects.get(gift_id=gift_id)
    assert event.deliveries.get().endpoint.url == "https://merchant.example/hook"
    site = apps.get_model("giftshop", "SiteSettings").objects.get(pk=1)
    assert (site.default_claim_expiry_days, site.time_zone) == (90, "Europe/Berlin")
    record = apps.get_model("giftshop", "IdempotencyRecord").objects.get(key="retry-1")
    assert record.api_key.name == "Back office"
    Subscription = apps.get_model("accounts", "Subscription")
    assert Subscription.objects.get(pk=merchant_subscription_id).renewable is False  # a merchant gift never renews
    assert Subscription.objects.get(pk=bought_id).renewable is True
    # Permissions and admin history follow the moved models.
    assert ContentType.objects.filter(app_label="emails", model="email").exists()
    assert not ContentType.objects.filter(app_label="gifts", model__in=["email", "event", "webhookendpoint"]).exists()
    assert not ContentType.objects.filter(app_label="accounts", model__in=["sitesettings", "apikey"]).exists()
