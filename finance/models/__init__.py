from finance.models.customers import Customer, Wallet
from finance.models.ledger import Account, LedgerTransaction, Posting
from finance.models.operations import (
    Deposit,
    DepositTransition,
    Operation,
    Payout,
    PayoutAttempt,
    PayoutTransition,
    Withdrawal,
    WithdrawalTransition,
)
from finance.models.webhooks import WebhookDelivery, WebhookEvent

__all__ = [
    "Account",
    "Customer",
    "Deposit",
    "DepositTransition",
    "LedgerTransaction",
    "Operation",
    "Payout",
    "PayoutAttempt",
    "PayoutTransition",
    "Posting",
    "Wallet",
    "WebhookDelivery",
    "WebhookEvent",
    "Withdrawal",
    "WithdrawalTransition",
]
