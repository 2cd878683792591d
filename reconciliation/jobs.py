"""The daily reconciliation report as a scheduled job (yesterday, UTC).

A statement that cannot be fetched, or a mail that cannot be sent, raises
and the framework pages; rerunning the day replaces its report. A day with
no operations at all fails the output check: on a live platform that means
the report read the wrong database or the business stopped.
"""

from datetime import UTC, datetime, timedelta

from jobs.registry import job_register
from reconciliation.services import DailyReportResult, daily_report_build


def daily_report_yesterday() -> DailyReportResult:
    return daily_report_build(report_date=datetime.now(UTC).date() - timedelta(days=1))


def report_has_rows(result: DailyReportResult) -> str | None:
    if result.row_count == 0:
        return f"the report of {result.report_date} has no operations at all"
    return None


job_register(
    name="daily_reconciliation_report",
    func="reconciliation.jobs.daily_report_yesterday",
    description="Builds, stores and mails yesterday's reconciliation report.",
    period=timedelta(days=1),
    # The CronJob and beat run it at 02:30 UTC; by 08:30 someone should know.
    grace=timedelta(hours=6),
    max_run_time=timedelta(minutes=30),
    output_check=report_has_rows,
)
