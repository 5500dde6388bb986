"""The customer's orders in their personal data copy (accounts/personal_data.py)."""


def orders(customer):
    return [
        {
            "id": order.pk,
            "offer": order.offer.title,
            "status": order.status,
            "total_price": order.total_price,
            "currency": order.currency,
            "as_gift": order.buy_as_gift,
            "created_at": order.created_at,
            "paid_at": order.paid_at,
        }
        for order in customer.orders.select_related("offer").order_by("created_at", "pk")
    ]
