"""Money is an integer count of minor units plus an ISO 4217 code.

Floats never carry an amount. These checks are the single place where input
from a form, a webhook or a command becomes an amount the ledger accepts.
"""

from django.conf import settings

# ISO 4217 codes with the number of digits after the decimal point.
MINOR_UNIT_DIGITS = {
    "AED": 2, "AUD": 2, "BGN": 2, "BHD": 3, "BRL": 2, "CAD": 2, "CHF": 2,
    "CNY": 2, "CZK": 2, "DKK": 2, "EUR": 2, "GBP": 2, "HKD": 2, "HUF": 2,
    "INR": 2, "ISK": 0, "JPY": 0, "KRW": 0, "KWD": 3, "MXN": 2, "NOK": 2,
    "NZD": 2, "PLN": 2, "RON": 2, "SEK": 2, "SGD": 2, "TRY": 2, "USD": 2,
    "ZAR": 2,
}  # fmt: skip

# Far above any single operation; keeps sums of millions of postings in bigint.
MAX_AMOUNT = 10**13


class MoneyError(ValueError):
    """An amount or currency that the platform cannot accept."""


def validate_amount(amount) -> int:
    """Return ``amount`` if it is a positive integer of minor units."""
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise MoneyError(
            f"amount must be an integer count of minor units, "
            f"not {type(amount).__name__}"
        )
    if amount <= 0:
        raise MoneyError("amount must be positive")
    if amount > MAX_AMOUNT:
        raise MoneyError(f"amount must not exceed {MAX_AMOUNT}")
    return amount


def validate_currency(code) -> str:
    """Return ``code`` if it is a supported ISO 4217 currency."""
    if not isinstance(code, str) or code not in MINOR_UNIT_DIGITS:
        raise MoneyError(f"unknown currency {code!r}")
    if code not in settings.SUPPORTED_CURRENCIES:
        raise MoneyError(f"currency {code} is not supported on this platform")
    return code


def format_amount(amount: int, currency: str) -> str:
    """``123456, "EUR"`` -> ``"1,234.56 EUR"``, for people, never for parsing."""
    digits = MINOR_UNIT_DIGITS.get(currency, 2)
    sign = "-" if amount < 0 else ""
    units, minor = divmod(abs(amount), 10**digits)
    text = f"{units:,}"
    if digits:
        text += f".{minor:0{digits}d}"
    return f"{sign}{text} {currency}"
