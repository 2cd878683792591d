"""What the sandbox provider remembers: its own payouts and deposits, the
idempotency keys it was sent, the webhooks it sends, and the settlement
lines it reports. None of it is ours; it plays the provider's side.
"""

import uuid

from django.db import models
from django.utils import timezone


def new_payout_id() -> str:
    return f"po_{uuid.uuid4().hex[:24]}"


def new_deposit_id() -> str:
    return f"pi_{uuid.uuid4().hex[:24]}"


def new_event_id() -> str:
    return f"evt_{uuid.uuid4().hex[:24]}"


class Behaviour(models.TextChoices):
    """How the sandbox treats one payout or deposit (see sandbox.services)."""

    SUCCEED = "succeed"  # accepted, settles after SANDBOX_SETTLE_AFTER_SECONDS
    FAIL = "fail"  # accepted, then fails (payout.failed / deposit.failed)
    REJECT = "reject"  # refused at once with 422, nothing created
    TIMEOUT = "timeout"  # created, answered after SANDBOX_TIMEOUT_SECONDS
    NEVER_SETTLE = "never_settle"  # accepted, settles only when told to


class SandboxPayout(models.Model):
    class Status(models.TextChoices):
        PROCESSING = "processing"
        PAID = "paid"
        FAILED = "failed"
        RETURNED = "returned"

    provider_reference = models.CharField(
        max_length=40, unique=True, default=new_payout_id
    )
    # The merchant's own id for the payout (our Payout.reference).
    reference = models.CharField(max_length=100, db_index=True)
    amount = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    destination_label = models.CharField(max_length=120)
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.PROCESSING
    )
    behaviour = models.CharField(max_length=16, choices=Behaviour.choices)
    failure_code = models.CharField(max_length=64, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)
    settled_at = models.DateTimeField(null=True, blank=True)
    returned_at = models.DateTimeField(null=True, blank=True)

    def __str__(self):
        return f"{self.provider_reference} ({self.status})"


class SandboxDeposit(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending"
        SUCCEEDED = "succeeded"
        FAILED = "failed"
        CHARGED_BACK = "charged_back"

    provider_reference = models.CharField(
        max_length=40, unique=True, default=new_deposit_id
    )
    reference = models.CharField(max_length=100, db_index=True)
    amount = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.PENDING
    )
    behaviour = models.CharField(max_length=16, choices=Behaviour.choices)
    failure_code = models.CharField(max_length=64, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)
    settled_at = models.DateTimeField(null=True, blank=True)
    charged_back_at = models.DateTimeField(null=True, blank=True)

    def __str__(self):
        return f"{self.provider_reference} ({self.status})"


class SandboxIdempotencyKey(models.Model):
    """One Idempotency-Key and the answer given to it.

    The row is inserted, in flight, before the request is processed: its
    unique key is what turns a concurrent second request into a 409.
    """

    class State(models.TextChoices):
        IN_FLIGHT = "in_flight"
        DONE = "done"

    key = models.CharField(max_length=255, unique=True)
    # sha256 of method, path and the parsed JSON body.
    fingerprint = models.CharField(max_length=64)
    state = models.CharField(
        max_length=16, choices=State.choices, default=State.IN_FLIGHT
    )
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    response = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    def __str__(self):
        return f"{self.key} ({self.state})"


class SandboxPlan(models.Model):
    """A behaviour chosen in advance for whatever names this reference.

    Lets a test or the demo decide how the sandbox treats a payout that our
    own code submits, without our code carrying any sandbox switch.
    """

    reference = models.CharField(max_length=100, unique=True)
    behaviour = models.CharField(max_length=16, choices=Behaviour.choices)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self):
        return f"{self.reference}: {self.behaviour}"


class SandboxSettlementLine(models.Model):
    """One money movement as the daily settlement statement reports it.

    Written when the money moves. Planted discrepancies edit these rows
    (``note`` says what was planted), and ``omitted`` lines are left out of
    the statement.
    """

    class Type(models.TextChoices):
        PAYOUT = "payout"
        DEPOSIT = "deposit"
        PAYOUT_RETURN = "payout_return"
        CHARGEBACK = "chargeback"

    provider_reference = models.CharField(max_length=40, db_index=True)
    type = models.CharField(max_length=16, choices=Type.choices)
    amount = models.BigIntegerField(help_text="minor units, positive")
    currency = models.CharField(max_length=3)
    status = models.CharField(max_length=16)
    settled_at = models.DateTimeField(db_index=True)
    omitted = models.BooleanField(default=False)
    note = models.CharField(max_length=200, blank=True, default="")

    class Meta:
        ordering = ["settled_at", "id"]

    def __str__(self):
        return f"{self.type} {self.provider_reference} {self.amount} {self.currency}"


class SandboxWebhook(models.Model):
    """One event the sandbox sends to the merchant, retried until taken."""

    class Status(models.TextChoices):
        PENDING = "pending"
        DELIVERED = "delivered"
        GIVEN_UP = "given_up"

    event_id = models.CharField(max_length=40, unique=True, default=new_event_id)
    type = models.CharField(max_length=64)
    payload = models.JSONField()
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.PENDING
    )
    attempts = models.PositiveIntegerField(default=0)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=300, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return f"{self.type} {self.event_id} ({self.status})"


class SandboxWebhookAttempt(models.Model):
    """The sandbox's delivery log: one row per HTTP POST of a webhook."""

    webhook = models.ForeignKey(
        SandboxWebhook, on_delete=models.CASCADE, related_name="delivery_attempts"
    )
    started_at = models.DateTimeField(default=timezone.now)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.CharField(max_length=300, blank=True, default="")
    duration_ms = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["started_at", "id"]

    def __str__(self):
        return f"{self.webhook_id} -> {self.status_code or self.error}"
