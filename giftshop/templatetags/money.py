"""`{{ amount|money:currency }}`: an amount in the active language's way of writing it ("1.234,56 €" in German,
"€1,234.56" in English). A builtin (settings.TEMPLATES), so every template, email or page, has it without a load."""

from django import template

from giftshop import money as money_format

register = template.Library()


@register.filter
def money(amount, currency):
    return money_format.money(amount, currency)
