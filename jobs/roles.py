"""Who may see scheduled jobs and who may act on them (``sync_roles``).

Running a job by hand and muting alerts with a maintenance window are
operator work; everyone on the operations side may read the run history.
"""

VIEW = ["jobs.view_job", "jobs.view_jobrun", "jobs.view_maintenancewindow"]
ACT = [
    "jobs.change_job",  # the "Run now" action
    "jobs.add_maintenancewindow",
    "jobs.change_maintenancewindow",
]

GRANTS = {
    "Viewer": VIEW,
    "Operator": VIEW + ACT,
    "Approver": VIEW,
    "Incident commander": VIEW + ACT,
}
