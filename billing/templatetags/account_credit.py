"""`{% account_credit_balances customer as balances %}`: the customer's account credit per currency (issue 16), for
pages of layers below billing (the account page) that may not import it."""

from django import template

from billing.credit import credit_balances, credit_spent_on

register = template.Library()


@register.simple_tag
def account_credit_balances(customer):
    """[(currency, amount), …] of the customer's positive balances; empty for none (or a visitor)."""
    if customer is None or not getattr(customer, "is_authenticated", False):
        return []
    return sorted(credit_balances(customer=customer).items())


@register.simple_tag
def invoice_credit_used(invoice):
    """How much account credit paid towards the invoice (0: none), for receipts' "paid with account credit" line."""
    if not invoice:
        return 0
    return credit_spent_on(invoice=invoice)
