"""What the admin, the watchdog and the alerts read about jobs."""

from datetime import UTC, datetime
from typing import TYPE_CHECKING, TypedDict

from django.db.models import Count, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce

from jobs.models import Job, JobRun, MaintenanceWindow

if TYPE_CHECKING:
    # django-stubs-ext is a dev dependency: only the checker imports it.
    from django_stubs_ext import WithAnnotations

FAILED = [JobRun.Outcome.FAILED, JobRun.Outcome.TIMED_OUT]
# Stands in for "no success yet" when counting failures since the last one.
_BEGINNING = datetime(2000, 1, 1, tzinfo=UTC)


class JobStatus(TypedDict):
    """The annotations ``jobs_with_status`` adds to each job row."""

    last_run_at: datetime | None
    last_outcome: str | None
    last_success_at: datetime | None
    consecutive_failures: int


if TYPE_CHECKING:
    JobWithStatus = WithAnnotations[Job, JobStatus]


def jobs_with_status() -> "QuerySet[JobWithStatus]":
    """Job rows annotated with their last run, last success and failure streak.

    Each annotation is a subquery served by the (job, outcome, started_at)
    index, so the whole list costs one query however long the history is.
    """
    runs = JobRun.objects.filter(job=OuterRef("name")).order_by("-started_at", "-id")
    successes = runs.filter(outcome=JobRun.Outcome.SUCCESS)
    streak = (
        JobRun.objects.filter(
            job=OuterRef("name"),
            outcome__in=FAILED,
            started_at__gt=Coalesce(OuterRef("last_success_at"), _BEGINNING),
        )
        .values("job")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return Job.objects.annotate(
        last_run_at=Subquery(runs.values("started_at")[:1]),
        last_outcome=Subquery(runs.values("outcome")[:1]),
        last_success_at=Subquery(successes.values("started_at")[:1]),
    ).annotate(consecutive_failures=Coalesce(Subquery(streak), 0))


def consecutive_failures(*, job: str) -> int:
    return jobs_with_status().get(name=job).consecutive_failures


def maintenance_window_active(*, job: str, at: datetime) -> MaintenanceWindow | None:
    return (
        MaintenanceWindow.objects.filter(Q(job="") | Q(job=job))
        .filter(starts_at__lte=at, ends_at__gt=at)
        .order_by("-ends_at")
        .first()
    )


def job_next_due(state: "JobWithStatus", job) -> datetime:
    """When the job must next have succeeded by (before grace)."""
    return (state.last_success_at or state.first_seen_at) + job.period


def job_health(state: "JobWithStatus", job, now: datetime) -> str:
    """One word for the admin: ok, failing, overdue, running or unregistered.

    ``state`` comes from ``jobs_with_status``; ``job`` is its registration.
    """
    if job is None:
        return "unregistered"
    if state.consecutive_failures:
        return "failing"
    if now > job_next_due(state, job) + job.grace:
        return "overdue"
    if state.last_outcome == JobRun.Outcome.RUNNING:
        return "running"
    return "ok"
