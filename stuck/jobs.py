"""Stuck detection as a scheduled job, and how long closed cases are kept.

The job framework (jobs/) records each run, keeps it single-flight and pages
when it raises. A run that succeeds but opens more new cases than
STUCK_ALERT_NEW_CASES_THRESHOLD still needs a person: it opens its own alert,
which the next run at or under the threshold resolves. The cases themselves
stay open in the admin until their items move on.
"""

from datetime import timedelta

from django.db.models import Q
from django.utils import timezone

from alerts.services import alert_resolve, alert_trigger
from jobs.registry import job_register
from jobs.retention import retention_register
from jobs.selectors import maintenance_window_active
from stuck.services import DetectionResult, stuck_detect

JOB = "detect_stuck_finance_jobs"
NEW_CASES_ALERT = "stuck:new-cases-above-threshold"


def detect_stuck_job() -> DetectionResult:
    result = stuck_detect()
    if not result.threshold_exceeded:
        alert_resolve(key=NEW_CASES_ALERT)
        return result

    window = maintenance_window_active(job=JOB, at=timezone.now())
    alert_trigger(
        key=NEW_CASES_ALERT,
        summary=(
            f"{result.new_cases} new stuck finance cases in one detection run "
            f"(threshold {result.alert_threshold}); "
            f"{result.open_cases} open, {result.sla_breaches} past the payout SLA"
        ),
        severity="error",
        details=result.counts,
        component="stuck",
        group="finance",
        alert_class="stuck_cases",
        route="page",
        muted_reason=(
            f"maintenance window {window.pk}: {window.reason}" if window else ""
        ),
    )
    return result


job_register(
    name=JOB,
    func="stuck.jobs.detect_stuck_job",
    description="Opens, updates and closes stuck cases; pages on a burst of new ones.",
    period=timedelta(minutes=5),
    grace=timedelta(minutes=10),
    # A full run over a million operations takes about a second (bench/).
    max_run_time=timedelta(minutes=4),
)

retention_register(
    name="stuck_cases",
    model="stuck.StuckCase",
    date_field="closed_at",
    default_days=180,
    condition=Q(closed_at__isnull=False),
)
