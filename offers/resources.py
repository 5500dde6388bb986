"""Offers as Chargebee plans."""

from giftshop.chargebee import BOOLEAN, INTEGER, STRING, resource_schema
from giftshop.money import to_minor_units

# period -> (Chargebee period, period_unit)
PERIODS = {
    "week": (1, "week"),
    "month": (1, "month"),
    "3months": (3, "month"),
    "6months": (6, "month"),
    "year": (1, "year"),
    "season": (1, "year"),
}
PERIOD_UNIT = {"type": "string", "enum": sorted({unit for _, unit in PERIODS.values()})}
PLAN_SCHEMA = resource_schema(
    "plan",
    required=["name", "price", "currency_code", "period", "period_unit", "status", "giftable", "resource_version"],
    name=STRING,
    description=STRING,
    price=INTEGER,
    currency_code=STRING,
    period=INTEGER,
    period_unit=PERIOD_UNIT,
    status={"type": "string", "enum": ["active", "archived"]},
    giftable=BOOLEAN,
    resource_version=INTEGER,
    meta_data={"type": "object"},
)


def plan_resource(offer):
    period, unit = PERIODS[offer.period]
    return {
        "id": offer.long_id,
        "name": offer.title,
        "invoice_name": offer.title,
        "description": offer.description,
        "price": to_minor_units(offer.price, offer.currency),
        "currency_code": offer.currency,
        "period": period,
        "period_unit": unit,
        "pricing_model": "flat_fee",
        "charge_model": "flat_fee",
        "free_quantity": 0,
        "status": "active" if offer.active else "archived",
        "enabled_in_hosted_pages": True,
        "enabled_in_portal": True,
        "addon_applicability": "all",
        "is_shippable": False,
        "taxable": True,
        "giftable": offer.giftable,
        "updated_at": int(offer.updated_at.timestamp()),
        "resource_version": int(offer.updated_at.timestamp() * 1000),
        "object": "plan",
        "meta_data": {"tags": offer.tags},
    }
