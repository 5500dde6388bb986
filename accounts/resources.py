"""Customers, subscriptions and payment sources as Chargebee resources."""

from giftshop.chargebee import BOOLEAN, INTEGER, STRING, object_schema, resource_schema
from giftshop.money import to_minor_units
from offers.resources import PERIOD_UNIT, PERIODS

SUBSCRIPTION_STATUS = {"expired": "cancelled"}  # Chargebee has no `expired`: an ended subscription is cancelled


CUSTOMER_SCHEMA = resource_schema(
    "customer",
    required=["email", "created_at", "resource_version", "deleted", "card_status"],
    email=STRING,
    first_name=STRING,
    last_name=STRING,
    locale=STRING,
    created_at=INTEGER,
    updated_at=INTEGER,
    resource_version=INTEGER,
    deleted=BOOLEAN,
    card_status={"type": "string", "enum": ["valid", "no_card"]},
    preferred_currency_code=STRING,
    primary_payment_source_id=STRING,
)
SUBSCRIPTION_SCHEMA = resource_schema(
    "subscription",
    required=["plan_id", "customer_id", "status", "current_term_start", "current_term_end", "resource_version"],
    plan_id=STRING,
    plan_quantity=INTEGER,
    plan_unit_price=INTEGER,
    billing_period=INTEGER,
    billing_period_unit=PERIOD_UNIT,
    customer_id=STRING,
    status={"type": "string", "enum": ["future", "active", "non_renewing", "cancelled"]},
    current_term_start=INTEGER,
    current_term_end=INTEGER,
    start_date=INTEGER,
    started_at=INTEGER,
    next_billing_at=INTEGER,
    cancelled_at=INTEGER,
    resource_version=INTEGER,
    currency_code=STRING,
    auto_collection={"type": "string", "enum": ["on", "off"]},
    gift_id=STRING,
)
PAYMENT_SOURCE_SCHEMA = resource_schema(
    "payment_source",
    required=["customer_id", "type", "status", "card"],
    customer_id=STRING,
    type=STRING,
    reference_id=STRING,
    status=STRING,
    gateway=STRING,
    resource_version=INTEGER,
    deleted=BOOLEAN,
    card=object_schema(
        "card",
        required=["last4", "expiry_month", "expiry_year"],
        last4=STRING,
        brand=STRING,
        expiry_month={"type": "integer", "minimum": 1, "maximum": 12},
        expiry_year=INTEGER,
        masked_number=STRING,
    ),
)


def ts(when):
    return int(when.timestamp()) if when else None


def customer_resource(customer):
    default = next((pm for pm in customer.payment_methods.all() if pm.is_default), None)
    resource = {
        "id": str(customer.pk),
        "first_name": customer.first_name or None,
        "last_name": customer.last_name or None,
        "email": customer.email,
        "locale": customer.locale or None,
        "auto_collection": "on",
        "net_term_days": 0,
        "allow_direct_debit": False,
        "created_at": ts(customer.date_joined),
        "taxability": "taxable",
        "updated_at": ts(customer.date_joined),
        "pii_cleared": "active",
        "channel": "web",
        "resource_version": int(customer.date_joined.timestamp() * 1000),
        "deleted": False,
        "object": "customer",
        "card_status": "valid" if default else "no_card",
        "promotional_credits": 0,
        "refundable_credits": 0,
        "excess_payments": 0,
        "unbilled_charges": 0,
        "preferred_currency_code": customer.currency or None,
        "primary_payment_source_id": f"pm_{default.pk}" if default else None,
    }
    return {k: v for k, v in resource.items() if v is not None}


def subscription_resource(subscription):
    offer = subscription.offer
    period, unit = PERIODS[offer.period]
    status = SUBSCRIPTION_STATUS.get(subscription.status, subscription.status)
    resource = {
        "id": str(subscription.pk),
        "plan_id": offer.long_id,
        "plan_quantity": 1,
        "plan_unit_price": to_minor_units(offer.price, offer.currency),
        "billing_period": period,
        "billing_period_unit": unit,
        "customer_id": str(subscription.customer_id),
        "plan_amount": to_minor_units(offer.price, offer.currency),
        "plan_free_quantity": 0,
        "status": status,
        "current_term_start": ts(subscription.term_start),
        "current_term_end": ts(subscription.term_end),
        "created_at": ts(subscription.created_at),
        "updated_at": ts(subscription.updated_at),
        "has_scheduled_changes": False,
        "resource_version": int(subscription.updated_at.timestamp() * 1000),
        "deleted": False,
        "object": "subscription",
        "currency_code": offer.currency,
        "due_invoices_count": 0,
        "auto_collection": "on" if subscription.auto_renew else "off",
    }
    if subscription.status == "future":
        resource["start_date"] = ts(subscription.term_start)
    else:
        resource["started_at"] = resource["activated_at"] = ts(subscription.term_start)
    if subscription.status == "active" and subscription.auto_renew:
        resource["next_billing_at"] = ts(subscription.term_end)
    if subscription.cancelled_at:
        resource["cancelled_at"] = ts(subscription.cancelled_at)
    gift = next(iter(subscription.gifts.all()), None)
    if gift is not None:
        resource["gift_id"] = str(gift.pk)
    return resource


def payment_source_resource(method):
    return {
        "id": f"pm_{method.pk}",
        "customer_id": str(method.customer_id),
        "type": "card",
        "reference_id": method.reference_id,
        "status": "valid",
        "gateway": method.gateway,
        "gateway_account_id": f"gw_{method.gateway}",
        "created_at": ts(method.created_at),
        "updated_at": ts(method.created_at),
        "resource_version": int(method.created_at.timestamp() * 1000),
        "deleted": False,
        "object": "payment_source",
        "card": {
            "last4": method.last4,
            "brand": method.brand.lower(),
            "funding_type": "credit",
            "expiry_month": method.exp_month,
            "expiry_year": method.exp_year,
            "masked_number": f"************{method.last4}",
            "object": "card",
        },
    }
