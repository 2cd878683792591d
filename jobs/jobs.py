"""The scheduled jobs and retention targets of the jobs app itself."""

from datetime import timedelta

from django.db.models import Q

from jobs.registry import job_register
from jobs.retention import retention_register

job_register(
    name="jobs_watchdog",
    func="jobs.services.jobs_check",
    description="Pages for overdue jobs, hung runs and runs whose process died.",
    # Beat runs it every minute; check_job_heartbeats (a CronJob outside
    # beat) pages when it stops, which is how a dead beat is noticed.
    period=timedelta(minutes=1),
    grace=timedelta(minutes=5),
    max_run_time=timedelta(minutes=2),
)

job_register(
    name="retention_purge",
    func="jobs.retention.retention_purge",
    description="Purges run logs, webhook payloads, alert deliveries and more.",
    period=timedelta(days=1),
    grace=timedelta(hours=6),
    max_run_time=timedelta(hours=1),
    # A missed night costs nothing but disk: page only when it keeps failing.
    alert_after=3,
    route="chat",
    severity="warning",
)

retention_register(
    name="job_run_logs",
    model="jobs.JobRun",
    date_field="started_at",
    default_days=14,
    clear={"log": "", "traceback": ""},
    condition=~Q(outcome="running"),
)
retention_register(
    name="job_runs",
    model="jobs.JobRun",
    date_field="started_at",
    default_days=90,
    condition=~Q(outcome="running"),
)
# Finance keeps every webhook delivery (the webhook SLO counts them) but not
# its body: the payload is the only part with customer data in it. This is
# the one write to a finance table outside finance/services, and it touches
# no money, state or ledger row.
retention_register(
    name="webhook_payloads",
    model="finance.WebhookDelivery",
    date_field="received_at",
    default_days=30,
    clear={"payload": None},
)
