"""The demo's staff logins, one per role (called by ``manage.py seed_demo``).

Each user's password is ``demo-<username>-pass``, fixed so that it can be
written in the README; the second factors (a TOTP key and one-time backup
codes) are fresh on every call and printed once by the command, never
stored anywhere readable. Calling it again re-enrols the same users, so the
previous second factors stop working. Refused in production.
"""

from django.conf import settings
from django.contrib.auth import get_user_model

from security.demo import enrol_demo_user
from security.roles import (
    APPROVER,
    INCIDENT_COMMANDER,
    OPERATOR,
    SECURITY_ADMIN,
    VIEWER,
)

STAFF = {
    "viewer": VIEWER,
    "operator": OPERATOR,
    "approver": APPROVER,
    "commander": INCIDENT_COMMANDER,
    "security": SECURITY_ADMIN,
}


def demo_password(username: str) -> str:
    return f"demo-{username}-pass"


def demo_staff_create() -> list[str]:
    """Create or re-enrol the demo staff users; return the lines to print."""
    if settings.PRODUCTION:
        raise RuntimeError("demo staff users are refused in production")
    User = get_user_model()
    lines = []
    for username, role in STAFF.items():
        user, _ = User.objects.get_or_create(
            username=username,
            defaults={"email": f"{username}@demo.example", "first_name": role},
        )
        user.set_password(demo_password(username))
        user.save(update_fields=["password"])
        enrolment = enrol_demo_user(user, role)
        lines.append(enrolment[0])
        lines.append(f"  password: {demo_password(username)}")
        lines.extend(enrolment[1:])
    return lines
