"""Scheduled jobs' runs, their single-flight lock rows and maintenance windows.

What a job is (its function, period, alert rules) lives in code
(jobs/registry.py); a ``Job`` row only remembers what code cannot: when the
job was first seen (the dead man's switch counts from there until the first
success) and, without Redis, who holds its lock.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from simple_history.models import HistoricalRecords


class Job(models.Model):
    name = models.CharField(max_length=100, unique=True)
    first_seen_at = models.DateTimeField(default=timezone.now)
    # The database lock, used only when there is no Redis (jobs/locks.py).
    lock_token = models.CharField(max_length=64, blank=True, default="")
    lock_expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


class JobRun(models.Model):
    class Trigger(models.TextChoices):
        BEAT = "beat"
        CRON = "cron"
        MANUAL = "manual"

    class Outcome(models.TextChoices):
        RUNNING = "running"
        SUCCESS = "success"
        FAILED = "failed"
        # Another copy of the job held the lock: this one did nothing.
        SKIPPED_LOCKED = "skipped_locked"
        # Past its maximum run time and its process stopped holding the lock
        # (killed, out of memory, node lost): closed by the watchdog.
        TIMED_OUT = "timed_out"

    job = models.CharField(max_length=100)
    trigger = models.CharField(max_length=16, choices=Trigger.choices)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    host = models.CharField(max_length=255)
    pid = models.PositiveIntegerField()
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    outcome = models.CharField(
        max_length=16, choices=Outcome.choices, default=Outcome.RUNNING
    )
    counts = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True, default="")
    traceback = models.TextField(blank=True, default="")
    # The run's own log lines (structured, redacted); cleared by retention
    # before the row itself goes.
    log = models.TextField(blank=True, default="")
    lock_token = models.CharField(max_length=64, blank=True, default="")

    class Meta:
        ordering = ["-started_at", "-id"]
        indexes = [
            # A job's last run (jobs_with_status), newest first.
            models.Index(fields=["job", "started_at"], name="jobrun_job_started"),
            # A job's last success and the failures since it.
            models.Index(
                fields=["job", "outcome", "started_at"], name="jobrun_job_outcome"
            ),
            # The watchdog's "runs still running" scan stays tiny.
            models.Index(
                fields=["started_at"],
                condition=Q(outcome="running"),
                name="jobrun_running",
            ),
            # Retention walks old runs by age.
            models.Index(fields=["started_at"], name="jobrun_started"),
        ]

    def __str__(self):
        return f"{self.job} #{self.pk} {self.outcome}"


class MaintenanceWindow(models.Model):
    """A stated time during which a job's alerts (or every job's) are muted.

    Muted alerts are still recorded, with the window as their reason.
    """

    job = models.CharField(
        max_length=100, blank=True, default="", help_text="empty: every job"
    )
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    reason = models.CharField(max_length=500)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
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
                condition=Q(ends_at__gt=models.F("starts_at")),
                name="maintenance_window_ends_after_start",
            )
        ]

    def __str__(self):
        return f"{self.job or 'all jobs'}: {self.reason}"
