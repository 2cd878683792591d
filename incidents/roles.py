"""Who may see and run incidents, on-call and exercises (``sync_roles``).

Everyone on the operations side reads everything. On-call engineers
(Operators) declare incidents, post updates, swap shifts and work their
action items; the Incident commander also owns the matrix, the rotations,
the escalation tests and the exercises. Rollback and kill-switch orders are
not a permission: the rollback authority of each severity names the roles.
"""

MODELS = [
    "severity",
    "escalationstep",
    "rollbackauthority",
    "oncallprofile",
    "rotation",
    "rotationmember",
    "rotationoverride",
    "incident",
    "timelineentry",
    "incidentlink",
    "review",
    "actionitem",
    "page",
    "pagenotification",
    "escalationtest",
    "scenario",
    "inject",
    "exercise",
    "participant",
    "injectdelivery",
    "exercisenote",
]
VIEW = [f"incidents.view_{model}" for model in MODELS]


def _change(*models: str) -> list[str]:
    return [
        f"incidents.{verb}_{model}" for model in models for verb in ("add", "change")
    ]


ON_CALL_WORK = [
    "incidents.add_incident",  # declare
    "incidents.change_incident",  # updates, status, links
    "incidents.acknowledge_page",
    *_change("rotationoverride", "actionitem"),
]

GRANTS = {
    "Viewer": VIEW,
    "Operator": VIEW + ON_CALL_WORK,
    "Approver": [*VIEW, "incidents.acknowledge_page"],
    "Incident commander": VIEW
    + ON_CALL_WORK
    + _change(
        "severity",
        "escalationstep",
        "rollbackauthority",
        "oncallprofile",
        "rotation",
        "rotationmember",
        "review",
        "escalationtest",
        "scenario",
        "inject",
        "exercise",
        "participant",
        "exercisenote",
    )
    + [
        "incidents.delete_escalationstep",
        "incidents.delete_rollbackauthority",
        "incidents.delete_rotationmember",
        "incidents.delete_rotationoverride",
        "incidents.delete_inject",
        "incidents.delete_participant",
    ],
}
