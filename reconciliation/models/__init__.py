"""Reconciliation: the daily report (daily.py) and the deep ledger scan (deep.py)."""

from reconciliation.models.daily import (
    DailyReport,
    DailyReportLedgerLine,
    DailyReportOperationLine,
    DailyReportSettlementItem,
    DailyReportStatement,
    DailyReportStuckLine,
)

__all__ = [
    "DailyReport",
    "DailyReportLedgerLine",
    "DailyReportOperationLine",
    "DailyReportSettlementItem",
    "DailyReportStatement",
    "DailyReportStuckLine",
]
