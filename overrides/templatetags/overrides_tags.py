from django import template

from finance.money import format_amount

register = template.Library()


@register.filter
def money(amount, currency):
    """``{{ posting.amount|money:posting.currency }}`` -> ``-50.00 EUR``."""
    if amount is None:
        return ""
    return format_amount(int(amount), currency)


@register.filter
def timedelta_words(delta):
    """``timedelta(hours=1, minutes=5)`` -> ``1 h 5 min``."""
    minutes = int(delta.total_seconds() // 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if hours else f"{minutes} min"
