"""Pages: an escalation under way, its frozen policy and every notification.

A ``Page`` belongs to an incident, or to an escalation test. When it starts,
the severity's steps are copied into ``policy``; from then on only the page
counts, so editing the matrix changes nothing already under way. The
periodic task (``incidents.services.paging.pages_advance``) moves
``next_index`` along and writes one ``PageNotification`` per person and
channel, each with the alerts ``Delivery`` that carries it.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone


class EscalationTest(models.Model):
    """A rehearsal of one severity's matrix with real, test-marked messages."""

    severity = models.ForeignKey(
        "incidents.Severity", on_delete=models.PROTECT, related_name="+"
    )
    note = models.CharField(max_length=500, blank=True, default="")
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]

    def __str__(self):
        return f"escalation test {self.pk} of {self.severity.name}"


class Page(models.Model):
    class Status(models.TextChoices):
        ACTIVE = "active"
        ACKNOWLEDGED = "acknowledged"
        # Every step and repeat ran and nobody acknowledged.
        EXHAUSTED = "exhausted"
        # The severity changed: a page with the new policy took over.
        SUPERSEDED = "superseded"
        # The incident was resolved before anyone acknowledged.
        CANCELLED = "cancelled"
        # An escalation test that went through every step.
        COMPLETED = "completed"

    incident = models.ForeignKey(
        "incidents.Incident",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="pages",
    )
    escalation_test = models.OneToOneField(
        EscalationTest,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="page",
    )
    severity = models.ForeignKey(
        "incidents.Severity", on_delete=models.PROTECT, related_name="+"
    )
    # The steps as they were when paging started (see freeze_policy).
    policy = models.JSONField()
    repeats = models.PositiveSmallIntegerField(default=0)
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.ACTIVE
    )
    # The next position in the expanded sequence (steps x (repeats + 1)).
    next_index = models.PositiveIntegerField(default=0)
    next_step_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(default=timezone.now)
    ended_at = models.DateTimeField(null=True, blank=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    # "admin" or "link"
    acknowledged_via = models.CharField(max_length=16, blank=True, default="")

    class Meta:
        ordering = ["-started_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(incident__isnull=True) ^ Q(escalation_test__isnull=True),
                name="page_incident_or_test",
            )
        ]
        indexes = [
            # pages_advance: active pages whose next step is due.
            models.Index(
                fields=["next_step_at"],
                condition=Q(status="active"),
                name="page_active_due",
            )
        ]

    def __str__(self):
        owner = (
            f"incident {self.incident_id}"
            if self.incident_id
            else f"escalation test {self.escalation_test_id}"
        )
        return f"page {self.pk} of {owner} ({self.status})"

    @property
    def is_test(self) -> bool:
        return self.escalation_test_id is not None

    @property
    def total_steps(self) -> int:
        return len(self.policy) * (self.repeats + 1)


class PageNotification(models.Model):
    """One person told on one channel at one step, or why nobody was."""

    class Outcome(models.TextChoices):
        # Handed to the alerts app: see ``delivery`` for whether it arrived.
        SENT = "sent"
        # The person has no address on this channel.
        NO_CONTACT = "no_contact"
        # The step's rotation has nobody on call at that instant.
        NOBODY = "nobody"

    page = models.ForeignKey(
        Page, on_delete=models.CASCADE, related_name="notifications"
    )
    index = models.PositiveIntegerField()
    round = models.PositiveSmallIntegerField(default=1)
    step_position = models.PositiveSmallIntegerField()
    rotation_name = models.CharField(max_length=100, blank=True, default="")
    person = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    person_name = models.CharField(max_length=150, blank=True, default="")
    channel = models.CharField(max_length=16, blank=True, default="")
    outcome = models.CharField(max_length=16, choices=Outcome.choices)
    delivery = models.ForeignKey(
        "alerts.Delivery",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    # The PagerDuty dedup key, so acknowledging can resolve what was opened.
    dedup_key = models.CharField(max_length=255, blank=True, default="")
    wait_minutes = models.PositiveSmallIntegerField()
    notified_at = models.DateTimeField(default=timezone.now)
    acknowledged_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["page", "index", "id"]
        constraints = [
            # A step tells a person on a channel once, whatever happens to
            # the worker that runs it.
            models.UniqueConstraint(
                fields=["page", "index", "person", "channel"],
                name="page_notification_once",
            )
        ]

    def __str__(self):
        who = self.person_name or self.rotation_name or "nobody"
        return f"step {self.step_position} {who} {self.channel} {self.outcome}"

    @property
    def seconds_to_acknowledge(self) -> int | None:
        if self.acknowledged_at is None:
            return None
        return int((self.acknowledged_at - self.notified_at).total_seconds())
