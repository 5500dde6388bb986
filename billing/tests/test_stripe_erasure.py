"""Erasing a customer reaches Stripe: their Customer there (name, address, saved cards) is deleted after the erasure
commits, through the fake Stripe API on loopback; a Stripe outage leaves it for the task's retry, and a Customer
Stripe no longer knows counts as deleted."""

import pytest
import stripe

from accounts.erasure import customer_erase
from accounts.tests.factories import CustomerFactory
from billing import stripe_payments
from billing.models import StripeCustomer
from billing.stripe_gateway import StripeGateway

pytestmark = pytest.mark.django_db


@pytest.fixture
def ana(fake_stripe):
    customer = CustomerFactory(email="ana@example.com", first_name="Ana", last_name="Lima")
    StripeGateway().customer_id(customer)  # made at Stripe the first time she kept a card
    return customer


def test_it_deletes_the_customer_at_stripe_once_the_erasure_commits(
    ana, fake_stripe, django_capture_on_commit_callbacks
):
    stripe_id = StripeCustomer.objects.get(customer=ana).stripe_id
    assert fake_stripe.customers[stripe_id]["name"] == "Ana Lima"

    with django_capture_on_commit_callbacks(execute=False) as queued:
        customer_erase(customer=ana, requested_by="customer")
    assert stripe_id in fake_stripe.customers  # nothing went to Stripe inside the erasure's transaction

    for callback in queued:
        callback()
    assert stripe_id not in fake_stripe.customers
    assert not StripeCustomer.objects.filter(customer=ana).exists()


def test_a_stripe_outage_keeps_the_row_for_the_retry_and_a_gone_customer_counts_as_deleted(ana, fake_stripe):
    stripe_id = StripeCustomer.objects.get(customer=ana).stripe_id
    fake_stripe.down = True
    with pytest.raises(stripe.StripeError):
        stripe_payments.stripe_customers_forget(stripe_ids=[stripe_id])
    assert StripeCustomer.objects.filter(stripe_id=stripe_id).exists()

    fake_stripe.down = False
    del fake_stripe.customers[stripe_id]  # deleted at Stripe meanwhile (a retry after a lost answer)
    assert stripe_payments.stripe_customers_forget(stripe_ids=[stripe_id]) == 1
    assert not StripeCustomer.objects.filter(stripe_id=stripe_id).exists()


def test_without_stripe_keys_it_keeps_the_rows_and_says_so(ana, settings, caplog):
    settings.STRIPE_SECRET_KEY = ""
    stripe_id = StripeCustomer.objects.get(customer=ana).stripe_id

    assert stripe_payments.stripe_customers_forget(stripe_ids=[stripe_id]) == 0

    assert StripeCustomer.objects.filter(stripe_id=stripe_id).exists()
    assert "STRIPE_SECRET_KEY is not set" in caplog.text


def test_a_customer_who_never_used_stripe_queues_nothing(django_capture_on_commit_callbacks):
    bo = CustomerFactory(email="bo@example.com")
    with django_capture_on_commit_callbacks(execute=False) as queued:
        customer_erase(customer=bo, requested_by="customer")
    assert not [callback for callback in queued if "stripe" in repr(callback)]
