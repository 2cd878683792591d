"""Alerts and every attempt to deliver them.

An ``Alert`` is one problem under a stable key (``job.<name>.failed``): it is
triggered once, updated while it lasts and resolved when it ends. Each message
about it to one channel is a ``Delivery``; each HTTP call or SMTP send is a
``DeliveryAttempt``. A delivery that the channel refuses or that exhausts its
retries hands over to the fallback channel (e-mail); one that even the
fallback cannot deliver stays ``failed`` in the admin.
"""

from django.db import models
from django.db.models import Q
from django.utils import timezone


class Alert(models.Model):
    class Status(models.TextChoices):
        TRIGGERED = "triggered"
        RESOLVED = "resolved"

    # The PagerDuty dedup key too: the same problem keeps the same key.
    key = models.CharField(max_length=255)
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.TRIGGERED
    )
    summary = models.CharField(max_length=1024)
    severity = models.CharField(max_length=16)
    source = models.CharField(max_length=255)
    component = models.CharField(max_length=255, blank=True, default="")
    group = models.CharField(max_length=255, blank=True, default="")
    alert_class = models.CharField(max_length=255, blank=True, default="")
    details = models.JSONField(default=dict, blank=True)
    # A route name from settings.ALERT_ROUTES, or "custom" when the caller
    # named its targets.
    route = models.CharField(max_length=64)
    # Why nobody was notified (a maintenance window), when nobody was.
    muted_reason = models.CharField(max_length=500, blank=True, default="")
    triggered_at = models.DateTimeField(default=timezone.now)
    last_triggered_at = models.DateTimeField(default=timezone.now)
    trigger_count = models.PositiveIntegerField(default=1)
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-triggered_at", "-id"]
        constraints = [
            # One open alert per key: a repeat trigger updates it.
            models.UniqueConstraint(
                fields=["key"],
                condition=Q(status="triggered"),
                name="alert_one_open_per_key",
            )
        ]
        indexes = [
            models.Index(fields=["resolved_at"], name="alert_resolved_at"),
        ]

    def __str__(self):
        return f"{self.key} ({self.status})"

    @property
    def muted(self) -> bool:
        return bool(self.muted_reason)


class Delivery(models.Model):
    class Channel(models.TextChoices):
        PAGERDUTY = "pagerduty"
        SLACK = "slack"
        EMAIL = "email"

    class Action(models.TextChoices):
        TRIGGER = "trigger"
        RESOLVE = "resolve"
        # A plain notification that belongs to no alert (alerts.services.notify).
        NOTIFY = "notify"

    class Status(models.TextChoices):
        PENDING = "pending"
        DELIVERED = "delivered"
        # Refused, or out of retries: see ``fallback`` and the attempts.
        FAILED = "failed"

    alert = models.ForeignKey(
        Alert,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="deliveries",
    )
    channel = models.CharField(max_length=16, choices=Channel.choices)
    # Empty means the channel's configured default (settings), so that no
    # webhook URL or routing key is copied into the database.
    target = models.CharField(max_length=500, blank=True, default="")
    action = models.CharField(max_length=16, choices=Action.choices)
    message = models.JSONField()
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.PENDING
    )
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    last_error = models.CharField(max_length=500, blank=True, default="")
    fallback_for = models.OneToOneField(
        "self",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="fallback",
    )
    created_at = models.DateTimeField(default=timezone.now)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "deliveries"
        indexes = [
            # The sweeper's "pending and due" scan.
            models.Index(
                fields=["next_attempt_at"],
                condition=Q(status="pending"),
                name="delivery_pending_due",
            ),
            models.Index(fields=["created_at"], name="delivery_created_at"),
        ]

    def __str__(self):
        return f"{self.channel} {self.action} {self.status}"


class DeliveryAttempt(models.Model):
    class Outcome(models.TextChoices):
        IN_FLIGHT = "in_flight"
        DELIVERED = "delivered"
        # Worth another try later: timeouts, 429, 5xx.
        RETRYABLE = "retryable"
        # Refused for good: a 400 means the message itself is wrong.
        REFUSED = "refused"

    delivery = models.ForeignKey(
        Delivery, on_delete=models.CASCADE, related_name="attempt_rows"
    )
    number = models.PositiveIntegerField()
    started_at = models.DateTimeField(default=timezone.now)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    outcome = models.CharField(
        max_length=16, choices=Outcome.choices, default=Outcome.IN_FLIGHT
    )
    http_status = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.CharField(max_length=500, blank=True, default="")

    class Meta:
        ordering = ["delivery", "number"]
        constraints = [
            models.UniqueConstraint(
                fields=["delivery", "number"], name="delivery_attempt_number"
            )
        ]

    def __str__(self):
        return f"delivery {self.delivery_id} attempt {self.number}: {self.outcome}"
