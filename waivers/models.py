"""The waiver register and what we observed of the production secrets.

A ``Waiver`` is an accepted production gap with an owner, a risk and a
deadline; it is *open* while awaiting approval or approved, and ends closed
(the gap is fixed or the waiver withdrawn) or rejected. Only
waivers/services/register.py changes it, audited and kept in its history.

``SecretObservation`` is one row per declared secret: its status and the
fingerprint of its value when last observed, and since when that value has
been in use. ``SecretRotation`` is the log of every change of value.
``Reminder`` records each reminder and escalation sent, once.
"""

from datetime import date

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from simple_history.models import HistoricalRecords


class Risk(models.TextChoices):
    LOW = "low", "low"
    MEDIUM = "medium", "medium"
    HIGH = "high", "high"
    CRITICAL = "critical", "critical"


class WaiverStatus(models.TextChoices):
    REQUESTED = "requested", "awaiting approval"
    APPROVED = "approved", "approved"
    CLOSED = "closed", "closed"
    REJECTED = "rejected", "rejected"


OPEN_STATUSES = (WaiverStatus.REQUESTED, WaiverStatus.APPROVED)


class WaiverQuerySet(models.QuerySet):
    def open(self):
        return self.filter(status__in=OPEN_STATUSES)


class Waiver(models.Model):
    # The ID of the team's Markdown register ("W-007"); imports match on it.
    reference = models.CharField(max_length=20, unique=True)
    item = models.CharField(max_length=200, help_text="The gap this waiver accepts.")
    # The inventory name (waivers/inventory.py) when the item is a secret.
    secret = models.CharField(max_length=100, blank=True, default="", db_index=True)
    risk = models.CharField(max_length=10, choices=Risk.choices)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="waivers"
    )
    justification = models.TextField(blank=True, default="")
    compensating_control = models.TextField(blank=True, default="")
    deadline = models.DateField(help_text="The gap is closed by the end of this day.")
    status = models.CharField(
        max_length=10, choices=WaiverStatus.choices, default=WaiverStatus.REQUESTED
    )
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    approved_at = models.DateTimeField(null=True, blank=True)
    # Who closed or rejected it, and when.
    ended_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    ended_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    history = HistoricalRecords()
    objects = WaiverQuerySet.as_manager()

    class Meta:
        ordering = ["deadline", "reference"]
        permissions = [
            ("approve_waiver", "Can approve or reject a waiver"),
            ("close_waiver", "Can close a waiver"),
        ]
        constraints = [
            # The owner never approves their own waiver, whatever the code path.
            models.CheckConstraint(
                condition=Q(approved_by__isnull=True) | ~Q(approved_by=F("owner")),
                name="waiver_not_approved_by_owner",
            ),
            models.CheckConstraint(
                condition=~Q(status=WaiverStatus.APPROVED)
                | Q(approved_by__isnull=False, approved_at__isnull=False),
                name="waiver_approved_has_approver",
            ),
        ]

    def __str__(self):
        return f"{self.reference} {self.item}"

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    def days_to_deadline(self, today: date) -> int:
        return (self.deadline - today).days

    def blockers(self, today: date) -> list[tuple[str, str]]:
        """(code, reason) of each thing that makes this open waiver block the gate.

        [] when it is acceptable: low risk, approved, and not past its
        deadline (the deadline day itself still counts).
        """
        if not self.is_open:
            return []
        reasons = []
        if self.risk != Risk.LOW:
            reasons.append(("risk_not_low", f"{self.risk} risk"))
        if self.status != WaiverStatus.APPROVED:
            reasons.append(("not_approved", "not approved"))
        if self.deadline < today:
            reasons.append(
                ("deadline_passed", f"deadline {self.deadline.isoformat()} has passed")
            )
        return reasons

    def covers(self, today: date) -> bool:
        """Whether this waiver excuses a finding about its item today."""
        return self.is_open and not self.blockers(today)


class SecretStatus(models.TextChoices):
    OK = "ok", "ok"
    MISSING = "missing", "missing"
    TEST_VALUE = "test_value", "test or placeholder value"


class SecretObservation(models.Model):
    name = models.CharField(max_length=100, unique=True)
    status = models.CharField(max_length=12, choices=SecretStatus.choices)
    # Of the last value seen; kept while the secret is missing, so a value
    # that comes back unchanged is not taken for a rotation.
    fingerprint = models.CharField(max_length=64, blank=True, default="")
    key_id = models.CharField(max_length=12, blank=True, default="")
    key_source = models.CharField(max_length=40, blank=True, default="")
    # When the current value was first seen. False for a value that was
    # already there at the first observation: its real age is unknown and
    # counts from then.
    value_since = models.DateTimeField(null=True, blank=True)
    value_since_known = models.BooleanField(default=False)
    first_observed_at = models.DateTimeField()
    last_observed_at = models.DateTimeField()

    class Meta:
        ordering = ["name"]
        verbose_name = "secret"

    def __str__(self):
        return self.name


class SecretRotation(models.Model):
    name = models.CharField(max_length=100, db_index=True)
    detected_at = models.DateTimeField()
    previous_fingerprint = models.CharField(max_length=64)
    fingerprint = models.CharField(max_length=64)
    # What observed it: the scheduled task, the gate, the demo.
    source = models.CharField(max_length=20)

    class Meta:
        ordering = ["-detected_at", "-id"]

    def __str__(self):
        return f"{self.name} rotated {self.detected_at:%Y-%m-%d %H:%M}"


class Reminder(models.Model):
    """One reminder or escalation, sent once per subject, kind and due date."""

    # "waiver:W-007" or "secret:SECRET_KEY"
    subject = models.CharField(max_length=120)
    # "due_in_14", "due_in_3", "overdue"
    kind = models.CharField(max_length=20)
    due_on = models.DateField()
    sent_at = models.DateTimeField(default=timezone.now)
    recipients = models.TextField(blank=True, default="")
    escalated = models.BooleanField(default=False)
    # When the escalation's alert was resolved (the waiver closed, the
    # secret rotated).
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-sent_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["subject", "kind", "due_on"], name="reminder_once"
            )
        ]

    def __str__(self):
        return f"{self.subject} {self.kind} ({self.due_on})"
