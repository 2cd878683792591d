"""Errors that finance services raise for input they will not act on.

Each carries a message fit to show an operator or return to an API caller;
none of them leaves anything half-written behind (services run in one
database transaction).
"""

from finance.money import MoneyError
from finance.states import IllegalTransition


class FinanceError(Exception):
    pass


class InsufficientFunds(FinanceError):
    pass


class UnbalancedTransaction(FinanceError):
    pass


class IdempotencyConflict(FinanceError):
    """The same idempotency key arrived with different content."""


class Mismatch(FinanceError):
    """An event disagrees with the operation it names (amount, currency)."""


__all__ = [
    "FinanceError",
    "IdempotencyConflict",
    "IllegalTransition",
    "InsufficientFunds",
    "Mismatch",
    "MoneyError",
    "UnbalancedTransaction",
]
