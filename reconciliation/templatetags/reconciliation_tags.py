from django import template

from finance.money import format_amount

register = template.Library()


@register.filter
def money(amount, currency):
    """``{{ line.amount|money:line.currency }}`` -> ``1,234.56 EUR``."""
    if amount is None or not currency:
        return "-" if amount is None else amount
    return format_amount(amount, currency)
