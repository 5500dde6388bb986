"""Invoices as Chargebee resources (amounts in minor units)."""

from giftshop.chargebee import BOOLEAN, INTEGER, STRING, object_schema, resource_schema
from giftshop.money import to_minor_units

INVOICE_SCHEMA = resource_schema(
    "invoice",
    required=["customer_id", "status", "date", "currency_code", "total", "amount_due", "is_gifted", "line_items"],
    customer_id=STRING,
    subscription_id=STRING,
    status={"type": "string", "enum": ["paid", "payment_due"]},
    date=INTEGER,
    paid_at=INTEGER,
    currency_code=STRING,
    sub_total=INTEGER,
    total=INTEGER,
    tax=INTEGER,
    amount_paid=INTEGER,
    amount_due=INTEGER,
    amount_refunded=INTEGER,
    resource_version=INTEGER,
    is_gifted=BOOLEAN,
    term_finalized=BOOLEAN,
    line_items={
        "type": "array",
        "items": object_schema(
            "line_item",
            required=["id", "quantity", "amount"],
            id=STRING,
            unit_amount=INTEGER,
            quantity=INTEGER,
            amount=INTEGER,
            description=STRING,
            entity_type=STRING,
            entity_id=STRING,
            subscription_id=STRING,
        ),
    },
    discounts={"type": "array", "items": object_schema("discount", required=["amount"], amount=INTEGER)},
)


def ts(when):
    return int(when.timestamp()) if when else None


def invoice_resource(invoice, *, subscription_id=None):
    cur = invoice.currency
    minor = lambda amount: to_minor_units(amount, cur)  # noqa: E731
    resource = {
        "id": str(invoice.pk),
        "customer_id": str(invoice.customer_id),
        "recurring": False,
        "status": "paid" if invoice.paid_at else "payment_due",
        "price_type": "tax_inclusive",
        "date": ts(invoice.issued_at),
        "due_date": ts(invoice.issued_at),
        "net_term_days": 0,
        "currency_code": cur,
        "exchange_rate": 1.0,
        "sub_total": minor(invoice.subtotal),
        "total": minor(invoice.total),
        "tax": minor(invoice.tax),
        "amount_paid": minor(invoice.total) if invoice.paid_at else 0,
        "amount_adjusted": 0,
        "write_off_amount": 0,
        "credits_applied": 0,
        "amount_due": 0 if invoice.paid_at else minor(invoice.total),
        "paid_at": ts(invoice.paid_at),
        "updated_at": ts(invoice.issued_at),
        "resource_version": int(invoice.issued_at.timestamp() * 1000),
        "deleted": False,
        "object": "invoice",
        "first_invoice": True,
        "amount_to_collect": 0,
        "round_off_amount": 0,
        "has_advance_charges": False,
        "base_currency_code": cur,
        "is_gifted": invoice.is_gifted,
        "term_finalized": invoice.term_finalized,
        "amount_refunded": minor(invoice.amount_refunded),
        "line_items": [
            {
                "id": f"li_{line.pk}",
                "date_from": ts(invoice.issued_at),
                "date_to": ts(invoice.issued_at),
                "unit_amount": minor(line.unit_amount),
                "quantity": line.quantity,
                "amount": minor(line.amount),
                "pricing_model": "flat_fee",
                "is_taxed": False,
                "tax_amount": 0,
                "object": "line_item",
                "customer_id": str(invoice.customer_id),
                "description": line.description,
                "entity_type": line.entity_type,
                "entity_id": line.entity_id,
                "discount_amount": 0,
                "item_level_discount_amount": 0,
                **({"subscription_id": subscription_id} if subscription_id else {}),
            }
            for line in invoice.lines.all()
        ],
        "discounts": [
            {
                "amount": minor(invoice.discount),
                "description": "Coupons",
                "entity_type": "document_level_coupon",
                "object": "discount",
            }
        ]
        if invoice.discount
        else [],
    }
    if subscription_id:
        resource["subscription_id"] = subscription_id
    return {k: v for k, v in resource.items() if v is not None}
