"""The daily reconciliation report, one per UTC day.

A report is built whole by reconciliation.services.daily_report_build and
replaced whole when its day is built again; nothing in it is edited by
hand, so these models keep no history. Its sections:

- operation lines: deposits, withdrawals and payouts of the day per
  provider, currency and state, on two bases (see ``Basis``);
- ledger lines: the journal transactions booked that day per provider,
  currency and kind;
- statements: per provider, where the settlement statement came from and
  how it matched; settlement items list every line that did not match;
- stuck lines: the open stuck cases when the report was built.
"""

from django.db import models


class DailyReport(models.Model):
    report_date = models.DateField(unique=True)
    period_start = models.DateTimeField(help_text="UTC midnight opening the day")
    period_end = models.DateTimeField(help_text="UTC midnight closing it (excluded)")
    built_at = models.DateTimeField()
    # Operations opened or settled that day: zero means a day with no
    # business at all, which the job framework's output check treats as
    # a failure.
    operation_count = models.PositiveIntegerField()
    ledger_transaction_count = models.PositiveIntegerField()
    settlement_exception_count = models.PositiveIntegerField()
    open_stuck_case_count = models.PositiveIntegerField()
    # sha256 of the content (everything but the build and mail times): the
    # same data gives the same digest, however often the day is rebuilt.
    content_digest = models.CharField(max_length=64)
    emailed_to = models.JSONField(default=list, blank=True)
    emailed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-report_date"]

    def __str__(self):
        return f"reconciliation {self.report_date}"


class DailyReportOperationLine(models.Model):
    class Basis(models.TextChoices):
        # Created that day, in the state they are in when the report is built.
        OPENED = "opened"
        # Moved that day into the state they are in now, a state that is
        # final or money-moving (succeeded, completed, paid, failed, ...).
        SETTLED = "settled"

    report = models.ForeignKey(
        DailyReport, on_delete=models.CASCADE, related_name="operation_lines"
    )
    basis = models.CharField(max_length=8, choices=Basis.choices)
    operation_kind = models.CharField(max_length=16)
    provider = models.CharField(max_length=32)
    currency = models.CharField(max_length=3)
    state = models.CharField(max_length=16)
    count = models.PositiveIntegerField()
    amount = models.BigIntegerField(help_text="sum, minor units")
    fee = models.BigIntegerField(default=0, help_text="withdrawal fees, minor units")

    class Meta:
        ordering = ["provider", "currency", "operation_kind", "basis", "state"]

    def __str__(self):
        return f"{self.operation_kind} {self.basis} {self.state} x{self.count}"


class DailyReportLedgerLine(models.Model):
    report = models.ForeignKey(
        DailyReport, on_delete=models.CASCADE, related_name="ledger_lines"
    )
    # The provider of the operation the transaction claims; blank for
    # transactions that claim none (adjustments).
    provider = models.CharField(max_length=32, blank=True)
    currency = models.CharField(max_length=3)
    kind = models.CharField(max_length=32)
    transaction_count = models.PositiveIntegerField()
    amount = models.BigIntegerField(help_text="sum of the debit side, minor units")

    class Meta:
        ordering = ["provider", "currency", "kind"]

    def __str__(self):
        return f"{self.kind} x{self.transaction_count}"


class DailyReportStatement(models.Model):
    """One provider's settlement statement for the day, and how it matched."""

    class Source(models.TextChoices):
        FILE = "file", "imported file"
        FETCHED = "fetched", "fetched from the provider"
        NOT_CHECKED = "not_checked", "not checked"

    report = models.ForeignKey(
        DailyReport, on_delete=models.CASCADE, related_name="statements"
    )
    provider = models.CharField(max_length=32)
    source = models.CharField(max_length=16, choices=Source.choices)
    source_name = models.CharField(max_length=200, blank=True, default="")
    line_count = models.PositiveIntegerField(default=0)
    matched_count = models.PositiveIntegerField(default=0)
    malformed_count = models.PositiveIntegerField(default=0)
    exception_count = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["provider"]
        constraints = [
            models.UniqueConstraint(
                fields=["report", "provider"], name="daily_statement_one_per_provider"
            )
        ]

    def __str__(self):
        return f"{self.provider} statement ({self.source})"


class DailyReportSettlementItem(models.Model):
    """A statement line, or an internal movement, that did not match."""

    class Kind(models.TextChoices):
        # The provider settled it; we have no such operation, or have it but
        # booked no such movement.
        MISSING_INTERNAL = "missing_internal", "missing on our side"
        # We booked the movement that day; the statement does not list it.
        MISSING_AT_PROVIDER = "missing_at_provider", "missing at the provider"
        AMOUNT_MISMATCH = "amount_mismatch", "amount mismatch"
        CURRENCY_MISMATCH = "currency_mismatch", "currency mismatch"
        # Both sides have it, but we booked it on another day.
        OTHER_DAY = "other_day", "booked on another day"
        MALFORMED = "malformed", "malformed line"

    report = models.ForeignKey(
        DailyReport, on_delete=models.CASCADE, related_name="settlement_items"
    )
    provider = models.CharField(max_length=32)
    kind = models.CharField(max_length=24, choices=Kind.choices)
    line_number = models.PositiveIntegerField(null=True, blank=True)
    provider_reference = models.CharField(max_length=100, blank=True, default="")
    line_type = models.CharField(max_length=16, blank=True, default="")
    statement_amount = models.BigIntegerField(null=True, blank=True)
    statement_currency = models.CharField(max_length=3, blank=True, default="")
    operation_kind = models.CharField(max_length=16, blank=True, default="")
    operation_id = models.BigIntegerField(null=True, blank=True)
    internal_amount = models.BigIntegerField(null=True, blank=True)
    internal_currency = models.CharField(max_length=3, blank=True, default="")
    internal_state = models.CharField(max_length=16, blank=True, default="")
    detail = models.CharField(max_length=300, blank=True, default="")

    class Meta:
        ordering = ["provider", "kind", "line_number", "provider_reference"]

    def __str__(self):
        return f"{self.provider} {self.kind} {self.provider_reference}"


class DailyReportStuckLine(models.Model):
    """Open stuck cases per rule and provider when the report was built."""

    report = models.ForeignKey(
        DailyReport, on_delete=models.CASCADE, related_name="stuck_lines"
    )
    item_kind = models.CharField(max_length=16)
    state = models.CharField(max_length=16)
    rule_name = models.CharField(max_length=100)
    provider = models.CharField(max_length=32)
    count = models.PositiveIntegerField()
    sla_breaches = models.PositiveIntegerField()
    oldest_since = models.DateTimeField()

    class Meta:
        ordering = ["item_kind", "state", "provider"]

    def __str__(self):
        return f"{self.item_kind} {self.state} x{self.count}"
