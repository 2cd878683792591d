"""Reconciliation: the daily report (daily.py) and the deep ledger scan (deep.py)."""

from reconciliation.models.daily import (
    DailyReport,
    DailyReportLedgerLine,
    DailyReportOperationLine,
    DailyReportSettlementItem,
    DailyReportStatement,
    DailyReportStuckLine,
)
from reconciliation.models.deep import (
    CHECK_INVARIANTS,
    Check,
    DeepScan,
    Finding,
    Invariant,
    ReconciliationTicket,
    ScanRange,
    SubjectType,
    TicketDelivery,
    TicketDeliveryAttempt,
)

__all__ = [
    "CHECK_INVARIANTS",
    "Check",
    "DailyReport",
    "DailyReportLedgerLine",
    "DailyReportOperationLine",
    "DailyReportSettlementItem",
    "DailyReportStatement",
    "DailyReportStuckLine",
    "DeepScan",
    "Finding",
    "Invariant",
    "ReconciliationTicket",
    "ScanRange",
    "SubjectType",
    "TicketDelivery",
    "TicketDeliveryAttempt",
]
