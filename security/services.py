"""Writes of the security app: roles, MFA devices. Each one is audited."""

from dataclasses import dataclass, field

import structlog
from django.conf import settings
from django.contrib.auth.models import Group
from django.db import transaction
from django_otp import devices_for_user
from django_otp.plugins.otp_totp.models import TOTPDevice

from security import throttle
from security.audit import audit_record
from security.models import BackupCodeDevice
from security.roles import ROLES, conflicting_roles, role_permissions
from security.stepup import mark_verified

log = structlog.get_logger(__name__)


class SecurityError(Exception):
    """A security rule refused the change; the message says which."""


# --- roles ---------------------------------------------------------------


@dataclass
class RoleChange:
    role: str
    created: bool = False
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return self.created or bool(self.added or self.removed)


def _perm_name(perm) -> str:
    return f"{perm.content_type.app_label}.{perm.codename}"


def roles_sync(*, apply: bool, actor=None) -> list[RoleChange]:
    """Make each role's group hold exactly its declared permissions.

    Returns what differs (or differed) per role; with ``apply=False`` nothing
    is written. Groups that are not roles are left alone (the access review
    reports users in them). Raises RoleDefinitionError for a bad grant.
    """
    wanted = role_permissions()
    changes = []
    with transaction.atomic():
        for role in ROLES:
            group = Group.objects.filter(name=role).first()
            current = (
                set(group.permissions.select_related("content_type"))
                if group
                else set()
            )
            change = RoleChange(
                role=role,
                created=group is None,
                added=sorted(_perm_name(p) for p in wanted[role] - current),
                removed=sorted(_perm_name(p) for p in current - wanted[role]),
            )
            changes.append(change)
            if not apply or not change.changed:
                continue
            if group is None:
                group = Group.objects.create(name=role)
            group.permissions.set(wanted[role])
            audit_record(
                actor=actor,
                action="role.definition_synced",
                target=group,
                before={"permissions": sorted(_perm_name(p) for p in current)},
                after={"permissions": sorted(_perm_name(p) for p in wanted[role])},
                reason="sync_roles",
            )
    return changes


def user_set_roles(*, user, roles: list[str], actor, reason: str, request=None):
    """Give ``user`` exactly ``roles``; staff status follows (any role = staff).

    A second person decides: nobody changes their own roles. A pair of roles
    that breaks separation of duties is refused. One Security admin can
    still create a second account and grant it roles; both steps are in the
    audit log and the access review, and a four-eyes approval of role grants
    (as overrides will have for money) would close it.
    """
    unknown = set(roles) - set(ROLES)
    if unknown:
        raise SecurityError(f"unknown roles: {', '.join(sorted(unknown))}")
    if actor is not None and actor.pk == user.pk:
        raise SecurityError("nobody may change their own roles")
    if not reason.strip():
        raise SecurityError("a role change needs a reason")
    conflicts = conflicting_roles(roles)
    if conflicts:
        first, second, why = conflicts[0]
        raise SecurityError(f"{first} and {second} together: {why}")

    with transaction.atomic():
        before = sorted(user.groups.values_list("name", flat=True))
        # Groups that are not roles (hand-made ones) are kept as they are.
        others = list(user.groups.exclude(name__in=ROLES))
        groups = list(Group.objects.filter(name__in=roles))
        missing = set(roles) - {group.name for group in groups}
        if missing:
            raise SecurityError(
                f"roles not synced yet (run sync_roles --apply): {sorted(missing)}"
            )
        user.groups.set(groups + others)
        was_staff = user.is_staff
        user.is_staff = bool(roles) or user.is_superuser
        if user.is_staff != was_staff:
            user._change_reason = reason
            user.save(update_fields=["is_staff"])
        audit_record(
            actor=actor,
            action="role.assigned",
            target=user,
            before={"roles": before, "is_staff": was_staff},
            after={
                "roles": sorted(user.groups.values_list("name", flat=True)),
                "is_staff": user.is_staff,
            },
            request=request,
            reason=reason,
        )
    return user


# --- MFA -----------------------------------------------------------------


