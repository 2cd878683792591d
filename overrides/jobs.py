"""The override workflow's scheduled job (found by jobs.apps.JobsConfig.ready)."""

from datetime import timedelta

from jobs.registry import job_register

job_register(
    name="override_requests_expire",
    func="overrides.services.override_requests_expire",
    description="Expires override requests whose approver did not act in time.",
    period=timedelta(minutes=1),
    # A few missed minutes only leave a request open a little past its
    # deadline; approval refuses an expired request by itself anyway.
    grace=timedelta(minutes=15),
    max_run_time=timedelta(minutes=2),
    alert_after=3,
    route="chat",
    severity="warning",
)
