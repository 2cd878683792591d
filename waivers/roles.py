"""What each role may do with waivers and secret records (see security/roles.py).

Security admins own the register: they record waivers and approve, reject
or close them (never their own: services.register.waiver_approve and a database
constraint refuse it). Everyone else may read the register, not the
secrets' records.
"""

from security.roles import (
    APPROVER,
    INCIDENT_COMMANDER,
    OPERATOR,
    SECURITY_ADMIN,
    VIEWER,
)

READ_REGISTER = ["waivers.view_waiver"]

GRANTS = {
    SECURITY_ADMIN: [
        "waivers.view_waiver",
        "waivers.add_waiver",
        "waivers.change_waiver",
        "waivers.approve_waiver",
        "waivers.close_waiver",
        "waivers.view_historicalwaiver",
        "waivers.view_secretobservation",
        "waivers.view_secretrotation",
        "waivers.view_reminder",
    ],
    VIEWER: READ_REGISTER,
    OPERATOR: READ_REGISTER,
    APPROVER: READ_REGISTER,
    INCIDENT_COMMANDER: READ_REGISTER,
}
