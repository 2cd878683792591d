"""Severity levels, their escalation matrix and who may order a rollback.

All of it is data, seeded by migration 0002 with this business's Sev1 to
Sev4 and edited in the admin (with a fresh second factor and history). An
incident's page copies the steps when paging starts, so an edit here never
changes an escalation that is already under way.
"""

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from simple_history.models import HistoricalRecords

from security.roles import ROLES

ROLE_CHOICES = [(role, role) for role in ROLES]


class Severity(models.Model):
    level = models.PositiveSmallIntegerField(
        unique=True, help_text="1 is the most severe."
    )
    name = models.CharField(max_length=16, unique=True, help_text="Sev1, Sev2...")
    title = models.CharField(max_length=100)
    meaning = models.TextField(help_text="What this level means for this business.")
    examples = models.TextField(blank=True, default="")
    response_minutes = models.PositiveIntegerField(
        help_text="A page must be acknowledged and work started within this time."
    )
    update_minutes = models.PositiveIntegerField(
        help_text="The commander posts a status update at least this often."
    )
    who_must_be_told = models.TextField()
    inform_email = models.CharField(
        max_length=500,
        blank=True,
        default="",
        help_text="E-mail addresses (comma-separated) told when an incident of "
        "this level is declared, changes level or is resolved.",
    )
    pages_at_night = models.BooleanField(
        help_text="Off: a page that would start at night waits for the morning "
        "(INCIDENTS_NIGHT_* settings)."
    )
    escalation_repeats = models.PositiveSmallIntegerField(
        default=0,
        validators=[MaxValueValidator(5)],
        help_text="How many times the whole policy starts over after its last "
        "step when nobody acknowledged.",
    )
    history = HistoricalRecords()

    class Meta:
        ordering = ["level"]
        verbose_name_plural = "severities"

    def __str__(self):
        return f"{self.name} ({self.title})"

    @property
    def alert_severity(self) -> str:
        """The alerts app's (PagerDuty's) word for this level."""
        return {1: "critical", 2: "error", 3: "warning"}.get(self.level, "info")


class EscalationStep(models.Model):
    """One step of a severity's escalation policy: tell someone, then wait."""

    severity = models.ForeignKey(
        Severity, on_delete=models.CASCADE, related_name="escalation_steps"
    )
    position = models.PositiveSmallIntegerField(default=1)
    # Exactly one of the two: whoever is on call in the rotation, or a person.
    rotation = models.ForeignKey(
        "incidents.Rotation",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="escalation_steps",
    )
    person = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    via_pagerduty = models.BooleanField("PagerDuty", default=True)
    via_slack = models.BooleanField("Slack", default=True)
    via_email = models.BooleanField("e-mail", default=False)
    wait_minutes = models.PositiveSmallIntegerField(
        default=5,
        validators=[MinValueValidator(1)],
        help_text="How long to wait for an acknowledgement before the next step.",
    )
    history = HistoricalRecords()

    class Meta:
        ordering = ["severity__level", "position", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(rotation__isnull=True) ^ Q(person__isnull=True),
                name="escalation_step_one_target",
            ),
            models.CheckConstraint(
                condition=Q(via_pagerduty=True) | Q(via_slack=True) | Q(via_email=True),
                name="escalation_step_a_channel",
            ),
        ]

    def __str__(self):
        return f"{self.severity.name} step {self.position}: {self.target_label}"

    @property
    def target_label(self) -> str:
        if self.rotation is not None:
            return f"on call in {self.rotation.name}"
        return self.person.get_username() if self.person is not None else "nobody"

    @property
    def channels(self) -> list[str]:
        wanted = [
            ("pagerduty", self.via_pagerduty),
            ("slack", self.via_slack),
            ("email", self.via_email),
        ]
        return [channel for channel, on in wanted if on]


class RollbackAuthority(models.Model):
    """A role that may order a rollback or a kill switch at a severity."""

    class Order(models.TextChoices):
        ROLLBACK = "rollback", "rollback of a release"
        KILL_SWITCH = "kill_switch", "feature-flag kill switch"

    severity = models.ForeignKey(
        Severity, on_delete=models.CASCADE, related_name="rollback_authorities"
    )
    order = models.CharField(max_length=16, choices=Order.choices)
    role = models.CharField(max_length=64, choices=ROLE_CHOICES)
    history = HistoricalRecords()

    class Meta:
        ordering = ["severity__level", "order", "role"]
        verbose_name_plural = "rollback authorities"
        constraints = [
            models.UniqueConstraint(
                fields=["severity", "order", "role"], name="rollback_authority_once"
            )
        ]

    def __str__(self):
        return f"{self.severity.name}: {self.role} may order a {self.order}"
