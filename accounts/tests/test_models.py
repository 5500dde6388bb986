import zoneinfo

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.urls import reverse

from accounts.models import Customer, Transaction
from accounts.tests.factories import CustomerFactory, PaymentMethodFactory, SubscriptionFactory
from giftshop.models import SiteSettings
from offers.tests.factories import OfferFactory

pytestmark = pytest.mark.django_db


def test_a_customer_logs_in_with_their_email_in_any_case(client):
    Customer.objects.create_user("Reader@Example.com", "a good long password")
    assert client.login(username="READER@example.com", password="a good long password")


def test_a_customer_created_without_a_password_cannot_log_in():
    customer = Customer.objects.create_user("nopass@example.com")
    assert not customer.has_usable_password()


def test_emails_are_unique_ignoring_case():
    Customer.objects.create_user("same@example.com")
    with pytest.raises(IntegrityError):
        Customer.objects.create(email="SAME@example.com")


def test_a_customer_without_a_time_zone_uses_the_sites():
    site = SiteSettings.load()
    site.time_zone = "Europe/Berlin"
    site.save(update_fields=["time_zone"])
    assert CustomerFactory(time_zone="").zone() == zoneinfo.ZoneInfo("Europe/Berlin")
    assert CustomerFactory(time_zone="Asia/Tokyo").zone() == zoneinfo.ZoneInfo("Asia/Tokyo")


def test_an_unknown_time_zone_is_a_validation_error():
    with pytest.raises(ValidationError, match="not a known IANA time zone"):
        CustomerFactory.build(time_zone="Mars/Olympus").full_clean()


def test_a_customer_has_at_most_one_default_payment_method():
    customer = CustomerFactory()
    PaymentMethodFactory(customer=customer, is_default=True)
    PaymentMethodFactory(customer=customer, is_default=False)
    with pytest.raises(IntegrityError):
        PaymentMethodFactory(customer=customer, is_default=True)


def test_a_subscription_term_must_end_after_it_starts():
    subscription = SubscriptionFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        type(subscription).objects.filter(pk=subscription.pk).update(term_end=subscription.term_start)


def test_a_subscription_status_outside_the_list_is_refused():
    with pytest.raises(IntegrityError, match="subscription_status_valid"):
        SubscriptionFactory(status="paused")


def test_transaction_ids_are_cleeng_shaped():
    customer, offer = CustomerFactory(), OfferFactory()
    tx = Transaction.objects.create(
        customer=customer, offer=offer, amount="9.99", currency="USD", target_type="giftId", target_id="12"
    )
    assert tx.transaction_id == f"T{tx.pk:09d}"


def test_admin_pages_for_accounts_load(client):
    client.force_login(CustomerFactory(is_staff=True, is_superuser=True))
    SubscriptionFactory()
    for name in ("customer", "subscription", "paymentmethod", "transaction"):
        assert client.get(reverse(f"admin:accounts_{name}_changelist")).status_code == 200
