"""The double-entry ledger: accounts, journal transactions and postings.

An account's balance is the sum of its postings' amounts. Wallet accounts
hold what the platform owes a customer, so a deposit adds to them and the
other leg subtracts from provider clearing; the postings of a transaction
sum to zero in each currency.

On PostgreSQL the database enforces the rules no code may break (migration
0002): postings and transactions are never updated or deleted, and every
INSERT statement must leave each transaction it touches balanced, which is
why services write all postings of a transaction in one statement.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone


class Account(models.Model):
    class Kind(models.TextChoices):
        WALLET = "wallet"
        # The provider's side of deposits and payouts; negative while the
        # provider holds money that is ours to pay out.
        PROVIDER_CLEARING = "provider_clearing"
        # Withdrawn from a wallet, not yet paid out by the provider.
        PAYOUTS_IN_TRANSIT = "payouts_in_transit"
        FEES = "fees"
        # Where a balancing adjustment parks money until it is explained.
        SUSPENSE = "suspense"

    kind = models.CharField(max_length=32, choices=Kind.choices)
    currency = models.CharField(max_length=3)
    provider = models.CharField(max_length=32, blank=True, default="")
    name = models.CharField(max_length=120)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["kind", "currency", "provider"],
                condition=~Q(kind="wallet"),
                name="account_one_platform_account_per_kind",
            ),
        ]

    def __str__(self):
        return self.name


class LedgerTransaction(models.Model):
    class Kind(models.TextChoices):
        DEPOSIT_CREDIT = "deposit_credit"
        DEPOSIT_CHARGEBACK = "deposit_chargeback"
        WITHDRAWAL_HOLD = "withdrawal_hold"
        WITHDRAWAL_RELEASE = "withdrawal_release"
        PAYOUT_PAID = "payout_paid"
        PAYOUT_RETURNED = "payout_returned"
        ADJUSTMENT = "adjustment"
        REVERSAL = "reversal"

    class OperationKind(models.TextChoices):
        DEPOSIT = "deposit"
        WITHDRAWAL = "withdrawal"
        PAYOUT = "payout"

    # One business event, one key: posting the same event twice is a no-op.
    idempotency_key = models.CharField(max_length=200, unique=True)
    kind = models.CharField(max_length=32, choices=Kind.choices)
    # Which operation this transaction claims. Deliberately not a foreign
    # key: deep reconciliation must be able to find claims that point at
    # nothing.
    operation_kind = models.CharField(
        max_length=16, choices=OperationKind.choices, blank=True, default=""
    )
    operation_id = models.BigIntegerField(null=True, blank=True)
    reverses = models.ForeignKey(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    memo = models.CharField(max_length=500, blank=True, default="")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        indexes = [
            models.Index(
                fields=["operation_kind", "operation_id"], name="ledgertx_operation"
            )
        ]

    def __str__(self):
        return self.idempotency_key


class Posting(models.Model):
    transaction = models.ForeignKey(
        LedgerTransaction, on_delete=models.PROTECT, related_name="postings"
    )
    # Indexed by posting_account_amount below, not by the default FK index.
    account = models.ForeignKey(
        Account, on_delete=models.PROTECT, related_name="postings", db_index=False
    )
    amount = models.BigIntegerField(help_text="minor units, never zero")
    currency = models.CharField(max_length=3)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [
            # Covers "sum of postings per account" with an index-only scan
            # in account order: balances, reconciliation, statements.
            models.Index(
                fields=["account"], include=["amount"], name="posting_account_amount"
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=~Q(amount=0), name="posting_amount_not_zero"
            ),
        ]

    def __str__(self):
        return f"{self.account_id} {self.amount:+d} {self.currency}"
