"""Who may read the reconciliation reports, scans and tickets, and who works
the tickets (nobody edits a report, a scan or a finding)."""

VIEW = [
    "reconciliation.view_dailyreport",
    "reconciliation.view_deepscan",
    "reconciliation.view_finding",
    "reconciliation.view_reconciliationticket",
    "reconciliation.view_ticketdelivery",
]
# Owner, status, priority and notes of a ticket; resuming an interrupted
# scan; sending a failed delivery to the tracker again.
WORK_TICKETS = [
    "reconciliation.change_reconciliationticket",
    "reconciliation.resume_deepscan",
    "reconciliation.resend_ticketdelivery",
]

GRANTS = {
    "Viewer": VIEW,
    "Operator": VIEW + WORK_TICKETS,
    "Approver": VIEW,
    "Incident commander": VIEW,
}
