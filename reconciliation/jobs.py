"""The reconciliation app's scheduled jobs: the daily report and the weekly
deep scan.

The daily reconciliation report as a scheduled job (yesterday, UTC).

A statement that cannot be fetched, or a mail that cannot be sent, raises
and the framework pages; rerunning the day replaces its report. A day with
no operations at all fails the output check: on a live platform that means
the report read the wrong database or the business stopped.
"""

from datetime import UTC, datetime, timedelta

from django.conf import settings

from jobs.registry import job_register
from reconciliation.services import DailyReportResult, daily_report_build
from reconciliation.services.deep import ScanBusy, ScanResult, deep_reconcile_run


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


def deep_reconciliation_weekly() -> ScanResult | dict:
    """The full scan, settling tickets; a scan already running makes it a no-op.

    A person's scan (``deep_reconcile --apply``) holding the scan lock when
    the week's run starts covers the week, so that run records a skip
    instead of failing and paging.
    """
    try:
        return deep_reconcile_run(
            via="job", parallel=settings.RECON_SCAN_PARALLEL, settle_tickets=True
        )
    except ScanBusy:
        return {"skipped": 1}


def scan_completed(result: ScanResult | dict) -> str | None:
    if isinstance(result, ScanResult) and not result.complete:
        return f"deep scan {result.scan_id} ended {result.status}"
    return None


job_register(
    name="deep_reconciliation",
    func="reconciliation.jobs.deep_reconciliation_weekly",
    description="Scans the whole ledger against wallets and operations; "
    "opens, extends and closes a ticket for every mismatch.",
    period=timedelta(days=7),
    # The CronJob and beat run it on Sunday at 03:30 UTC; by Monday morning
    # someone should know it did not.
    grace=timedelta(hours=30),
    max_run_time=timedelta(hours=4),
    output_check=scan_completed,
)
