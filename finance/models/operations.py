"""Deposits, withdrawals and the payouts that execute withdrawals.

Each is an explicit state machine (finance/states.py). A state only changes
through finance.services, which locks the row, checks the move, records a
transition and writes the move's ledger postings in the same transaction.
``version`` grows by one on every move, so a decision taken on an old
version (an override approval, say) can be recognised as stale.
"""

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from simple_history.models import HistoricalRecords

from finance.states import DepositState, PayoutState, WithdrawalState


class Operation(models.Model):
    reference = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    customer = models.ForeignKey(
        "finance.Customer", on_delete=models.PROTECT, related_name="+"
    )
    wallet = models.ForeignKey(
        "finance.Wallet", on_delete=models.PROTECT, related_name="+"
    )
    amount = models.BigIntegerField(help_text="minor units")
    currency = models.CharField(max_length=3)
    provider = models.CharField(max_length=32)
    # NULL until the provider answers, so that the unique constraint below
    # ignores operations the provider has not seen yet.
    provider_reference = models.CharField(  # noqa: DJ001
        max_length=100, null=True, blank=True, help_text="the provider's id"
    )
    state_changed_at = models.DateTimeField(default=timezone.now)
    version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    state: str  # each concrete operation declares it with its own choices

    class Meta:
        abstract = True

    def __str__(self):
        return f"{type(self).__name__.lower()} {self.pk} ({self.state})"


def _operation_constraints(name: str) -> list:
    return [
        models.CheckConstraint(
            condition=Q(amount__gt=0), name=f"{name}_amount_positive"
        ),
        models.UniqueConstraint(
            fields=["provider", "provider_reference"],
            name=f"{name}_provider_reference_unique",
        ),
    ]


def _reference_index(name: str) -> list:
    # "Which operation is the provider's po_123?": the admin's search and
    # support questions name the reference without the provider, which the
    # unique (provider, provider_reference) index cannot serve alone.
    return [
        models.Index(
            fields=["provider_reference"],
            condition=Q(provider_reference__isnull=False),
            name=f"{name}_provider_reference",
        )
    ]


class Deposit(Operation):
    state = models.CharField(
        max_length=16, choices=DepositState.choices, default=DepositState.PENDING
    )
    history = HistoricalRecords()

    class Meta:
        constraints = _operation_constraints("deposit")
        indexes = [
            models.Index(
                fields=["state", "state_changed_at"], name="deposit_state_age"
            ),
            *_reference_index("deposit"),
        ]


class Withdrawal(Operation):
    fee = models.BigIntegerField(default=0, help_text="minor units, kept by us")
    # Only ever the masked form (bank name and last digits); the full account
    # number stays with the provider.
    destination_label = models.CharField(max_length=120)
    state = models.CharField(
        max_length=16,
        choices=WithdrawalState.choices,
        default=WithdrawalState.REQUESTED,
    )
    history = HistoricalRecords()

    class Meta:
        constraints = [
            *_operation_constraints("withdrawal"),
            models.CheckConstraint(condition=Q(fee__gte=0), name="withdrawal_fee"),
        ]
        indexes = [
            models.Index(
                fields=["state", "state_changed_at"], name="withdrawal_state_age"
            ),
            *_reference_index("withdrawal"),
        ]


class Payout(Operation):
    """The provider transfer that executes one withdrawal.

    ``idempotency_key`` is sent with every submission attempt, so however
    often a payout is retried the provider moves the money once.
    """

    withdrawal = models.OneToOneField(
        Withdrawal, on_delete=models.PROTECT, related_name="payout"
    )
    idempotency_key = models.CharField(max_length=100, unique=True)
    state = models.CharField(
        max_length=16, choices=PayoutState.choices, default=PayoutState.CREATED
    )
    attempt_count = models.PositiveIntegerField(default=0)
    last_error = models.CharField(max_length=500, blank=True, default="")
    submitted_at = models.DateTimeField(null=True, blank=True)
    settled_at = models.DateTimeField(null=True, blank=True)
    history = HistoricalRecords()

    class Meta:
        constraints = _operation_constraints("payout")
        indexes = [
            models.Index(fields=["state", "state_changed_at"], name="payout_state_age"),
            *_reference_index("payout"),
        ]


class PayoutAttempt(models.Model):
    """One HTTP submission of a payout to the provider."""

    class Outcome(models.TextChoices):
        IN_FLIGHT = "in_flight"
        ACCEPTED = "accepted"
        REJECTED = "rejected"
        CONFLICT = "conflict"
        TIMEOUT = "timeout"
        ERROR = "error"

    payout = models.ForeignKey(
        Payout, on_delete=models.CASCADE, related_name="attempts"
    )
    number = models.PositiveIntegerField()
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    outcome = models.CharField(
        max_length=16, choices=Outcome.choices, default=Outcome.IN_FLIGHT
    )
    http_status = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.CharField(max_length=500, blank=True, default="")
    triggered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )

    class Meta:
        ordering = ["payout", "number"]
        constraints = [
            models.UniqueConstraint(
                fields=["payout", "number"], name="payout_attempt_number"
            )
        ]

    def __str__(self):
        return f"payout {self.payout_id} attempt {self.number}: {self.outcome}"


class Transition(models.Model):
    """One state change of an operation: when, from, to, who, why."""

    from_state = models.CharField(max_length=16)
    to_state = models.CharField(max_length=16)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    # What made the move: "webhook", "provider", "system", "admin", "override".
    via = models.CharField(max_length=32)
    reason = models.CharField(max_length=500)
    ledger_transaction = models.ForeignKey(
        "finance.LedgerTransaction",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        abstract = True
        ordering = ["created_at", "id"]

    def __str__(self):
        return f"{self.from_state} -> {self.to_state}"


class DepositTransition(Transition):
    operation = models.ForeignKey(
        Deposit, on_delete=models.CASCADE, related_name="transitions"
    )


class WithdrawalTransition(Transition):
    operation = models.ForeignKey(
        Withdrawal, on_delete=models.CASCADE, related_name="transitions"
    )


class PayoutTransition(Transition):
    operation = models.ForeignKey(
        Payout, on_delete=models.CASCADE, related_name="transitions"
    )
