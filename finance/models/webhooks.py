"""What the payment provider sent us.

Every HTTP delivery is kept with its outcome and processing time (the
webhook success rate SLO reads them). ``WebhookEvent`` holds each event id
once: inserting it is what makes applying an event happen exactly once.
"""

from django.db import models
from django.db.models import Q
from django.utils import timezone


class WebhookDelivery(models.Model):
    class Outcome(models.TextChoices):
        APPLIED = "applied"
        DUPLICATE = "duplicate"
        BAD_SIGNATURE = "bad_signature"
        STALE = "stale"
        MALFORMED = "malformed"
        TOO_LARGE = "too_large"
        UNKNOWN_TYPE = "unknown_type"
        NOT_FOUND = "not_found"  # names no operation of ours
        REJECTED = "rejected"  # valid, but contradicts what we know
        FAILED = "failed"  # our error; the provider will retry

    provider = models.CharField(max_length=32)
    received_at = models.DateTimeField(default=timezone.now, db_index=True)
    event_id = models.CharField(max_length=100, blank=True, default="", db_index=True)
    event_type = models.CharField(max_length=64, blank=True, default="")
    outcome = models.CharField(max_length=16, choices=Outcome.choices)
    http_status = models.PositiveSmallIntegerField()
    error = models.CharField(max_length=500, blank=True, default="")
    processing_ms = models.PositiveIntegerField(default=0)
    # The parsed body when it could be parsed; purged by retention.
    payload = models.JSONField(null=True, blank=True)
    # The operation the event named, once found; like the ledger's claims,
    # deliberately not a foreign key.
    operation_kind = models.CharField(max_length=16, blank=True, default="")
    operation_id = models.BigIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["-received_at"]
        verbose_name_plural = "webhook deliveries"
        indexes = [
            # "Every delivery about this payout", from the operation's page.
            models.Index(
                fields=["operation_kind", "operation_id"],
                name="webhookdelivery_operation",
            ),
            # Stuck detection's failed-webhook rule: failures are a sliver of
            # all deliveries, so this stays tiny where received_at alone
            # would make it read nearly the whole table (bench/README.md).
            models.Index(
                fields=["received_at"],
                condition=Q(outcome="failed"),
                name="delivery_failed_age",
            ),
        ]

    def __str__(self):
        return f"{self.provider} {self.event_type or '?'} {self.outcome}"


class WebhookEvent(models.Model):
    provider = models.CharField(max_length=32)
    event_id = models.CharField(max_length=100)
    event_type = models.CharField(max_length=64)
    applied_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "event_id"], name="webhook_event_once"
            )
        ]

    def __str__(self):
        return f"{self.provider} {self.event_id}"
