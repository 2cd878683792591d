"""Tabletop exercises: a scenario, its injects, and the record of one run."""

from django.conf import settings
from django.db import models
from django.utils import timezone
from simple_history.models import HistoricalRecords


class Scenario(models.Model):
    slug = models.SlugField(unique=True)
    title = models.CharField(max_length=200)
    summary = models.TextField()
    objectives = models.TextField(help_text="What the exercise should show.")
    severity = models.ForeignKey(
        "incidents.Severity",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text="The severity the scenario is expected to be declared at.",
    )
    history = HistoricalRecords()

    class Meta:
        ordering = ["title"]

    def __str__(self):
        return self.title


class Inject(models.Model):
    """A new piece of information handed to the players at a set time."""

    scenario = models.ForeignKey(
        Scenario, on_delete=models.CASCADE, related_name="injects"
    )
    position = models.PositiveSmallIntegerField(default=1)
    offset_minutes = models.PositiveSmallIntegerField(
        default=0, help_text="Minutes after the start (scheduled delivery)."
    )
    text = models.TextField()
    expected_response = models.TextField(blank=True, default="")
    history = HistoricalRecords()

    class Meta:
        ordering = ["scenario", "position", "id"]

    def __str__(self):
        return f"{self.scenario.slug} inject {self.position}"


class Exercise(models.Model):
    class Status(models.TextChoices):
        PLANNED = "planned"
        RUNNING = "running"
        COMPLETED = "completed"

    class Delivery(models.TextChoices):
        FACILITATOR = "facilitator", "the facilitator delivers each inject"
        SCHEDULED = "scheduled", "injects arrive at their offsets"

    scenario = models.ForeignKey(
        Scenario, on_delete=models.PROTECT, related_name="exercises"
    )
    title = models.CharField(max_length=200)
    facilitator = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    scheduled_for = models.DateTimeField(null=True, blank=True)
    inject_delivery = models.CharField(
        max_length=16, choices=Delivery.choices, default=Delivery.FACILITATOR
    )
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.PLANNED
    )
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    outcome = models.TextField(
        blank=True, default="", help_text="How it went: the short answer."
    )
    created_at = models.DateTimeField(default=timezone.now)
    history = HistoricalRecords()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            # The admin index's "last completed exercise".
            models.Index(fields=["completed_at"], name="exercise_completed_at")
        ]

    def __str__(self):
        return self.title


class Participant(models.Model):
    exercise = models.ForeignKey(
        Exercise, on_delete=models.CASCADE, related_name="participants"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    role = models.CharField(
        max_length=100, help_text="The part played: commander, approver, comms..."
    )
    history = HistoricalRecords()

    class Meta:
        ordering = ["exercise", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["exercise", "user"], name="participant_once"
            )
        ]

    def __str__(self):
        return f"{self.user.get_username()} as {self.role}"


class InjectDelivery(models.Model):
    exercise = models.ForeignKey(
        Exercise, on_delete=models.CASCADE, related_name="deliveries"
    )
    inject = models.ForeignKey(Inject, on_delete=models.PROTECT, related_name="+")
    delivered_at = models.DateTimeField(default=timezone.now)
    # Null: delivered on schedule by the periodic task.
    delivered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )

    class Meta:
        ordering = ["exercise", "delivered_at", "id"]
        verbose_name_plural = "inject deliveries"
        constraints = [
            models.UniqueConstraint(
                fields=["exercise", "inject"], name="inject_delivered_once"
            )
        ]

    def __str__(self):
        return f"{self.inject} at {self.delivered_at:%H:%M}"


class ExerciseNote(models.Model):
    """A decision the players took, or a finding about the playbook."""

    class Kind(models.TextChoices):
        DECISION = "decision"
        FINDING = "finding"
        NOTE = "note"

    exercise = models.ForeignKey(
        Exercise, on_delete=models.CASCADE, related_name="notes"
    )
    kind = models.CharField(max_length=16, choices=Kind.choices)
    text = models.TextField()
    inject = models.ForeignKey(
        Inject,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text="The inject it answers, if any.",
    )
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    at = models.DateTimeField(default=timezone.now)
    history = HistoricalRecords()

    class Meta:
        ordering = ["exercise", "at", "id"]

    def __str__(self):
        return f"{self.kind}: {self.text[:60]}"
