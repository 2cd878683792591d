"""Roles: defined here, granted per app, applied by ``manage.py sync_roles``.

Each role is a Django group whose permissions are exactly the union of the
grants that the installed apps declare. An app declares its grants in its
own ``<app>/roles.py``::

    # stuck/roles.py
    GRANTS = {
        "Viewer": ["stuck.view_stuckcase"],
        "Operator": ["stuck.view_stuckcase", "stuck.change_stuckcase"],
    }

Keys are role names from ``ROLES`` below; values are ``app_label.codename``
permission strings. Roles do not inherit from each other: list what each
role needs. An unknown role or permission stops ``sync_roles`` with the list
of offenders, so a typo cannot silently grant nothing.

Security's own grants are at the end of this module.
"""

from dataclasses import dataclass
from importlib import import_module
from importlib.util import find_spec

from django.apps import apps
from django.contrib.auth.models import Permission

VIEWER = "Viewer"
OPERATOR = "Operator"
APPROVER = "Approver"
INCIDENT_COMMANDER = "Incident commander"
SECURITY_ADMIN = "Security admin"

ROLES = {
    VIEWER: "Reads what operators see; changes nothing.",
    OPERATOR: "Day-to-day work: safe retries, override requests, tickets, stuck cases.",
    APPROVER: "The on-call who approves (or rejects) override requests.",
    INCIDENT_COMMANDER: "Runs an incident: severity, escalation, communication.",
    SECURITY_ADMIN: "Roles, waivers and MFA resets; never moves money.",
}

# Role pairs one person must not hold together, and why.
SEPARATION_OF_DUTIES = [
    (OPERATOR, APPROVER, "could request and approve the same override"),
    (SECURITY_ADMIN, OPERATOR, "could grant themselves what they then use"),
    (SECURITY_ADMIN, APPROVER, "could grant themselves what they then approve"),
    (
        SECURITY_ADMIN,
        INCIDENT_COMMANDER,
        "could grant themselves what they then use",
    ),
]


class RoleDefinitionError(Exception):
    """A roles.py names a role or a permission that does not exist."""


@dataclass(frozen=True)
class Grant:
    role: str
    permission: str  # "app_label.codename"
    source: str  # the module that declared it


def declared_grants() -> list[Grant]:
    """Every grant of every installed app's ``roles.py``, in app order."""
    grants: list[Grant] = []
    for config in apps.get_app_configs():
        module_name = f"{config.name}.roles"
        if find_spec(module_name) is None:
            continue
        module = import_module(module_name)
        for role, permissions in getattr(module, "GRANTS", {}).items():
            grants.extend(Grant(role, perm, module_name) for perm in permissions)
    return grants


def role_permissions() -> dict[str, set[Permission]]:
    """Each role's exact permission set; RoleDefinitionError lists every bad grant."""
    known = {
        f"{perm.content_type.app_label}.{perm.codename}": perm
        for perm in Permission.objects.select_related("content_type")
    }
    result: dict[str, set[Permission]] = {role: set() for role in ROLES}
    problems = []
    for grant in declared_grants():
        if grant.role not in ROLES:
            problems.append(f"{grant.source}: unknown role {grant.role!r}")
        elif grant.permission not in known:
            problems.append(f"{grant.source}: unknown permission {grant.permission!r}")
        else:
            result[grant.role].add(known[grant.permission])
    if problems:
        raise RoleDefinitionError("; ".join(problems))
    return result


def conflicting_roles(role_names) -> list[tuple[str, str, str]]:
    held = set(role_names)
    return [
        (first, second, why)
        for first, second, why in SEPARATION_OF_DUTIES
        if first in held and second in held
    ]


GRANTS = {
    SECURITY_ADMIN: [
        "auth.view_user",
        "auth.add_user",
        "auth.change_user",
        "auth.view_group",
        "security.view_historicaluser",
        "security.view_auditentry",
        "security.manage_roles",
        "security.reset_mfa",
        "security.view_access_review",
        "security.view_backupcodedevice",
        "otp_totp.view_totpdevice",
    ],
    INCIDENT_COMMANDER: ["security.view_auditentry"],
}
