"""On-call: rotations, their members, overrides of a shift, and how to reach
each person.

Who is on call at an instant is computed, never stored:
``incidents.selectors.oncall_resolve(rotation, at)``.
"""

import zoneinfo

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from simple_history.models import HistoricalRecords

from incidents.models.severities import ROLE_CHOICES

WEEKDAYS = [
    (0, "Monday"),
    (1, "Tuesday"),
    (2, "Wednesday"),
    (3, "Thursday"),
    (4, "Friday"),
    (5, "Saturday"),
    (6, "Sunday"),
]


def validate_time_zone(value: str) -> None:
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValidationError(
            f"{value!r} is not an IANA time zone (e.g. Europe/Berlin)"
        ) from None


class OnCallProfile(models.Model):
    """How to reach one person when they are paged.

    The PagerDuty routing key and the Slack webhook are secrets: the admin
    shows only their first characters once saved.
    """

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="oncall"
    )
    pagerduty_routing_key = models.CharField(
        max_length=64,
        blank=True,
        default="",
        help_text="The integration key of this person's PagerDuty service.",
    )
    slack_webhook_url = models.URLField(
        max_length=500,
        blank=True,
        default="",
        help_text="A webhook that posts to this person directly.",
    )
    slack_handle = models.CharField(
        max_length=64,
        blank=True,
        default="",
        help_text="Slack member ID (U0123ABC); without a personal webhook the "
        "page goes to the team channel (SLACK_WEBHOOK_URL) mentioning them.",
    )
    email = models.EmailField(
        blank=True, default="", help_text="Empty: the account's e-mail address."
    )
    phone = models.CharField(
        max_length=32,
        blank=True,
        default="",
        help_text="For people to call; nothing is sent to it.",
    )
    history = HistoricalRecords()

    class Meta:
        verbose_name = "on-call profile"

    def __str__(self):
        return f"on-call profile of {self.user.get_username()}"


class Rotation(models.Model):
    """People taking turns, handing over at a local weekday and time.

    The first shift starts on the first ``handoff_weekday`` on or after
    ``starts_on``, at ``handoff_time`` in ``time_zone``; each shift lasts
    ``shift_days`` calendar days and the members take them in order. The
    handoff keeps its wall-clock time across daylight saving changes.

    Shifts are computed from the rotation as it is now, so an edit (members,
    zone, handoff) also changes who "was" on call in the past. That is
    acceptable because the record that matters, who was actually paged,
    is kept on each page's notifications; a schedule with effective dates
    would be needed to answer "who was on call last Tuesday" after an edit.
    """

    name = models.CharField(max_length=100, unique=True)
    description = models.CharField(max_length=500, blank=True, default="")
    role = models.CharField(
        max_length=64,
        choices=ROLE_CHOICES,
        blank=True,
        default="",
        help_text="The role this rotation staffs: whoever is on call in the "
        "Approvers rotation is the on-call Approver for other apps.",
    )
    time_zone = models.CharField(
        max_length=64, default="Europe/Berlin", validators=[validate_time_zone]
    )
    handoff_weekday = models.PositiveSmallIntegerField(choices=WEEKDAYS, default=0)
    handoff_time = models.TimeField(default="09:00")
    shift_days = models.PositiveSmallIntegerField(
        default=7, validators=[MinValueValidator(1), MaxValueValidator(28)]
    )
    starts_on = models.DateField(default=timezone.localdate)
    history = HistoricalRecords()

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.time_zone)


class RotationMember(models.Model):
    rotation = models.ForeignKey(
        Rotation, on_delete=models.CASCADE, related_name="members"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    position = models.PositiveSmallIntegerField(default=1)
    history = HistoricalRecords()

    class Meta:
        ordering = ["rotation", "position", "id"]

    def __str__(self):
        return f"{self.rotation.name} #{self.position}: {self.user.get_username()}"


class RotationOverride(models.Model):
    """Someone else covers part of a rotation (a swap, a sick day).

    Where overrides overlap, the one created last wins.
    """

    rotation = models.ForeignKey(
        Rotation, on_delete=models.CASCADE, related_name="overrides"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    reason = models.CharField(max_length=500)
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
        ordering = ["-starts_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(ends_at__gt=F("starts_at")),
                name="rotation_override_ends_after_start",
            )
        ]
        indexes = [
            # oncall_resolve: the overrides of one rotation covering an instant.
            models.Index(
                fields=["rotation", "starts_at", "ends_at"],
                name="rotation_override_window",
            )
        ]

    def __str__(self):
        return f"{self.user.get_username()} covers {self.rotation.name}"
