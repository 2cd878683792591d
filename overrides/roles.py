"""Who may do what with override requests (applied by ``sync_roles``).

The two-person rule lives in overrides.services (the approver is never the
doer); these grants decide who may take each side. Operator and Approver
are never held together (security.roles.SEPARATION_OF_DUTIES).
"""

VIEW = "overrides.view_overriderequest"

GRANTS = {
    "Viewer": [VIEW],
    "Operator": [
        VIEW,
        "overrides.add_overriderequest",
        "overrides.withdraw_overriderequest",
    ],
    "Approver": [
        VIEW,
        "overrides.approve_overriderequest",
        "overrides.reject_overriderequest",
    ],
    "Incident commander": [VIEW],
}
