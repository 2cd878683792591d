"""Reads of the security app: the access review."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import Q
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from security.models import AuditEntry, BackupCodeDevice
from security.roles import ROLES, conflicting_roles


@dataclass(frozen=True)
class AccessReviewRow:
    user_id: int
    username: str
    roles: list[str]
    other_groups: list[str]
    direct_permissions: list[str]
    is_superuser: bool
    mfa_devices: list[str]
    last_login: datetime | None
    findings: list[str]


CSV_HEADER = [
    "username",
    "roles",
    "other groups",
    "direct permissions",
    "superuser",
    "mfa devices",
    "last login",
    "findings",
]


def access_review_csv_row(row: AccessReviewRow) -> list[str]:
    return [
        row.username,
        "; ".join(row.roles),
        "; ".join(row.other_groups),
        "; ".join(row.direct_permissions),
        "yes" if row.is_superuser else "no",
        "; ".join(row.mfa_devices),
        row.last_login.isoformat() if row.last_login else "never",
        "; ".join(row.findings),
    ]


def access_review(*, now: datetime | None = None) -> list[AccessReviewRow]:
    """Every active account that can reach the admin or holds superuser power.

    Findings: no confirmed MFA device; dormant (no login for more than
    SECURITY_DORMANT_DAYS, counting from account creation when it never
    logged in); superuser; permissions granted directly rather than through
    a role; membership of a group that is not a role; a pair of roles that
    breaks separation of duties.
    """
    now = now or timezone.now()
    dormant_before = now - timedelta(days=settings.SECURITY_DORMANT_DAYS)
    users = (
        get_user_model()
        .objects.filter(Q(is_staff=True) | Q(is_superuser=True), is_active=True)
        .prefetch_related("groups", "user_permissions__content_type")
        .order_by("username")
    )
    totp = set(
        TOTPDevice.objects.filter(confirmed=True).values_list("user_id", flat=True)
    )
    backup = set(
        BackupCodeDevice.objects.filter(
            confirmed=True, codes__used_at__isnull=True
        ).values_list("user_id", flat=True)
    )

    rows = []
    for user in users:
        groups = sorted(group.name for group in user.groups.all())
        roles = [name for name in groups if name in ROLES]
        others = [name for name in groups if name not in ROLES]
        direct = sorted(
            f"{perm.content_type.app_label}.{perm.codename}"
            for perm in user.user_permissions.all()
        )
        devices = (["totp"] if user.pk in totp else []) + (
            ["backup codes"] if user.pk in backup else []
        )
        findings = []
        if user.pk not in totp:
            findings.append("no MFA")
        last_seen = user.last_login or user.date_joined
        if last_seen < dormant_before:
            findings.append(f"dormant over {settings.SECURITY_DORMANT_DAYS} days")
        if user.is_superuser:
            findings.append("superuser")
        if direct:
            findings.append("direct permissions")
        if others:
            findings.append("group outside the roles")
        findings.extend(
            f"separation of duties: {first} + {second}"
            for first, second, _ in conflicting_roles(roles)
        )
        rows.append(
            AccessReviewRow(
                user_id=user.pk,
                username=user.get_username(),
                roles=roles,
                other_groups=others,
                direct_permissions=direct,
                is_superuser=user.is_superuser,
                mfa_devices=devices,
                last_login=user.last_login,
                findings=findings,
            )
        )
    return rows


def enrolment_deadline(user) -> datetime:
    """Until when ``user`` may bind a first second factor on the strength of
    the password alone: a window from the account's creation, or from the
    last reset of its MFA devices, which is how a Security admin reopens it.
    """
    opened = user.date_joined
    reset_at = (
        AuditEntry.objects.filter(
            action="mfa.reset",
            target_type=user._meta.label_lower,
            target_id=str(user.pk),
        )
        .order_by("-id")
        .values_list("created_at", flat=True)
        .first()
    )
    if reset_at is not None and reset_at > opened:
        opened = reset_at
    return opened + timedelta(hours=settings.SECURITY_ENROLMENT_WINDOW_HOURS)
