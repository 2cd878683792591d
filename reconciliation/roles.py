"""Who may read the daily reconciliation reports (nobody edits them)."""

VIEW = ["reconciliation.view_dailyreport"]

GRANTS = {
    "Viewer": VIEW,
    "Operator": VIEW,
    "Approver": VIEW,
    "Incident commander": VIEW,
}
