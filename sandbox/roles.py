"""Who may look at the sandbox provider's side (``sync_roles``).

Read-only for everyone on the operations side: the demo shows what the
"provider" holds next to our own books. Nobody changes it in the admin;
the control API and sandbox.services do that.
"""

VIEW = [
    "sandbox.view_sandboxpayout",
    "sandbox.view_sandboxdeposit",
    "sandbox.view_sandboxidempotencykey",
    "sandbox.view_sandboxplan",
    "sandbox.view_sandboxsettlementline",
    "sandbox.view_sandboxwebhook",
    "sandbox.view_sandboxwebhookattempt",
]

GRANTS = {
    "Viewer": VIEW,
    "Operator": VIEW,
    "Approver": VIEW,
    "Incident commander": VIEW,
}
