"""Writes of the reconciliation app, one module per feature: the daily report
(daily.py), the deep scan (deep.py) and its tickets (tickets.py).

The daily report's names are re-exported here, where its callers import them.
"""

from reconciliation.services.daily import (
    DailyReportResult,
    StatementInput,
    daily_report_build,
    daily_report_send,
    report_content,
    report_sections,
)

__all__ = [
    "DailyReportResult",
    "StatementInput",
    "daily_report_build",
    "daily_report_send",
    "report_content",
    "report_sections",
]
