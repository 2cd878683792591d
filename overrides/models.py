"""Override requests: a fix to a stuck finance operation that takes two people.

A request is written once, when the doer submits it, and its content never
changes after that: the service layer has no way to edit one and PostgreSQL
refuses it too (migration 0002). What does change is the workflow around the
content, one step at a time along ``Status.MOVES``, each step claimed with a
conditional UPDATE on ``status`` and written to the audit log.

The model keeps no simple-history table: its content is immutable, and every
change of status is an audit entry (security.audit) with the acting user,
which is the stronger record. That is also why the claims may use
``QuerySet.update()``.
"""

import hashlib
import json
from datetime import UTC, datetime

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

# The columns that make up what was asked. The database trigger refuses any
# change to them after INSERT (migration 0002 names the same list).
CONTENT_FIELDS = (
    "target_kind",
    "target_id",
    "target_state",
    "target_version",
    "action",
    "params",
    "reason",
    "ticket_reference",
    "doer_id",
    "submitted_at",
    "expires_at",
)


def _instant(value: datetime) -> str:
    # Microseconds kept: PostgreSQL stores them, so the text survives a reload.
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def canonical_json(value) -> str:
    """Sorted keys, no spaces: the same text for the same content, always."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def sha256_hex(value) -> str:
    return hashlib.sha256(canonical_json(value).encode()).hexdigest()


class OverrideRequest(models.Model):
    class TargetKind(models.TextChoices):
        DEPOSIT = "deposit"
        WITHDRAWAL = "withdrawal"
        PAYOUT = "payout"

    class Status(models.TextChoices):
        SUBMITTED = "submitted"
        APPROVED = "approved"
        REJECTED = "rejected"
        WITHDRAWN = "withdrawn"
        EXPIRED = "expired"
        # Held only inside the transaction that executes the request, never
        # committed: it is the claim that makes a second executor wait and
        # then find nothing to claim.
        EXECUTING = "executing"
        EXECUTED = "executed"
        FAILED = "failed"

    # Where each status may go; the database trigger enforces the same map.
    MOVES = {
        Status.SUBMITTED: {
            Status.APPROVED,
            Status.REJECTED,
            Status.WITHDRAWN,
            Status.EXPIRED,
        },
        Status.APPROVED: {Status.EXECUTING, Status.EXPIRED},
        Status.EXECUTING: {Status.EXECUTED, Status.FAILED},
    }
    OPEN = (Status.SUBMITTED, Status.APPROVED)

    # --- what was asked (immutable) ---
    target_kind = models.CharField(max_length=16, choices=TargetKind.choices)
    target_id = models.BigIntegerField()
    target_state = models.CharField(
        max_length=16, help_text="the target's state when the request was submitted"
    )
    target_version = models.PositiveIntegerField(
        help_text="the target's version when the request was submitted"
    )
    action = models.CharField(max_length=64)
    params = models.JSONField(default=dict, blank=True)
    reason = models.TextField()
    ticket_reference = models.CharField(max_length=100)
    doer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    submitted_at = models.DateTimeField(default=timezone.now, db_index=True)
    expires_at = models.DateTimeField()
    # SHA-256 of the canonical JSON of the fields above (``content``).
    content_hash = models.CharField(max_length=64, unique=True)
    # What the doer was shown: the state changes and postings, as computed
    # at submission. Kept for the record; the approver sees a fresh one.
    submitted_preview = models.JSONField(default=dict)

    # --- the workflow ---
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.SUBMITTED
    )
    approver = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    approved_at = models.DateTimeField(null=True, blank=True)
    # SHA-256 over the content hash, the target version, the approver and
    # the time: what the approval is bound to, checked again at execution.
    approval_hash = models.CharField(max_length=64, blank=True, default="")
    # Who rejected or withdrew, and why; expiry has no person.
    closed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    closed_at = models.DateTimeField(null=True, blank=True)
    close_reason = models.TextField(blank=True, default="")
    executed_at = models.DateTimeField(null=True, blank=True, db_index=True)
    execution_result = models.JSONField(null=True, blank=True)
    execution_error = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["-submitted_at", "-id"]
        permissions = [
            ("approve_overriderequest", "Can approve (and so execute) an override"),
            ("reject_overriderequest", "Can reject an override request"),
            ("withdraw_overriderequest", "Can withdraw one's own override request"),
        ]
        indexes = [
            # The expiry sweep: open requests by deadline.
            models.Index(
                fields=["expires_at"],
                condition=Q(status__in=["submitted", "approved"]),
                name="override_open_by_expiry",
            ),
            models.Index(fields=["target_kind", "target_id"], name="override_target"),
        ]
        constraints = [
            # One open request per target: a second would race the first.
            models.UniqueConstraint(
                fields=["target_kind", "target_id"],
                condition=Q(status__in=["submitted", "approved", "executing"]),
                name="override_one_open_per_target",
            ),
            models.CheckConstraint(
                condition=~Q(approver=models.F("doer")),
                name="override_approver_is_not_doer",
            ),
            models.CheckConstraint(
                condition=Q(expires_at__gt=models.F("submitted_at")),
                name="override_expires_after_submission",
            ),
        ]

    def __str__(self):
        return (
            f"override {self.pk}: {self.action} on {self.target_kind} {self.target_id}"
        )

    def save(self, *args, **kwargs):
        # Only the first save writes; every later change is a workflow claim
        # in overrides.services. The database refuses edits as well.
        if not self._state.adding:
            raise ImmutableRequest(
                "an override request cannot be changed after submission"
            )
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ImmutableRequest("an override request is never deleted")

    def content(self) -> dict:
        return {
            "target_kind": self.target_kind,
            "target_id": self.target_id,
            "target_state": self.target_state,
            "target_version": self.target_version,
            "action": self.action,
            "params": self.params,
            "reason": self.reason,
            "ticket_reference": self.ticket_reference,
            "doer_id": self.doer_id,
            "submitted_at": _instant(self.submitted_at),
            "expires_at": _instant(self.expires_at),
        }

    def compute_content_hash(self) -> str:
        return sha256_hex(self.content())

    def compute_approval_hash(self) -> str:
        return sha256_hex(
            {
                "content_hash": self.content_hash,
                "target_version": self.target_version,
                "approver_id": self.approver_id,
                "approved_at": _instant(self.approved_at) if self.approved_at else None,
            }
        )

    @property
    def is_open(self) -> bool:
        return self.status in self.OPEN

    def is_expired(self, now=None) -> bool:
        return (now or timezone.now()) >= self.expires_at


class ImmutableRequest(Exception):
    """Something tried to change or delete a submitted override request."""
