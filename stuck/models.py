"""Stuck finance operations: the rules that define "stuck" and the cases found.

A ``StuckRule`` says how long an item may stay in one state (per kind, state
and, optionally, provider) before it is stuck. Operators edit rules in the
admin; nothing about them is in code. Detection (stuck.services.stuck_detect)
turns every item past its rule into one ``StuckCase`` and closes the case when
the item moves on. Cases are written only by detection, in bulk; what
operators do about a case (acknowledge, assign, note) is the append-only
``StuckCaseActivity`` log, so no operator change is ever lost to a bulk write.
"""

from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils import timezone
from simple_history.models import HistoricalRecords

from finance.states import DepositState, PayoutState, WithdrawalState


class ItemKind(models.TextChoices):
    DEPOSIT = "deposit"
    WITHDRAWAL = "withdrawal"
    PAYOUT = "payout"
    # One webhook event that failed to apply; the case names its first
    # failed delivery, however often the provider retried it since.
    WEBHOOK_DELIVERY = "webhook_delivery", "webhook delivery"


# The states in which an item can wait. Succeeded deposits and completed
# withdrawals can still move (chargeback, return), but only when a customer
# or bank acts, so they are never stuck.
WAITING_STATES: dict[str, list[str]] = {
    ItemKind.DEPOSIT: [DepositState.PENDING],
    ItemKind.WITHDRAWAL: [WithdrawalState.REQUESTED, WithdrawalState.PROCESSING],
    ItemKind.PAYOUT: [PayoutState.CREATED, PayoutState.PROCESSING],
    ItemKind.WEBHOOK_DELIVERY: ["failed"],
}


class StuckRule(models.Model):
    """How long an item may wait in one state before it is a stuck case.

    A rule with a provider overrides the rule without one for that provider
    (same kind and state), so every item falls under at most one rule.
    """

    class Unit(models.TextChoices):
        MINUTES = "minutes"
        HOURS = "hours"
        DAYS = "days"

    name = models.CharField(max_length=100, unique=True)
    item_kind = models.CharField(max_length=16, choices=ItemKind.choices)
    state = models.CharField(
        max_length=16,
        help_text="the state the item waits in (a webhook delivery: failed)",
    )
    provider = models.CharField(
        max_length=32,
        blank=True,
        default="",
        help_text="empty for every provider; a provider here overrides the "
        "rule without one for that provider",
    )
    after = models.PositiveIntegerField(help_text="stuck after this long")
    unit = models.CharField(max_length=8, choices=Unit.choices)
    is_active = models.BooleanField(default=True)
    description = models.TextField(blank=True, default="")
    history = HistoricalRecords()

    class Meta:
        ordering = ["item_kind", "state", "provider"]
        constraints = [
            models.UniqueConstraint(
                fields=["item_kind", "state", "provider"], name="stuckrule_one_per_key"
            ),
            models.CheckConstraint(condition=Q(after__gt=0), name="stuckrule_after"),
        ]

    def __str__(self):
        return self.name

    @property
    def max_age(self) -> timedelta:
        return timedelta(**{str(self.unit): self.after})

    @property
    def threshold_label(self) -> str:
        return f"{self.after} {self.unit}"

    def clean(self):
        waiting = WAITING_STATES.get(ItemKind(self.item_kind), [])
        if self.state not in waiting:
            raise ValidationError(
                {"state": f"a {self.item_kind} can wait in: {', '.join(waiting)}"}
            )


class StuckCase(models.Model):
    """One item stuck in one state, from first detection until it moves on.

    Identity is (item kind, item id, state): an item that moves to another
    waiting state and gets stuck there is a new case. The same item stuck in
    the same state again (possible only after a rule was changed, since the
    state machines never go back) reopens its case, keeping its activity.
    """

    item_kind = models.CharField(max_length=16, choices=ItemKind.choices)
    item_id = models.BigIntegerField()
    state = models.CharField(max_length=16, help_text="the state it is stuck in")
    current_state = models.CharField(
        max_length=16, help_text="as of the last run; where it went when closed"
    )
    rule = models.ForeignKey(StuckRule, on_delete=models.PROTECT, related_name="+")
    provider = models.CharField(max_length=32)
    amount = models.BigIntegerField(null=True, blank=True, help_text="minor units")
    currency = models.CharField(max_length=3, blank=True, default="")
    stuck_since = models.DateTimeField(help_text="when it entered the state")
    age = models.DurationField(help_text="time in the state at the last run")
    sla_breached = models.BooleanField(
        "SLA breached",
        default=False,
        help_text="a payout or withdrawal older than the payout SLA, not yet "
        "paid, failed or returned",
    )
    first_seen_at = models.DateTimeField()
    last_seen_at = models.DateTimeField()
    opened_at = models.DateTimeField(help_text="first seen, or last reopened")
    reopen_count = models.PositiveIntegerField(default=0)
    # Which detection run last matched the case; closing picks the open
    # cases that the current run did not match.
    seen_in_run = models.UUIDField()
    closed_at = models.DateTimeField(null=True, blank=True)
    close_reason = models.CharField(max_length=200, blank=True, default="")

    class Meta:
        ordering = ["-stuck_since"]
        permissions = [
            ("work_stuckcase", "Can acknowledge, assign and note"),
            (
                "retry_stuckcase",
                "Can safely retry a stuck payout (resubmit or poll the provider)",
            ),
        ]
        constraints = [
            # The conflict target of detection's upsert.
            models.UniqueConstraint(
                fields=["item_kind", "item_id", "state"], name="stuckcase_one_per_item"
            ),
        ]
        indexes = [
            # Open cases only: the closing UPDATE, the admin's default view
            # and the report's open-case section never read closed ones.
            models.Index(
                fields=["item_kind", "stuck_since"],
                condition=Q(closed_at__isnull=True),
                name="stuckcase_open",
            ),
            # Retention purges by closed_at.
            models.Index(fields=["closed_at"], name="stuckcase_closed_at"),
        ]

    def __str__(self):
        return f"{self.item_kind} {self.item_id} stuck {self.state}"

    @property
    def is_open(self) -> bool:
        return self.closed_at is None

    def live_age(self, now=None) -> timedelta:
        """Time in the state: up to now while open, up to closing once closed."""
        end = self.closed_at or now or timezone.now()
        return end - self.stuck_since


class StuckCaseActivity(models.Model):
    """What an operator did about a case; rows are only ever added."""

    class Kind(models.TextChoices):
        ACKNOWLEDGED = "acknowledged"
        ASSIGNED = "assigned"
        NOTE = "note"
        # A safe retry (stuck/retry.py); the text says what came of it.
        RETRIED = "retried"

    case = models.ForeignKey(
        StuckCase, on_delete=models.CASCADE, related_name="activities"
    )
    kind = models.CharField(max_length=16, choices=Kind.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    text = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]
        verbose_name_plural = "stuck case activities"
        indexes = [
            models.Index(
                fields=["case", "kind", "created_at"], name="stuckactivity_case"
            )
        ]

    def __str__(self):
        return f"{self.kind} by {self.actor}"