def mfa_enrolment_device(*, user) -> TOTPDevice:
    """The unconfirmed TOTP device this user is enrolling (created on first call).

    Enrolment trusts the password alone: whoever first logs in with the
    account's password binds its second factor. The enrol view therefore
    allows it only within SECURITY_ENROLMENT_WINDOW_HOURS of the account's
    creation or of its last MFA reset (selectors.enrolment_deadline); a
    password that leaks later cannot enrol an attacker's phone.
    """
    device = TOTPDevice.objects.filter(user=user, confirmed=False).first()
    if device is None:
        device = TOTPDevice.objects.create(
            user=user, name="authenticator app", confirmed=False
        )
    return device


def mfa_enrol_confirm(*, user, token: str, request) -> list[str] | None:
    """Confirm the enrolling device with a code from the app.

    On success: confirm the device, create the backup codes, verify the
    session, and return the plain backup codes (shown once, stored hashed).
    On a wrong code: count the failure and return None.
    """
    with transaction.atomic():
        device = (
            TOTPDevice.objects.select_for_update()
            .filter(user=user, confirmed=False)
            .first()
        )
        if device is None or not device.verify_token(token):
            _otp_failed(user=user, request=request, during="enrolment")
            return None
        device.confirmed = True
        device.save(update_fields=["confirmed"])
        TOTPDevice.objects.filter(user=user, confirmed=False).delete()
        backup, _ = BackupCodeDevice.objects.get_or_create(
            user=user, defaults={"name": "backup codes"}
        )
        codes = backup.replace_codes(settings.SECURITY_BACKUP_CODE_COUNT)
        audit_record(
            actor=user,
            action="mfa.enrolled",
            target=user,
            after={"devices": ["totp", "backup codes"], "backup_codes": len(codes)},
            request=request,
        )
    _session_verified(request=request, user=user, device=device)
    return codes


def mfa_verify(*, user, token: str, request, purpose: str = "login") -> bool:
    """Check a code against the user's confirmed devices; verify the session.

    ``purpose`` is "login" or "step_up" (for the audit log). Throttled
    attempts are refused without checking the code.
    """
    username = user.get_username()
    if throttle.is_locked(username=username, request=request):
        log.warning("security.otp_refused_throttled", username=username)
        return False
    # Digits go to the authenticator app, anything else to the backup codes:
    # a code tried on the wrong kind of device would count as its failure.
    wants_backup_code = not token.strip().isdigit()
    with transaction.atomic():
        device = None
        for candidate in devices_for_user(user, confirmed=True, for_verify=True):
            if isinstance(candidate, BackupCodeDevice) != wants_backup_code:
                continue
            if candidate.verify_token(token):
                device = candidate
                break
        if device is None:
            _otp_failed(user=user, request=request, during=purpose)
            return False
        audit_record(
            actor=user,
            action="mfa.step_up" if purpose == "step_up" else "mfa.verified",
            target=user,
            after={
                "device": "backup code"
                if isinstance(device, BackupCodeDevice)
                else "totp",
                "superuser": user.is_superuser,
            },
            request=request,
        )
    _session_verified(request=request, user=user, device=device)
    return True


def _session_verified(*, request, user, device) -> None:
    from django_otp import login as otp_login

    # A new session key whenever the session gains privilege, as login() does.
    request.session.cycle_key()
    otp_login(request, device)
    mark_verified(request)
    throttle.clear_account(user.get_username())


def _otp_failed(*, user, request, during: str) -> None:
    locked = throttle.record_failure(
        username=user.get_username(), request=request, kind="otp"
    )
    audit_record(
        actor=user,
        action="mfa.failed",
        target=user,
        after={"during": during, "locked": locked},
        request=request,
    )


def mfa_reset(*, user, actor, reason: str, request=None) -> int:
    """Remove every MFA device of ``user`` (a lost phone); return how many.

    Done by a second person: never on oneself. The user's sessions lose their
    verification at their next request (the device is gone) and the next
    login leads through enrolment again.
    """
    if actor is not None and actor.pk == user.pk:
        raise SecurityError("nobody may reset their own MFA devices")
    if not reason.strip():
        raise SecurityError("an MFA reset needs a reason")
    with transaction.atomic():
        devices = list(devices_for_user(user, confirmed=None))
        kinds = sorted(type(device).__name__ for device in devices)
        for device in devices:
            device.delete()
        audit_record(
            actor=actor,
            action="mfa.reset",
            target=user,
            before={"devices": kinds},
            after={"devices": []},
            request=request,
            reason=reason,
        )
    return len(devices)
