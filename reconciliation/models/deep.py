"""Deep reconciliation: the weekly full scan of the ledger and its tickets.

A ``DeepScan`` proves the invariants of docs/architecture.md over the whole
ledger. Its work is cut into ``ScanRange`` rows (one check over one slice of
ids) that any number of workers claim; each range leaves ``Finding`` rows for
what it saw wrong. When every range is done the findings open, extend or
close ``ReconciliationTicket`` rows, and each ticket change may be pushed to
an external tracker as a ``TicketDelivery``.

The scan itself lives in reconciliation/services/deep.py, the SQL of each
check in reconciliation/checks.py.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from simple_history.models import HistoricalRecords


class Invariant(models.TextChoices):
    WALLET_BALANCE = "wallet_balance", "wallet balance = sum of its postings"
    TRANSACTION_BALANCED = "transaction_balanced", "transaction sums to zero"
    POSTING_CURRENCY = "posting_currency", "posting currency = account currency"
    POSTING_ACCOUNT = "posting_account", "posting's account exists"
    POSTING_TRANSACTION = "posting_transaction", "posting's transaction exists"
    OPERATION_TRANSACTION = (
        "operation_transaction",
        "operation has the transactions its state implies",
    )
    TRANSACTION_CLAIM = (
        "transaction_claim",
        "transaction claims an operation in a matching state",
    )
    PLATFORM_BALANCE = "platform_balance", "platform account ends where ops say"


class Check(models.TextChoices):
    """One kind of range query; each proves the invariants in CHECK_INVARIANTS."""

    WALLETS = "wallets"
    JOURNAL = "journal"
    DEPOSITS = "deposits"
    WITHDRAWALS = "withdrawals"
    PAYOUTS = "payouts"
    PLATFORM = "platform"


_OPERATION_INVARIANTS = frozenset(
    {Invariant.OPERATION_TRANSACTION, Invariant.TRANSACTION_CLAIM}
)
CHECK_INVARIANTS: dict[str, frozenset[str]] = {
    Check.WALLETS: frozenset({Invariant.WALLET_BALANCE}),
    Check.JOURNAL: frozenset(
        {
            Invariant.TRANSACTION_BALANCED,
            Invariant.POSTING_CURRENCY,
            Invariant.POSTING_ACCOUNT,
            Invariant.POSTING_TRANSACTION,
            Invariant.TRANSACTION_CLAIM,
        }
    ),
    Check.DEPOSITS: _OPERATION_INVARIANTS,
    Check.WITHDRAWALS: _OPERATION_INVARIANTS,
    Check.PAYOUTS: _OPERATION_INVARIANTS,
    Check.PLATFORM: frozenset({Invariant.PLATFORM_BALANCE}),
}


class SubjectType(models.TextChoices):
    WALLET = "wallet"
    ACCOUNT = "account"
    TRANSACTION = "transaction"
    OPERATION = "operation"


class DeepScan(models.Model):
    """One full scan, possibly interrupted and resumed several times.

    The progress counters grow in the transaction that marks a range done,
    so the admin and the terminal read them live without touching ranges.
    """

    class Status(models.TextChoices):
        RUNNING = "running"
        INTERRUPTED = "interrupted"
        DONE = "done"

    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.RUNNING
    )
    # Which checks this scan runs; a scan of every check is a "full" scan,
    # the only kind that may close tickets of every invariant.
    checks = models.JSONField(default=list)
    via = models.CharField(max_length=32, help_text="command, beat, admin, bench")
    # False for a dry run: findings are recorded, tickets left alone.
    settle_tickets = models.BooleanField(default=True)
    database_alias = models.CharField(max_length=32, default="default")
    started_at = models.DateTimeField(default=timezone.now, db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Each start or resume is one run; a run reads one exported snapshot.
    runs = models.PositiveIntegerField(default=0)
    snapshot_id = models.CharField(max_length=64, blank=True, default="")
    ranges_total = models.PositiveIntegerField(default=0)
    ranges_done = models.PositiveIntegerField(default=0)
    rows_scanned = models.BigIntegerField(default=0)
    findings_count = models.PositiveIntegerField(default=0)
    tickets_opened = models.PositiveIntegerField(default=0)
    tickets_updated = models.PositiveIntegerField(default=0)
    tickets_closed = models.PositiveIntegerField(default=0)
    error = models.CharField(max_length=500, blank=True, default="")

    class Meta:
        ordering = ["-started_at"]
        permissions = [("resume_deepscan", "Can resume an interrupted deep scan")]

    def __str__(self):
        return f"deep scan {self.pk} ({self.status})"

    @property
    def is_full(self) -> bool:
        return set(self.checks) == set(Check.values)


class ScanRange(models.Model):
    """One check over ids ``lo`` to ``hi`` inclusive: one aggregate query.

    Workers claim a range with a conditional UPDATE that sets a fresh
    ``claim_token``; only the holder of the current token may mark it done,
    so a range reclaimed after its lease expired is never counted twice.
    """

    class Status(models.TextChoices):
        PENDING = "pending"
        RUNNING = "running"
        DONE = "done"

    scan = models.ForeignKey(DeepScan, on_delete=models.CASCADE, related_name="ranges")
    position = models.PositiveIntegerField(help_text="claim order")
    kind = models.CharField(
        max_length=16, choices=Check.choices, help_text="which check"
    )
    lo = models.BigIntegerField()
    hi = models.BigIntegerField()
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.PENDING
    )
    claim_token = models.CharField(max_length=32, blank=True, default="")
    claimed_by = models.CharField(max_length=120, blank=True, default="")
    claimed_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Which run of the scan finished it, and in which snapshot.
    run = models.PositiveIntegerField(null=True, blank=True)
    snapshot_id = models.CharField(max_length=64, blank=True, default="")
    rows_scanned = models.BigIntegerField(default=0)
    findings_count = models.PositiveIntegerField(default=0)
    duration_ms = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["scan", "position"]
        constraints = [
            models.UniqueConstraint(
                fields=["scan", "position"], name="scan_range_position"
            )
        ]
        indexes = [
            # The claim loop: the next pending range of one scan.
            models.Index(
                fields=["scan", "position"],
                condition=Q(status="pending"),
                name="scan_range_pending",
            )
        ]

    def __str__(self):
        return f"{self.kind} {self.lo}..{self.hi} ({self.status})"


class Mismatch(models.Model):
    """What a finding or ticket is about, and the money of the mismatch.

    ``subject_key`` names the subject stably across scans ("wallet:12",
    "transaction:7", "deposit:3", "platform:fees::EUR"); tickets are
    deduplicated on it. Account and transaction ids are plain integers,
    not foreign keys, because a finding may be about one that is missing.
    """

    invariant = models.CharField(max_length=32, choices=Invariant.choices)
    subject_type = models.CharField(max_length=16, choices=SubjectType.choices)
    subject_key = models.CharField(max_length=80)
    currency = models.CharField(max_length=3)
    wallet = models.ForeignKey(
        "finance.Wallet",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    account_id = models.BigIntegerField(null=True, blank=True)
    transaction_id = models.BigIntegerField(null=True, blank=True)
    operation_kind = models.CharField(max_length=16, blank=True, default="")
    operation_id = models.BigIntegerField(null=True, blank=True)
    expected = models.BigIntegerField(help_text="minor units")
    actual = models.BigIntegerField(help_text="minor units")
    difference = models.BigIntegerField(help_text="actual - expected")
    suspect_transaction_ids = models.JSONField(default=list, blank=True)

    class Meta:
        abstract = True


class Finding(Mismatch):
    """One mismatch one scan saw; the observation appended to its ticket."""

    scan = models.ForeignKey(
        DeepScan, on_delete=models.CASCADE, related_name="findings"
    )
    scan_range = models.ForeignKey(
        ScanRange, on_delete=models.CASCADE, related_name="findings"
    )
    ticket = models.ForeignKey(
        "ReconciliationTicket",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="observations",
    )
    detail = models.JSONField(default=dict, blank=True)
    observed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["scan", "id"]

    def __str__(self):
        return f"{self.invariant} {self.subject_key} {self.difference:+d}"


class ReconciliationTicket(Mismatch):
    """A mismatch someone must explain, open until a full scan no longer sees it.

    At most one ticket per invariant, subject and currency is open at a
    time (the partial unique constraint); a later scan that sees the same
    mismatch appends its finding as an observation instead.
    """

    class Status(models.TextChoices):
        OPEN = "open"
        INVESTIGATING = "investigating"
        CLOSED = "closed"

    class Priority(models.IntegerChoices):
        LOW = 1
        MEDIUM = 2
        HIGH = 3
        CRITICAL = 4

    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.OPEN
    )
    priority = models.PositiveSmallIntegerField(
        choices=Priority.choices, default=Priority.LOW
    )
    # The band of abs(difference) (RECON_TICKET_PRIORITY_BANDS) the last
    # observation fell in; priority follows it unless an operator changes it.
    amount_band = models.PositiveSmallIntegerField(
        choices=Priority.choices, default=Priority.LOW
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    opened_at = models.DateTimeField(default=timezone.now, db_index=True)
    last_seen_at = models.DateTimeField(default=timezone.now)
    closed_at = models.DateTimeField(null=True, blank=True)
    close_note = models.CharField(max_length=500, blank=True, default="")
    first_scan = models.ForeignKey(DeepScan, on_delete=models.PROTECT, related_name="+")
    last_scan = models.ForeignKey(DeepScan, on_delete=models.PROTECT, related_name="+")
    observation_count = models.PositiveIntegerField(default=0)
    note = models.TextField(blank=True, default="", help_text="investigation notes")
    history = HistoricalRecords()
    # Not a field: simple-history records the reason set here on the next save.
    _change_reason: str

    class Meta:
        ordering = ["-priority", "-opened_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["invariant", "subject_key", "currency"],
                condition=~Q(status="closed"),
                name="recon_ticket_one_open_per_subject",
            )
        ]
        indexes = [
            models.Index(fields=["status", "priority"], name="recon_ticket_status")
        ]

    def __str__(self):
        return f"ticket {self.pk}: {self.invariant} {self.subject_key}"

    @property
    def is_open(self) -> bool:
        return self.status != self.Status.CLOSED


class TicketDelivery(models.Model):
    """One ticket event owed to the external tracker, until it is delivered.

    A delivery is created in the transaction that changes the ticket and is
    only ever finished by a 2xx answer or by running out of attempts (then
    ``failed``, shown in the admin and retryable); it is never dropped.
    """

    class Event(models.TextChoices):
        OPENED = "opened"
        UPDATED = "updated"
        CLOSED = "closed"

    class Status(models.TextChoices):
        PENDING = "pending"
        DELIVERED = "delivered"
        FAILED = "failed"

    ticket = models.ForeignKey(
        ReconciliationTicket, on_delete=models.CASCADE, related_name="deliveries"
    )
    event = models.CharField(max_length=16, choices=Event.choices)
    payload = models.JSONField()
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.PENDING
    )
    attempts = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    # A sender holds the delivery until then; a crashed sender's hold lapses.
    claimed_until = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True, default="")

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "ticket deliveries"
        permissions = [
            ("resend_ticketdelivery", "Can send a failed ticket delivery again")
        ]
        indexes = [
            # The sweeper: pending deliveries whose next attempt is due.
            models.Index(
                fields=["next_attempt_at"],
                condition=Q(status="pending"),
                name="ticket_delivery_due",
            )
        ]

    def __str__(self):
        return f"{self.event} ticket {self.ticket_id} ({self.status})"


class TicketDeliveryAttempt(models.Model):
    """One HTTP POST of a delivery and what came back."""

    delivery = models.ForeignKey(
        TicketDelivery, on_delete=models.CASCADE, related_name="attempt_log"
    )
    number = models.PositiveIntegerField()
    started_at = models.DateTimeField(default=timezone.now)
    duration_ms = models.PositiveIntegerField(default=0)
    http_status = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.CharField(max_length=500, blank=True, default="")

    class Meta:
        ordering = ["delivery", "number"]
        constraints = [
            models.UniqueConstraint(
                fields=["delivery", "number"], name="ticket_delivery_attempt_number"
            )
        ]

    def __str__(self):
        return f"attempt {self.number}: {self.http_status or self.error}"
