"""Who may see and work stuck cases, and who may change the rules.

Operators work cases (acknowledge, assign, note: ``work_stuckcase``) and
safely retry their payouts (``retry_stuckcase``, stuck/retry.py). The
rules decide what pages the on-call, so the on-call Approver changes them,
each change with a reason in the rule's history.
"""

VIEW = [
    "stuck.view_stuckcase",
    "stuck.view_stuckcaseactivity",
    "stuck.view_stuckrule",
    "stuck.view_historicalstuckrule",
]

GRANTS = {
    "Viewer": VIEW,
    "Operator": [*VIEW, "stuck.work_stuckcase", "stuck.retry_stuckcase"],
    "Approver": [*VIEW, "stuck.add_stuckrule", "stuck.change_stuckrule"],
    "Incident commander": VIEW,
}
