"""Incidents, their timeline, links to other records, and the review."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from simple_history.models import HistoricalRecords


class Incident(models.Model):
    class Status(models.TextChoices):
        INVESTIGATING = "investigating"
        IDENTIFIED = "identified"
        MITIGATED = "mitigated"
        RESOLVED = "resolved"

    class Source(models.TextChoices):
        PERSON = "person", "declared by a person"
        JOB = "job", "a failing scheduled job"
        SLO = "slo", "an SLO burn alert"

    title = models.CharField(max_length=200)
    summary = models.TextField(blank=True, default="")
    customer_impact = models.TextField(blank=True, default="")
    severity = models.ForeignKey(
        "incidents.Severity", on_delete=models.PROTECT, related_name="incidents"
    )
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.INVESTIGATING
    )
    commander = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    declared_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    source = models.CharField(
        max_length=16, choices=Source.choices, default=Source.PERSON
    )
    # What declared it, for machines: "job:<name>", "slo:<name>". One open
    # incident per key, so a job failing again adds to the same incident.
    source_key = models.CharField(max_length=200, blank=True, default="")
    declared_at = models.DateTimeField(default=timezone.now)
    identified_at = models.DateTimeField(null=True, blank=True)
    mitigated_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    # The last status update, and the last reminder that one is due.
    last_update_at = models.DateTimeField(default=timezone.now)
    update_reminded_at = models.DateTimeField(null=True, blank=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["-declared_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["source_key"],
                condition=~Q(source_key="") & ~Q(status="resolved"),
                name="incident_one_open_per_source",
            )
        ]
        indexes = [
            models.Index(
                fields=["declared_at"],
                condition=~Q(status="resolved"),
                name="incident_open",
            )
        ]
        permissions = [
            ("acknowledge_page", "Can acknowledge a page in the admin"),
        ]

    def __str__(self):
        return f"#{self.pk} {self.severity.name} {self.title}"

    @property
    def is_open(self) -> bool:
        return self.status != self.Status.RESOLVED


class TimelineEntry(models.Model):
    """What happened, in order. Written by the services only; never edited."""

    class Kind(models.TextChoices):
        DECLARED = "declared"
        UPDATE = "update"
        ACTION = "action"
        DECISION = "decision"
        STATUS = "status"
        SEVERITY = "severity"
        COMMANDER = "commander"
        PAGE = "page"
        ACKNOWLEDGED = "acknowledged"
        ORDER = "order", "rollback or kill-switch order"
        LINK = "link"
        REVIEW = "review"
        REMINDER = "reminder", "update reminder"

    incident = models.ForeignKey(
        Incident, on_delete=models.CASCADE, related_name="timeline"
    )
    at = models.DateTimeField(default=timezone.now)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    text = models.TextField()
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    # Kept when the account goes; "system" or a job for machine entries.
    actor_name = models.CharField(max_length=150, blank=True, default="")
    details = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["incident", "at", "id"]
        verbose_name_plural = "timeline entries"

    def __str__(self):
        return f"{self.at:%Y-%m-%d %H:%M} {self.kind}: {self.text[:60]}"


class IncidentLink(models.Model):
    """A record of another app that this incident concerns.

    Named by model label and primary key rather than a foreign key, so that
    stuck cases, reconciliation tickets and override requests can be linked
    whether or not their app is installed yet.
    """

    incident = models.ForeignKey(
        Incident, on_delete=models.CASCADE, related_name="links"
    )
    # "stuck.stuckcase", "reconciliation.ticket", "overrides.overriderequest"...
    target_type = models.CharField(max_length=100)
    target_id = models.CharField(max_length=64)
    label = models.CharField(max_length=200, blank=True, default="")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    created_at = models.DateTimeField(default=timezone.now)
    history = HistoricalRecords()

    class Meta:
        ordering = ["incident", "created_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["incident", "target_type", "target_id"],
                name="incident_link_once",
            )
        ]
        indexes = [
            # "Which incidents concern this stuck case?"
            models.Index(fields=["target_type", "target_id"], name="incident_link_to")
        ]

    def __str__(self):
        return f"{self.target_type} {self.target_id}"


class Review(models.Model):
    """The post-incident review: what happened, why, and what changes."""

    incident = models.OneToOneField(
        Incident, on_delete=models.CASCADE, related_name="review"
    )
    summary = models.TextField(blank=True, default="")
    root_cause = models.TextField(blank=True, default="")
    contributing_factors = models.TextField(blank=True, default="")
    went_well = models.TextField("what went well", blank=True, default="")
    went_badly = models.TextField("what went badly", blank=True, default="")
    facilitator = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    held_on = models.DateField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    history = HistoricalRecords()

    class Meta:
        verbose_name = "post-incident review"

    def __str__(self):
        return f"review of incident {self.incident_id}"


class ActionItem(models.Model):
    """Work that an incident review or a tabletop exercise asked for."""

    class Status(models.TextChoices):
        OPEN = "open"
        DONE = "done"
        WONT_DO = "wont_do", "won't do"

    review = models.ForeignKey(
        Review,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="action_items",
    )
    exercise = models.ForeignKey(
        "incidents.Exercise",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="action_items",
    )
    title = models.CharField(max_length=300)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    due_on = models.DateField()
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.OPEN
    )
    note = models.TextField(blank=True, default="")
    history = HistoricalRecords()

    class Meta:
        ordering = ["status", "due_on", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(review__isnull=True) ^ Q(exercise__isnull=True),
                name="action_item_one_origin",
            )
        ]

    def __str__(self):
        return self.title
