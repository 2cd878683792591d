"""Second factors for the demo's staff users (called by seed_demo).

A demo login must work without anyone scanning a QR code first, so the
demo command prints each user's TOTP key and backup codes once, at creation.
That is the only place they ever appear; the admin never shows them.
Refused in production.
"""

from base64 import b32encode

from django.conf import settings
from django.contrib.auth.models import Group
from django.db import transaction
from django_otp import devices_for_user
from django_otp.plugins.otp_totp.models import TOTPDevice

from security.models import BackupCodeDevice
from security.services import roles_sync, user_set_roles


@transaction.atomic
def enrol_demo_user(user, role: str, *, backup_codes: int = 5) -> list[str]:
    """Give ``user`` the role ``role`` and fresh MFA devices; return lines to print.

    The lines hold the TOTP key (to type into an authenticator app) and
    one-time backup codes. Syncs the roles first when they do not exist yet.
    """
    if settings.PRODUCTION:
        raise RuntimeError("demo enrolment is refused in production")
    if not Group.objects.filter(name=role).exists():
        roles_sync(apply=True)
    user_set_roles(user=user, roles=[role], actor=None, reason="demo data")

    for device in devices_for_user(user, confirmed=None):
        device.delete()
    totp = TOTPDevice.objects.create(user=user, name="demo authenticator")
    backup = BackupCodeDevice.objects.create(user=user, name="backup codes")
    codes = backup.replace_codes(backup_codes)

    key = b32encode(totp.bin_key).decode()
    return [
        f"{user.get_username()} ({role})",
        f"  authenticator key: {key}",
        f"  or open: {totp.config_url}",
        f"  one-time backup codes: {', '.join(codes)}",
    ]
