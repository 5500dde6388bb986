"""Offers as Chargebee plans."""

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
